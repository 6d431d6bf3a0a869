"""One benchmark trial in a fresh process: ``python -m benchmarks.trial CANDIDATE CONCURRENCY SECONDS``.

Prints one JSON object: req/s, p50 and p99 latency (µs), client CPU µs per request,
and how many replies were not the caller's own (must be 0). Each trial has its own
echo peer process; a fresh process per trial keeps the CPU accounting honest.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import threading
import time
from collections.abc import Callable

import trio

import actors
from channel import NEED_DATA, FrameDecoder, ResponseFrame, frame_head

from .common import CODEC, Recorder, new_ping, run_threads, start_echo_peer
from .references import LockSerialized, PendingFutures

WARMUP = 0.3


def _stream(sock: socket.socket) -> trio.SocketStream:
    return trio.SocketStream(trio.socket.from_stdlib_socket(sock))


async def trio_callers(comms: actors.Comms, concurrency: int, rec: Recorder) -> None:
    """``concurrency`` trio tasks calling in a closed loop until the recorder's window ends."""

    async def caller() -> None:
        while True:
            ping = new_ping()
            start = time.perf_counter()
            reply = await comms.asend(ping)
            if not rec.record(start, time.perf_counter(), ping, reply):
                return

    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(caller)


def trio_tasks(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    async def main() -> None:
        async with actors.open_comms(_stream(sock), CODEC, max_in_flight=max(1024, concurrency)) as comms:
            await trio_callers(comms, concurrency, rec)

    trio.run(main)


def _blocking_loop(send: Callable[[object], object], rec: Recorder) -> Callable[[], None]:
    def loop() -> None:
        while True:
            ping = new_ping()
            start = time.perf_counter()
            reply = send(ping)
            if not rec.record(start, time.perf_counter(), ping, reply):
                return

    return loop


async def _asyncio_callers(asend: Callable[[object], object], concurrency: int, rec: Recorder) -> None:
    async def caller() -> None:
        while True:
            ping = new_ping()
            start = time.perf_counter()
            reply = await asend(ping)  # type: ignore[misc]
            if not rec.record(start, time.perf_counter(), ping, reply):
                return

    await asyncio.gather(*(caller() for _ in range(concurrency)))


def trio_comms_threads(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    with actors.comms_in_thread(sock, CODEC) as comms:
        run_threads(concurrency, _blocking_loop(comms.send, rec))


def trio_comms_asyncio_thread(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    """The actor in a trio program; callers are coroutines on an asyncio loop in another thread."""

    async def main() -> None:
        async with actors.open_comms(_stream(sock), CODEC, max_in_flight=max(1024, concurrency)) as comms:
            await trio.to_thread.run_sync(asyncio.run, _asyncio_callers(comms.asend, concurrency, rec))

    trio.run(main)


def trio_comms_in_thread_asyncio(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    """An asyncio program using comms_in_thread."""

    async def main() -> None:
        with actors.comms_in_thread(sock, CODEC, max_in_flight=max(1024, concurrency)) as comms:
            await _asyncio_callers(comms.asend, concurrency, rec)

    asyncio.run(main())


def lock_serialized_threads(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    run_threads(concurrency, _blocking_loop(LockSerialized(sock, CODEC).send, rec))


def pending_futures_coroutines(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    async def main() -> None:
        comms = PendingFutures(sock, CODEC)
        await comms.start()
        await _asyncio_callers(comms.asend, concurrency, rec)
        await comms.aclose()

    asyncio.run(main())


def pending_futures_threads(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    comms = PendingFutures(sock, CODEC)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(comms.start(), loop).result()
    run_threads(concurrency, _blocking_loop(comms.send, rec))
    asyncio.run_coroutine_threadsafe(comms.aclose(), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    thread.join()
    loop.close()


def raw_batched(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    """The limit: K frames in one sendall, then K replies parsed; one thread, no framework."""
    sock.setblocking(True)
    decoder = FrameDecoder(ResponseFrame)
    frame_id = 0
    while True:
        pings = [new_ping() for _ in range(concurrency)]
        start = time.perf_counter()
        parts = []
        for ping in pings:
            frame_id += 1
            body = CODEC.pack(ping)
            parts.append(frame_head(frame_id, len(body), 1))
            parts.append(body)
        sock.sendall(b"".join(parts))
        replies = []
        while len(replies) < concurrency:
            frame = decoder.next_frame()
            if frame is NEED_DATA:
                decoder.receive_data(sock.recv(1 << 18))
                continue
            assert isinstance(frame, ResponseFrame)
            replies.append(CODEC.decode(frame.body))
        end = time.perf_counter()
        going = True
        for ping, reply in zip(pings, replies, strict=True):
            going = rec.record(start, end, ping, reply) and going
        if not going:
            return


CANDIDATES: dict[str, Callable[[socket.socket, int, Recorder], None]] = {
    "trio-comms: trio tasks": trio_tasks,
    "trio-comms: threads (send)": trio_comms_threads,
    "trio-comms: asyncio loop in a thread": trio_comms_asyncio_thread,
    "trio-comms: comms_in_thread from asyncio": trio_comms_in_thread_asyncio,
    "reference: lock-serialized threads": lock_serialized_threads,
    "reference: asyncio pending futures, coroutines": pending_futures_coroutines,
    "reference: asyncio pending futures, threads": pending_futures_threads,
    "limit: raw socket, K frames per sendall": raw_batched,
}


def run_trial(name: str, concurrency: int, seconds: float) -> dict[str, float]:
    sock, peer = start_echo_peer()
    rec = Recorder(WARMUP, seconds)
    try:
        CANDIDATES[name](sock, concurrency, rec)
    finally:
        sock.close()
        peer.wait(timeout=10)
    return rec.result()


if __name__ == "__main__":
    name, concurrency, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(run_trial(name, concurrency, seconds)))
