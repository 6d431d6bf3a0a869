"""What every benchmark trial shares: the message, the echo peer, the recorder."""

from __future__ import annotations

import itertools
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any

import attrs

from channel import Codec


@attrs.frozen
class Ping:
    text: str


CODEC = Codec([Ping])
PAD = "x" * 80  # with the tag and id, a body of about 100 bytes

# A request [id, body] and a response [id, body] are the same bytes, so echoing the
# stream answers every request with its own body: the fastest possible peer, the
# same for every candidate.
ECHO_PEER = """
import socket
s = socket.socket(fileno=0)
while data := s.recv(1 << 18):
    s.sendall(data)
"""


def start_echo_peer() -> tuple[socket.socket, subprocess.Popen[bytes]]:
    ours, theirs = socket.socketpair()
    peer = subprocess.Popen([sys.executable, "-c", ECHO_PEER], stdin=theirs)
    theirs.close()
    return ours, peer


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

    def record(self, start: float, end: float, sent: Ping, reply: Any, count: int = 1) -> bool:
        """Record ``count`` calls that took start..end; False once the run is over."""
        return self.record_checked(start, end, isinstance(reply, Ping) and reply.text == sent.text, count)

    def record_checked(self, start: float, end: float, own_reply: bool, count: int = 1) -> bool:
        """As :meth:`record`, for callers that checked the reply themselves (untyped maps)."""
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
