"""trio-comms in one file: a supervisor-like responder and a worker-like requester.

The responder runs in a subprocess with its end of a socketpair on fd 0, as Apache
Airflow starts its workers. The requester calls it from a trio task, a worker
thread and an asyncio loop in another thread, all over the one socket, and shows
what each error looks like.

    python examples/quickstart.py          # or: make quickstart
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import attrs
import trio

import actors
import channel


@attrs.frozen
class StartTriggerer:
    """The responder's unsolicited hello (Airflow sends one with id 0)."""

    version: str


@attrs.frozen
class GetVariable:
    key: str


@attrs.frozen
class VariableResult:
    key: str
    value: str


@attrs.frozen
class Sleep:
    seconds: float


CODEC = channel.Codec([StartTriggerer, GetVariable, VariableResult, Sleep])
VARIABLES = {"region": "eu-west-1", "owner": "data-platform"}


# ---------------------------------------------------------------- the responder


async def handle(message: object) -> object:
    if isinstance(message, GetVariable):
        if message.key not in VARIABLES:
            raise channel.ErrorReply("VARIABLE_NOT_FOUND", {"key": message.key})
        return VariableResult(key=message.key, value=VARIABLES[message.key])
    if isinstance(message, Sleep):
        await trio.sleep(message.seconds)
        return None
    raise channel.ErrorReply("GENERIC_ERROR", {"unexpected": type(message).__name__})


async def responder_main() -> None:
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(socket.socket(fileno=0)))
    await actors.serve(stream, CODEC, handle, hello=StartTriggerer(version="1.0"))


# ---------------------------------------------------------------- the requester


def from_a_thread(comms: actors.Comms) -> str:
    reply = comms.send(GetVariable(key="owner"))
    return f"{reply.key}={reply.value}"


def from_an_asyncio_loop(comms: actors.Comms) -> list[str]:
    async def main() -> list[str]:
        replies = await asyncio.gather(*(comms.asend(GetVariable(key=k)) for k in ("region", "owner")))
        return [f"{r.key}={r.value}" for r in replies]

    return asyncio.run(main())


async def requester_main(sock: socket.socket) -> None:
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
    async with actors.open_comms(stream, CODEC, timeout=5, expect_hello=True) as comms:
        print(f"hello from the responder:   {comms.hello}")
        reply = await comms.asend(GetVariable(key="region"))
        print(f"trio task:                  {reply.key}={reply.value}")
        print(f"worker thread (send):       {await trio.to_thread.run_sync(from_a_thread, comms)}")
        print(f"asyncio loop in a thread:   {await trio.to_thread.run_sync(from_an_asyncio_loop, comms)}")
        try:
            await comms.asend(GetVariable(key="missing"))
        except actors.RemoteError as error:
            print(f"error reply:                RemoteError code={error.code} detail={error.detail}")
        try:
            await comms.asend(Sleep(seconds=2), timeout=0.2)
        except actors.RequestTimeout as error:
            print(f"deadline:                   RequestTimeout: {error}")
        try:
            comms.send(GetVariable(key="region"))
        except actors.LoopThreadError:
            print("blocking send on the loop:  LoopThreadError (use await asend, or a greenback portal)")
        stats = comms.statistics()
        print(
            f"statistics:                 sent={stats.requests_sent} routed={stats.replies_routed} "
            f"late={stats.replies_late} timed_out={stats.calls_timed_out} in_flight={stats.in_flight}"
        )
    print(f"closed:                     state={comms.state.value.value} cause={comms.close_cause!r}")


def main() -> None:
    if sys.argv[1:] == ["--responder"]:
        trio.run(responder_main)
        return
    ours, theirs = socket.socketpair()
    child = subprocess.Popen([sys.executable, __file__, "--responder"], stdin=theirs.fileno())
    theirs.close()
    try:
        trio.run(requester_main, ours)
    finally:
        # Closing our end is the responder's EOF: it finishes and exits by itself.
        print(f"responder exited with code {child.wait(timeout=10)}")


if __name__ == "__main__":
    main()
