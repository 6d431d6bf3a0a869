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
import time
from collections.abc import Callable

import msgpack
import trio

import actors
from channel import Codec

from .common import (
    CODEC,
    PINGS,
    UNTYPED_PINGS,
    Recorder,
    Workload,
    asyncio_callers,
    blocking_loop,
    new_ping,
    on_loop_thread,
    run_against_peer,
    run_threads,
    trio_callers,
)
from .references import HandOver, LockSerialized, ParkedTasks, PendingFutures

_LENGTH = struct.Struct(">I")


def _stream(sock: socket.socket) -> trio.SocketStream:
    return trio.SocketStream(trio.socket.from_stdlib_socket(sock))


def trio_tasks(codec: Codec, work: Workload) -> Candidate:
    """trio-comms from trio tasks of the actor's own run."""

    def run(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
        async def main() -> None:
            async with actors.open_comms(_stream(sock), codec, max_in_flight=max(1024, concurrency)) as comms:
                await trio_callers(comms.asend, concurrency, rec, work)

        trio.run(main)

    return run


def trio_comms_threads(codec: Codec, work: Workload) -> Candidate:
    """trio-comms from plain threads calling ``send`` (the actor on a thread of its own)."""

    def run(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
        with actors.comms_in_thread(sock, codec) as comms:
            run_threads(concurrency, blocking_loop(comms.send, rec, work))

    return run


def trio_comms_asyncio_thread(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    """The actor in a trio program; callers are coroutines on an asyncio loop in another thread."""

    async def main() -> None:
        async with actors.open_comms(_stream(sock), CODEC, max_in_flight=max(1024, concurrency)) as comms:
            await trio.to_thread.run_sync(asyncio.run, asyncio_callers(comms.asend, concurrency, rec, PINGS))

    trio.run(main)


def trio_comms_in_thread_asyncio(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    """An asyncio program using comms_in_thread."""

    async def main() -> None:
        with actors.comms_in_thread(sock, CODEC, max_in_flight=max(1024, concurrency)) as comms:
            await asyncio_callers(comms.asend, concurrency, rec, PINGS)

    asyncio.run(main())


def _workload(typed: bool) -> Workload:
    return PINGS if typed else UNTYPED_PINGS


def lock_serialized_threads(typed: bool) -> Candidate:
    def run(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
        comms = LockSerialized(sock, CODEC if typed else None)
        run_threads(concurrency, blocking_loop(comms.send, rec, _workload(typed)))

    return run


def pending_futures_coroutines(codec: Codec | None, work: Workload) -> Candidate:
    """The asyncio pending-futures reference from coroutines; untyped when ``codec`` is None."""

    def run(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
        async def main() -> None:
            comms = PendingFutures(sock, codec)
            await comms.start()
            await asyncio_callers(comms.asend, concurrency, rec, work)
            await comms.aclose()

        asyncio.run(main())

    return run


def parked_tasks(codec: Codec | None, work: Workload) -> Candidate:
    """The bare trio reference from trio tasks; untyped when ``codec`` is None."""

    def run(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
        async def main() -> None:
            comms = ParkedTasks(sock, codec)
            async with trio.open_nursery() as nursery:
                await nursery.start(comms.run)
                await trio_callers(comms.asend, concurrency, rec, work)
                nursery.cancel_scope.cancel()

        trio.run(main)

    return run


def hand_over_threads(codec: Codec | None, work: Workload) -> Candidate:
    """The bare single-owner reference for threads; untyped when ``codec`` is None."""

    def run(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
        with HandOver(sock, codec) as comms:
            run_threads(concurrency, blocking_loop(comms.send, rec, work))

    return run


def pending_futures_threads(typed: bool) -> Candidate:
    def run(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
        comms = PendingFutures(sock, CODEC if typed else None)

        def body(loop: asyncio.AbstractEventLoop) -> None:
            asyncio.run_coroutine_threadsafe(comms.start(), loop).result()
            run_threads(concurrency, blocking_loop(comms.send, rec, _workload(typed)))
            asyncio.run_coroutine_threadsafe(comms.aclose(), loop).result()

        on_loop_thread(body)

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
    "trio-comms: trio tasks": trio_tasks(CODEC, PINGS),
    "trio-comms: threads (send)": trio_comms_threads(CODEC, PINGS),
    "trio-comms: asyncio loop in a thread": trio_comms_asyncio_thread,
    "trio-comms: comms_in_thread from asyncio": trio_comms_in_thread_asyncio,
    "reference: lock-serialized threads, untyped": lock_serialized_threads(typed=False),
    "reference: lock-serialized threads, typed": lock_serialized_threads(typed=True),
    "reference: asyncio pending futures, coroutines, untyped": pending_futures_coroutines(None, UNTYPED_PINGS),
    "reference: asyncio pending futures, coroutines, typed": pending_futures_coroutines(CODEC, PINGS),
    "reference: asyncio pending futures, threads, untyped": pending_futures_threads(typed=False),
    "reference: asyncio pending futures, threads, typed": pending_futures_threads(typed=True),
    "reference: trio parked tasks, untyped": parked_tasks(None, UNTYPED_PINGS),
    "reference: trio parked tasks, typed": parked_tasks(CODEC, PINGS),
    "reference: threads handing over to a trio thread, typed": hand_over_threads(CODEC, PINGS),
    "limit: raw socket, K frames per sendall, msgpack.Unpacker": raw_pipelined,
}


if __name__ == "__main__":
    name, concurrency, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    print(json.dumps(run_against_peer(CANDIDATES[name], concurrency, seconds)))
