"""Shared pieces for the actor tests: messages, real socketpairs, a scriptable peer.

Rules for these tests (as trio-websocket states its own): real socketpairs, never
sleeps as synchronisation, and a ``fail_after`` around every test that involves
threads, so a hang is a failure with a traceback rather than a stuck CI run.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio

import actors
from channel import (
    END_OF_STREAM,
    NEED_DATA,
    Codec,
    FrameDecoder,
    RequestFrame,
    ResponseFrame,
    encode_frame,
)

# Generous: only reached when something hangs.
TEST_TIMEOUT = 20
SHORT_TIMEOUT = 3  # for tests built to fail by hanging when the code is wrong


@attrs.frozen
class Echo:
    """A request; the reply carries the same text back, so content proves routing."""

    text: str


@attrs.frozen
class Echoed:
    text: str


@attrs.frozen
class Hello:
    greeting: str


CODEC = Codec([Echo, Echoed, Hello])


def socket_stream_pair() -> tuple[trio.SocketStream, trio.SocketStream]:
    a, b = trio.socket.socketpair()
    return trio.SocketStream(a), trio.SocketStream(b)


async def echo_handler(message: Echo) -> Echoed:
    return Echoed(text=message.text)


@attrs.define
class RecordingStream(trio.abc.Stream):
    """Wraps a stream and records which task did each send_all / receive_some."""

    inner: trio.abc.Stream
    senders: set[trio.lowlevel.Task] = attrs.field(factory=set)
    receivers: set[trio.lowlevel.Task] = attrs.field(factory=set)
    writes: list[bytes] = attrs.field(factory=list)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.senders.add(trio.lowlevel.current_task())
        self.writes.append(bytes(data))
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        self.receivers.add(trio.lowlevel.current_task())
        return await self.inner.receive_some(max_bytes)

    async def send_eof(self) -> None:  # pragma: no cover - not used by the actor
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.inner.aclose()


class FakePeer:
    """The far end of a channel, driven step by step by a test.

    It decodes requests with the real FrameDecoder and answers exactly when and how
    the test says: out of order, with errors, with garbage, or never.
    """

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder(RequestFrame)
        self.received: list[RequestFrame] = []

    async def receive(self) -> RequestFrame:
        """The next request frame (waits for it)."""
        while True:
            frame = self.decoder.next_frame()
            if isinstance(frame, RequestFrame):
                self.received.append(frame)
                return frame
            if frame is END_OF_STREAM:
                raise EOFError("requester closed")
            assert frame is NEED_DATA
            self.decoder.receive_data(await self.stream.receive_some())

    async def receive_n(self, count: int) -> list[RequestFrame]:
        return [await self.receive() for _ in range(count)]

    async def reply(self, frame_id: int, body: Any = None, *, error: dict | None = None) -> None:
        if body is not None and not isinstance(body, dict):
            body = CODEC.encode(body)
        await self.stream.send_all(encode_frame(ResponseFrame(id=frame_id, body=body, error=error)))

    async def echo(self, frame: RequestFrame) -> None:
        assert frame.body is not None
        await self.reply(frame.id, Echoed(text=frame.body["text"]))

    async def send_raw(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def close(self) -> None:
        await self.stream.aclose()


@asynccontextmanager
async def comms_and_peer(**options: Any) -> AsyncIterator[tuple[actors.Comms, FakePeer]]:
    """An open channel whose far end is a FakePeer."""
    ours, theirs = socket_stream_pair()
    peer = FakePeer(theirs)
    try:
        async with actors.open_comms(ours, CODEC, **options) as comms:
            yield comms, peer
    finally:
        await theirs.aclose()


@asynccontextmanager
async def comms_and_responder(handler: Any = echo_handler, **options: Any) -> AsyncIterator[actors.Comms]:
    """An open channel whose far end is ``actors.serve`` with ``handler``."""
    ours, theirs = socket_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(actors.serve, theirs, CODEC, handler)
        async with actors.open_comms(ours, CODEC, **options) as comms:
            yield comms


def stdlib_socketpair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair()


async def start_calls_of_every_kind(
    comms: actors.Comms, peer: FakePeer, nursery: trio.Nursery, *, timeout: float | None = None
) -> dict[str, object]:
    """Start a trio, a thread and an asyncio call; return once the peer has all three.

    The returned dict fills in with each call's reply or exception as they end.
    """
    outcomes: dict[str, object] = {}

    async def record(kind: str, fn) -> None:  # type: ignore[no-untyped-def]
        try:
            outcomes[kind] = await fn()
        except Exception as exc:
            outcomes[kind] = exc

    nursery.start_soon(record, "trio", lambda: comms.asend(Echo(text="trio"), timeout))
    nursery.start_soon(record, "thread", lambda: trio.to_thread.run_sync(comms.send, Echo(text="thread"), timeout))
    nursery.start_soon(
        record, "asyncio", lambda: trio.to_thread.run_sync(asyncio.run, comms.asend(Echo(text="asyncio"), timeout))
    )
    await peer.receive_n(3)
    return outcomes


async def assert_new_channel_works() -> None:
    """After a fault, a fresh channel to a fresh responder answers."""
    with trio.fail_after(TEST_TIMEOUT):
        ours, theirs = socket_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actors.serve, theirs, CODEC, echo_handler)
            async with actors.open_comms(ours, CODEC) as comms:
                assert await comms.asend(Echo(text="fresh")) == Echoed(text="fresh")


async def hammer(stream: trio.abc.Stream, peer: FakePeer) -> None:
    """40 trio tasks and 20 threads call at once; the peer echoes all 60."""

    async def serve_peer() -> None:
        for _ in range(60):
            await peer.echo(await peer.receive())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_peer)
        async with actors.open_comms(stream, CODEC) as comms:

            async def call(i: int) -> None:
                assert await comms.asend(Echo(text=f"t{i}")) == Echoed(text=f"t{i}")

            def thread_call(i: int) -> None:
                assert comms.send(Echo(text=f"s{i}")) == Echoed(text=f"s{i}")

            async with trio.open_nursery() as callers:
                for i in range(40):
                    callers.start_soon(call, i)
                for i in range(20):
                    callers.start_soon(trio.to_thread.run_sync, thread_call, i)
