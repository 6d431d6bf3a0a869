"""What every benchmark trial shares: the message, the echo peer, the recorder."""

from __future__ import annotations

import asyncio
import itertools
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from channel import Codec


@attrs.frozen
class Ping:
    text: str


CODEC = Codec([Ping])
PAD = "x" * 80  # with the tag and id, a body of about 100 bytes
WARMUP = 0.3  # seconds of calls before a trial's window opens

# A request [id, body] and a response [id, body] are the same bytes, so echoing the
# stream answers every request with its own body: the fastest possible peer, the
# same for every candidate.
ECHO_PEER = """
import socket
s = socket.socket(fileno=0)
while data := s.recv(1 << 18):
    s.sendall(data)
"""


def start_echo_peer(code: str = ECHO_PEER) -> tuple[socket.socket, subprocess.Popen[bytes]]:
    """A peer process running ``code`` (the echo peer by default) on fd 0 of a socketpair."""
    ours, theirs = socket.socketpair()
    peer = subprocess.Popen([sys.executable, "-c", code], stdin=theirs)
    theirs.close()
    return ours, peer


def run_against_peer(
    candidate: Callable[[socket.socket, int, Recorder], None], concurrency: int, seconds: float, peer_code: str = ECHO_PEER
) -> dict[str, float]:
    """One trial: a fresh peer process, ``warmup`` then ``seconds`` of recorded calls."""
    sock, peer = start_echo_peer(peer_code)
    rec = Recorder(WARMUP, seconds)
    try:
        candidate(sock, concurrency, rec)
    finally:
        sock.close()
        peer.wait(timeout=10)
    return rec.result()


_unique = itertools.count()


def new_ping() -> Ping:
    return Ping(text=f"{next(_unique)}{PAD}")


class Recorder:
    """Closed-loop callers record each call; only calls inside the window count."""

    def __init__(self, warmup: float, duration: float) -> None:
        now = time.perf_counter()
        self.window_start = now + warmup
        self.window_end = self.window_start + duration
        self.duration = duration
        self.latencies: list[float] = []
        self.total = 0
        self.wrong = 0
        self._cpu_start = time.process_time()

    def record_checked(self, start: float, end: float, own_reply: bool, count: int = 1) -> bool:
        """Record ``count`` calls that took start..end and whether the reply was the
        caller's own; False once the run is over."""
        if not own_reply:
            self.wrong += 1
        self.total += count
        if start >= self.window_start and end <= self.window_end:
            self.latencies.extend([end - start] * count)
        return end < self.window_end

    def running(self) -> bool:
        return time.perf_counter() < self.window_end

    def result(self) -> dict[str, float]:
        cpu = time.process_time() - self._cpu_start
        lat = sorted(self.latencies)
        if not lat:
            return {"rps": 0.0, "p50_us": 0.0, "p99_us": 0.0, "cpu_us": 0.0, "wrong": self.wrong}
        return {
            "rps": len(lat) / self.duration,
            "p50_us": statistics.median(lat) * 1e6,
            "p99_us": lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e6,
            "cpu_us": cpu / max(1, self.total) * 1e6,
            "wrong": self.wrong,
        }


def run_threads(count: int, target: Any) -> None:
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


@attrs.frozen
class Workload:
    """What a caller sends and how it knows a reply is its own."""

    new_request: Callable[[], Any]
    is_own_reply: Callable[[Any, Any], bool]


PINGS = Workload(new_ping, lambda sent, reply: isinstance(reply, Ping) and reply.text == sent.text)
UNTYPED_PINGS = Workload(
    lambda: {"type": "Ping", "text": new_ping().text}, lambda sent, reply: reply["text"] == sent["text"]
)


def blocking_loop(send: Callable[[Any], Any], rec: Recorder, work: Workload) -> Callable[[], None]:
    """A thread's closed loop: call, check, record, until the recorder's window ends."""

    def loop() -> None:
        while True:
            request = work.new_request()
            start = time.perf_counter()
            reply = send(request)
            if not rec.record_checked(start, time.perf_counter(), work.is_own_reply(request, reply)):
                return

    return loop


async def closed_loop(asend: Callable[[Any], Awaitable[Any]], rec: Recorder, work: Workload) -> None:
    """One caller's closed loop, for trio and asyncio alike (it awaits nothing else)."""
    while True:
        request = work.new_request()
        start = time.perf_counter()
        reply = await asend(request)
        if not rec.record_checked(start, time.perf_counter(), work.is_own_reply(request, reply)):
            return


async def asyncio_callers(
    asend: Callable[[Any], Awaitable[Any]], concurrency: int, rec: Recorder, work: Workload
) -> None:
    """``concurrency`` coroutines in a closed loop on the running asyncio loop."""
    await asyncio.gather(*(closed_loop(asend, rec, work) for _ in range(concurrency)))


async def trio_callers(asend: Callable[[Any], Awaitable[Any]], concurrency: int, rec: Recorder, work: Workload) -> None:
    """``concurrency`` trio tasks in a closed loop."""
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(closed_loop, asend, rec, work)


def on_loop_thread(body: Callable[[asyncio.AbstractEventLoop], None]) -> None:
    """Run ``body(loop)`` with an asyncio loop running in a thread of its own (the
    way a design that bridges threads to one loop runs), then stop that loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        body(loop)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
