"""One benchmark trial in a fresh process: ``python -m benchmarks.trial CANDIDATE CONCURRENCY SECONDS``.

Prints one JSON object: req/s, p50 and p99 latency (µs), client CPU µs per request,
and how many replies were not the caller's own (must be 0). Each trial has its own
echo peer process; a fresh process per trial keeps the CPU accounting honest.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import msgpack
import trio

import actors

from .common import CODEC, Recorder, new_ping, run_threads, start_echo_peer
from .references import LockSerialized, PendingFutures, untyped_message

WARMUP = 0.3
_LENGTH = struct.Struct(">I")


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


def _untyped_blocking_loop(send: Callable[[object], Any], rec: Recorder) -> Callable[[], None]:
    def loop() -> None:
        while True:
            text = new_ping().text
            start = time.perf_counter()
            reply = send(untyped_message(text))
            if not rec.record_checked(start, time.perf_counter(), reply["text"] == text):
                return

    return loop


async def _untyped_asyncio_callers(asend: Callable[[object], Any], concurrency: int, rec: Recorder) -> None:
    async def caller() -> None:
        while True:
            text = new_ping().text
            start = time.perf_counter()
            reply = await asend(untyped_message(text))
            if not rec.record_checked(start, time.perf_counter(), reply["text"] == text):
                return

    await asyncio.gather(*(caller() for _ in range(concurrency)))


def lock_serialized_threads(typed: bool) -> Candidate:
    def run(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
        comms = LockSerialized(sock, CODEC if typed else None)
        loop = _blocking_loop(comms.send, rec) if typed else _untyped_blocking_loop(comms.send, rec)
        run_threads(concurrency, loop)

    return run


def pending_futures_coroutines(typed: bool) -> Candidate:
    def run(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
        async def main() -> None:
            comms = PendingFutures(sock, CODEC if typed else None)
            await comms.start()
            if typed:
                await _asyncio_callers(comms.asend, concurrency, rec)
            else:
                await _untyped_asyncio_callers(comms.asend, concurrency, rec)
            await comms.aclose()

        asyncio.run(main())

    return run


def pending_futures_threads(typed: bool) -> Candidate:
    def run(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
        comms = PendingFutures(sock, CODEC if typed else None)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        asyncio.run_coroutine_threadsafe(comms.start(), loop).result()
        run_threads(concurrency, _blocking_loop(comms.send, rec) if typed else _untyped_blocking_loop(comms.send, rec))
        asyncio.run_coroutine_threadsafe(comms.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    return run


def raw_pipelined(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    """The limit: K frames in one sendall, the K replies parsed by one streaming
    ``msgpack.Unpacker``; one thread, no framework, no per-frame objects of ours."""
    sock.setblocking(True)
    unpacker = msgpack.Unpacker()
    frame_id = 0
    while True:
        texts = [new_ping().text for _ in range(concurrency)]
        start = time.perf_counter()
        frames = []
        for text in texts:
            frame_id += 1
            payload = msgpack.packb([frame_id, {"type": "Ping", "text": text}])
            frames.append(_LENGTH.pack(len(payload)) + payload)
        sock.sendall(b"".join(frames))
        own = True
        got = 0
        prefix_left = 4
        while got < concurrency:
            if prefix_left:
                prefix_left -= len(unpacker.read_bytes(prefix_left))
                if prefix_left:
                    unpacker.feed(sock.recv(1 << 18))
                    continue
            try:
                _reply_id, body = unpacker.unpack()
            except msgpack.OutOfData:
                unpacker.feed(sock.recv(1 << 18))
                continue
            own = own and body["text"] == texts[got]
            got += 1
            prefix_left = 4
        end = time.perf_counter()
        if not rec.record_checked(start, end, own, concurrency):
            return


Candidate = Callable[[socket.socket, int, Recorder], None]

CANDIDATES: dict[str, Candidate] = {
    "trio-comms: trio tasks": trio_tasks,
    "trio-comms: threads (send)": trio_comms_threads,
    "trio-comms: asyncio loop in a thread": trio_comms_asyncio_thread,
    "trio-comms: comms_in_thread from asyncio": trio_comms_in_thread_asyncio,
    "reference: lock-serialized threads, untyped": lock_serialized_threads(typed=False),
    "reference: lock-serialized threads, typed": lock_serialized_threads(typed=True),
    "reference: asyncio pending futures, coroutines, untyped": pending_futures_coroutines(typed=False),
    "reference: asyncio pending futures, coroutines, typed": pending_futures_coroutines(typed=True),
    "reference: asyncio pending futures, threads, untyped": pending_futures_threads(typed=False),
    "reference: asyncio pending futures, threads, typed": pending_futures_threads(typed=True),
    "limit: raw socket, K frames per sendall, msgpack.Unpacker": raw_pipelined,
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
