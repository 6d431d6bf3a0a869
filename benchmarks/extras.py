"""The benchmarks beyond the candidate grid: responder, memory per pending request,
scale, and what asyncio callers cost their loop.

Run as ``python -m benchmarks.extras KIND [ARG]``; prints one JSON object.
"""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import trio

import actors
from channel import NEED_DATA, FrameDecoder, RequestFrame, ResponseFrame, encode_frame

from .common import CODEC, PINGS, Recorder, new_ping, start_echo_peer, trio_callers

HANDLER_SECONDS = 0.005
RESPONDER_CALLERS = 100


# ------------------------------------------------------------------ responder


async def _slow_handler(message: object) -> object:
    await trio.sleep(HANDLER_SECONDS)
    return message


async def concurrent_responder() -> None:
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(socket.socket(fileno=0)))
    await actors.serve(stream, CODEC, _slow_handler)


async def serial_responder() -> None:
    """Airflow's supervisor design: one request at a time, handled, answered, next."""
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(socket.socket(fileno=0)))
    decoder = FrameDecoder(RequestFrame)
    while True:
        frame = decoder.next_frame()
        if frame is NEED_DATA:
            data = await stream.receive_some()
            if not data:
                return
            decoder.receive_data(data)
            continue
        assert isinstance(frame, RequestFrame)
        reply = await _slow_handler(CODEC.decode(frame.body))
        await stream.send_all(encode_frame(ResponseFrame(id=frame.id, body=CODEC.encode(reply))))


def responder(kind: str, seconds: float) -> dict[str, float]:
    ours, theirs = socket.socketpair()
    peer = subprocess.Popen([sys.executable, "-m", "benchmarks.extras", f"serve-{kind}"], stdin=theirs, cwd=_ROOT)
    theirs.close()
    rec = Recorder(0.3, seconds)

    async def main() -> None:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
        async with actors.open_comms(stream, CODEC) as comms:
            await trio_callers(comms.asend, RESPONDER_CALLERS, rec, PINGS)

    try:
        trio.run(main)
    finally:
        peer.wait(timeout=30)
    return rec.result()


# ------------------------------------------------------------------ memory


def memory(pending: int) -> dict[str, float]:
    """Bytes per pending request with ``pending`` requests in flight (the peer holds replies).

    Two figures: what the channel itself holds per request (its slot, its in-flight
    entry, the packed body), by tracemalloc filtered to actors/ and channel/; and the
    whole process's growth per request, the caller's own trio task included.
    """
    ours, theirs = socket.socketpair()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import socket,time\ns=socket.socket(fileno=0)\nwhile s.recv(1<<20): pass"],
        stdin=theirs,
    )
    theirs.close()
    result: dict[str, float] = {}

    async def main() -> None:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
        async with actors.open_comms(stream, CODEC, max_in_flight=pending) as comms:
            gc.collect()
            tracemalloc.start(25)
            before = tracemalloc.take_snapshot()
            rss_before = _rss()
            async with trio.open_nursery() as nursery:
                for _ in range(pending):
                    nursery.start_soon(comms.asend, new_ping())
                while comms.statistics().in_flight < pending:
                    await trio.sleep(0.01)
                gc.collect()
                after = tracemalloc.take_snapshot()
                rss_after = _rss()
                tracemalloc.stop()
                owned = 0
                total = 0
                for stat in after.compare_to(before, "traceback"):
                    total += stat.size_diff
                    if any(_ours(frame.filename) for frame in stat.traceback):
                        owned += stat.size_diff
                result["channel_bytes_per_pending"] = owned / pending
                result["traced_bytes_per_pending"] = total / pending
                result["rss_bytes_per_pending"] = (rss_after - rss_before) / pending
                result["in_flight"] = comms.statistics().in_flight
                nursery.cancel_scope.cancel()

    try:
        trio.run(main)
    finally:
        ours.close()
        holder.wait(timeout=10)
    return result


def _ours(filename: str) -> bool:
    path = Path(filename).resolve()
    return any(part in ("actors", "channel") for part in path.parts[-2:-1])


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        import os

        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------------ scale


def scale(callers: int, seconds: float) -> dict[str, float]:
    """Throughput and p99 with many concurrent trio callers (default max_in_flight)."""
    sock, peer = start_echo_peer()
    rec = Recorder(0.5, seconds)

    async def main() -> None:
        async with actors.open_comms(trio.SocketStream(trio.socket.from_stdlib_socket(sock)), CODEC) as comms:
            await trio_callers(comms.asend, callers, rec, PINGS)

    try:
        trio.run(main)
    finally:
        sock.close()
        peer.wait(timeout=10)
    return rec.result()


# ------------------------------------------------------------------ asyncio submit

SUBMITS = 1000


def asyncio_submit(rounds: int) -> dict[str, float]:
    """How long 1,000 concurrent ``asend`` calls from an asyncio loop (through
    ``comms_in_thread``) block that loop, against the same gather of tasks that each
    await a plain future: from creating the tasks to the iteration in which every
    call has been handed to the actor. Medians over ``rounds``; the peer is a process.
    """
    sock, peer = start_echo_peer()
    ours: list[float] = []
    plain: list[float] = []

    async def waiter(future: asyncio.Future[None]) -> None:
        await future

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with actors.comms_in_thread(sock, CODEC) as comms:
            for _ in range(rounds):
                futures = [loop.create_future() for _ in range(SUBMITS)]
                started = time.perf_counter()
                tasks = [loop.create_task(waiter(future)) for future in futures]
                await asyncio.sleep(0)
                await asyncio.sleep(0)
                plain.append(time.perf_counter() - started)
                for future in futures:
                    future.set_result(None)
                await asyncio.gather(*tasks)
                messages = [new_ping() for _ in range(SUBMITS)]
                started = time.perf_counter()
                calls = [loop.create_task(comms.asend(message)) for message in messages]
                await asyncio.sleep(0)
                await asyncio.sleep(0)  # the iteration that hands them to the actor
                ours.append(time.perf_counter() - started)
                await asyncio.gather(*calls)

    try:
        asyncio.run(main())
    finally:
        sock.close()
        peer.wait(timeout=10)
    return {"channel_ms": statistics.median(ours) * 1000, "plain_ms": statistics.median(plain) * 1000, "wrong": 0}


_ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    kind = sys.argv[1]
    if kind == "serve-concurrent":
        trio.run(concurrent_responder)
    elif kind == "serve-serial":
        trio.run(serial_responder)
    elif kind in ("responder-concurrent", "responder-serial"):
        print(json.dumps(responder(kind.split("-")[1], float(sys.argv[2]))))
    elif kind == "memory":
        print(json.dumps(memory(int(sys.argv[2]))))
    elif kind == "asyncio-submit":
        print(json.dumps(asyncio_submit(int(sys.argv[2]))))
    elif kind == "scale":
        print(json.dumps(scale(int(sys.argv[2]), float(sys.argv[3]))))
    else:
        raise SystemExit(f"unknown benchmark {kind!r}")
