"""Every kind of caller, over one channel: trio tasks, threads, an asyncio loop,
and sync code on the loop thread. A responder in the same process answers."""

import asyncio
import socket
import threading

import attrs
import greenback
import trio

import actors
import channel


@attrs.frozen
class VariableResult:
    key: str
    value: str | None


@attrs.frozen
class GetVariable(channel.Request[VariableResult]):
    key: str


codec = channel.Codec([GetVariable, VariableResult])


async def handler(message: GetVariable) -> VariableResult:
    return VariableResult(key=message.key, value=f"value of {message.key}")


async def from_trio(comms: actors.Comms) -> None:
    # Trio tasks: any number at once, each gets its own reply.
    async with trio.open_nursery() as nursery:
        for key in ("a", "b", "c"):
            nursery.start_soon(comms.asend, GetVariable(key=key))
    reply = await comms.asend(GetVariable(key="d"), timeout=2)  # a per-call deadline
    assert reply.value == "value of d"  # mypy knows reply is a VariableResult

    # A worker thread: send() blocks that thread only.
    reply = await trio.to_thread.run_sync(lambda: comms.send(GetVariable(key="e")))
    assert reply.value == "value of e"

    # An asyncio loop that a library runs in a thread: asend() from its coroutines.
    async def library() -> list[VariableResult]:
        return await asyncio.gather(*(comms.asend(GetVariable(key=k)) for k in "fg"))

    replies = await trio.to_thread.run_sync(lambda: asyncio.run(library()))
    assert [r.value for r in replies] == ["value of f", "value of g"]

    # Sync code on the loop thread itself: send() there would deadlock, so it raises
    # LoopThreadError at once, unless a greenback portal lets it await.
    try:
        comms.send(GetVariable(key="h"))
    except actors.LoopThreadError as error:
        print("on the loop thread:", type(error).__name__)
    await greenback.ensure_portal()
    assert comms.send(GetVariable(key="h")).value == "value of h"
    print("trio host:", comms.statistics().replies_routed, "replies routed")


async def trio_host() -> None:
    ours, theirs = trio.socket.socketpair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(actors.serve, trio.SocketStream(theirs), codec, handler)
        async with actors.open_comms(trio.SocketStream(ours), codec, timeout=10) as comms:
            await from_trio(comms)


def serve_in_thread(sock: socket.socket) -> threading.Thread:
    """A responder on a trio loop of its own, for the hosts below."""
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
    thread = threading.Thread(target=trio.run, args=(actors.serve, stream, codec, handler))
    thread.start()
    return thread


def threads_host() -> None:
    # A program of plain threads: the channel runs on a trio loop in its own thread.
    ours, theirs = socket.socketpair()
    responder = serve_in_thread(theirs)
    with actors.comms_in_thread(ours, codec, timeout=10) as comms:
        workers = [threading.Thread(target=comms.send, args=(GetVariable(key=str(i)),)) for i in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        print("threads host:", comms.send(GetVariable(key="x")).value)
    responder.join()


async def asyncio_host() -> None:
    # An asyncio program: `async with` never blocks its loop (start, hello, shutdown).
    ours, theirs = socket.socketpair()
    responder = serve_in_thread(theirs)
    async with actors.comms_in_thread(ours, codec, timeout=10) as comms:
        replies = await asyncio.gather(*(comms.asend(GetVariable(key=str(i))) for i in range(10)))
        print("asyncio host:", len(replies), "replies, the last", replies[-1].value)
    await asyncio.to_thread(responder.join)


trio.run(trio_host)
threads_host()
asyncio.run(asyncio_host())
