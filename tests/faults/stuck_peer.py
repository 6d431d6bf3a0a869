"""A responder process whose handlers never return. Run as ``python -m tests.faults.stuck_peer N``.

Its end of the socketpair is fd 0, as Airflow starts workers. Once N requests are in
(N handlers running), it prints ``ready`` so the test knows every call is pending.
"""

from __future__ import annotations

import socket
import sys

import trio

import actors
from tests.actors.helpers import CODEC


async def main(expected: int) -> None:
    received = 0

    async def handler(message: object) -> None:
        nonlocal received
        received += 1
        if received == expected:
            print("ready", flush=True)
        await trio.sleep_forever()

    stream = trio.SocketStream(trio.socket.from_stdlib_socket(socket.socket(fileno=0)))
    await actors.serve(stream, CODEC, handler, max_concurrency=expected)


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
