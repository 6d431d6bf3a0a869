"""A worker process for the supervisor tests: ``python -m tests.supervisor.worker MODE``.

Every mode connects with ``actors.connect_to_supervisor`` (fd 0 unless ``--fd N``) and
heartbeats from its main loop every 50 ms, then misbehaves as its mode says.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import msgpack
import trio

import actors
from channel import RequestFrame, encode_frame
from tests.supervisor.messages import CODEC, Heartbeat, Work

BEAT = 0.05


def raw_frame(frame_id: int, message: object) -> bytes:
    return encode_frame(RequestFrame(id=frame_id, body=CODEC.encode(message)))


def hostile(mode: str, fd: int) -> None:
    """A worker that writes raw frames and never reads: heartbeats, then its attack."""
    sock = socket.socket(fileno=os.dup(fd))
    frame_id = 1
    for beat in itertools.count():
        batch = [raw_frame(frame_id, Heartbeat())]
        frame_id += 1
        if mode == "deep-frame" and beat == 3:
            # 1 KiB nested ~1,000 deep plus a trailing byte: once killed a supervisor.
            payload = b"\x91" * 1_000 + b"\xc0" + b"\x00"
            batch.append(struct.pack(">I", len(payload)) + payload)
        if mode == "deep-request" and beat == 3:
            payload = b"\x92" + msgpack.packb(frame_id) + b"\x81\xa1a" + b"\x91" * 1_000 + b"\xc0"
            batch.append(struct.pack(">I", len(payload)) + payload)
            frame_id += 1
        if mode == "no-read":  # a flood of requests whose replies it never reads
            for _ in range(500):
                batch.append(raw_frame(frame_id, Work(n=frame_id)))
                frame_id += 1
        sock.sendall(b"".join(batch))
        time.sleep(BEAT)


def count_socket_copies(inode: int) -> int:
    """How many fds of this process are open on the socket with this ``inode``."""
    copies = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            copies += os.fstat(int(name)).st_ino == inode
        except OSError:
            continue  # the listing's own fd, closed by now
    return copies


async def run_busy(mode: str, fd: int, load: int, max_in_flight: int) -> None:
    """Side tasks keep ``load`` requests waiting on a slow supervisor while the main
    loop heartbeats every 0.2 s through the priority lane; "busy-block" then blocks
    the main loop with sync code after 2 s."""
    async with actors.connect_to_supervisor(CODEC, fd=fd, heartbeat=Heartbeat, max_in_flight=max_in_flight) as comms:
        async with trio.open_nursery() as nursery:

            async def ask() -> None:
                while True:
                    await comms.asend(Work(n=0))

            for _ in range(load):
                nursery.start_soon(ask)
            started = trio.current_time()
            while True:
                await comms.asend(Heartbeat())
                if mode == "busy-block" and trio.current_time() - started > 2:
                    time.sleep(1000)  # noqa: ASYNC251 - the point: a blocked main loop is still stuck
                await trio.sleep(0.2)


async def main(mode: str, fd: int, load: int = 0, max_in_flight: int = 1024) -> None:
    if mode.startswith("busy"):
        await run_busy(mode, fd, load, max_in_flight)
    if mode in ("deep-frame", "deep-request", "no-read"):
        hostile(mode, fd)
    if mode == "garbage":
        sock = socket.socket(fileno=os.dup(fd))
        sock.sendall(b"\x00\x00\x00\x00")  # a zero-length frame: a protocol error
        await trio.sleep_forever()
    if mode == "ignore-term":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if mode == "silent":  # connects, asks things, never heartbeats
        async with actors.connect_to_supervisor(CODEC, fd=fd, timeout=5) as comms:
            while True:
                await comms.asend(Work(n=0))
                await trio.sleep(BEAT)
    threaded = mode in ("thread-block", "sys-exit-thread")
    async with actors.connect_to_supervisor(CODEC, fd=fd, timeout=5, thread=threaded) as comms:
        print(f"worker {os.getpid()} hello={comms.hello}", file=sys.stderr, flush=True)
        loop_blocked = threading.Event()
        if mode == "thread-block":  # a thread keeps asking while the main loop is blocked

            def ask() -> None:
                while True:
                    comms.send(Work(n=-1 if loop_blocked.is_set() else 0))
                    time.sleep(0.02)

            threading.Thread(target=ask, daemon=True).start()
        if mode.startswith("child-"):  # a child of its own, reported to the supervisor
            child = subprocess.Popen(["sleep", "1000"])  # noqa: ASYNC220 - a fork, nothing to await
            await comms.asend(Work(n=child.pid))
        if mode in ("sys-exit", "sys-exit-thread", "interrupt"):
            await comms.asend(Heartbeat())
            if mode == "interrupt":
                raise KeyboardInterrupt
            sys.exit(3)  # in the channel's block: the process's exit code, no traceback
        if mode == "fds":  # how many of its fds are the channel's socket (run with --fd N)
            await comms.asend(Work(n=count_socket_copies(os.fstat(fd).st_ino)))
        async with trio.open_nursery() as nursery:
            if mode == "tight-nursery":  # the supervisor may vanish mid-call, in any task

                async def tight() -> None:
                    while True:
                        await comms.asend(Work(n=0))

                for _ in range(4):
                    nursery.start_soon(tight)
            if mode == "deadlock":
                # Side tasks stay busy with other requests while the main loop is stuck.
                async def busy() -> None:
                    n = 0
                    while True:
                        await comms.asend(Work(n=n))
                        n += 1
                        await trio.sleep(0.01)

                nursery.start_soon(busy)
            beats = 0
            while True:
                await comms.asend(Heartbeat())
                beats += 1
                if mode == "tight":
                    for _ in range(20):
                        await comms.asend(Work(n=beats))
                    continue
                if beats == 3:
                    if mode in ("exit", "child-exit"):
                        os._exit(3)
                    if mode == "thread-block":
                        loop_blocked.set()
                    if mode in ("block", "ignore-term", "child-block", "thread-block"):
                        time.sleep(1000)  # noqa: ASYNC251 - the point: sync code blocks the loop
                    if mode == "sigstop":
                        os.kill(os.getpid(), signal.SIGSTOP)
                    if mode == "deadlock":
                        await trio.Event().wait()  # the main loop never beats again
                await trio.sleep(BEAT)
    print(f"worker {os.getpid()}: channel closed, exiting", file=sys.stderr, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("mode")
    parser.add_argument("--fd", type=int, default=0)
    parser.add_argument("--load", type=int, default=0, help="busy modes: requests kept waiting")
    parser.add_argument("--max-in-flight", type=int, default=1024, help="busy modes: the channel's max_in_flight")
    args = parser.parse_args()
    trio.run(main, args.mode, args.fd, args.load, args.max_in_flight)
    sys.exit(0)
