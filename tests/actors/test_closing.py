"""Closing (docs/errors.rst, "The channel closes"): whatever ends the channel, every pending and every later
call, trio, thread or asyncio, fails promptly with ChannelClosed carrying the cause,
and the host keeps running."""

from __future__ import annotations

import asyncio
import struct

import attrs
import pytest
import trio
import trio.testing

import actors
import channel

from .helpers import CODEC, TEST_TIMEOUT, Echo, FakePeer, comms_and_peer, start_calls_of_every_kind

CLOSE_BOUND = 1.0  # seconds a pending call may take to fail once the cause happens


async def _later_calls_fail(comms: actors.Comms, cause_type: type) -> None:
    for call in (
        lambda: comms.asend(Echo(text="later")),
        lambda: trio.to_thread.run_sync(comms.send, Echo(text="later")),
        lambda: trio.to_thread.run_sync(asyncio.run, comms.asend(Echo(text="later"))),
    ):
        with pytest.raises(actors.ChannelClosed) as info:
            await call()
        assert isinstance(info.value.__cause__, cause_type)


def _assert_all_closed(outcomes: dict[str, object], cause_type: type) -> None:
    assert set(outcomes) == {"trio", "thread", "asyncio"}
    for kind, outcome in outcomes.items():
        assert isinstance(outcome, actors.ChannelClosed), (kind, outcome)
        assert isinstance(outcome.cause, cause_type), (kind, outcome.cause)


async def test_peer_eof_fails_pending_and_later_calls() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, peer):
            async with trio.open_nursery() as nursery:
                outcomes = await start_calls_of_every_kind(comms, peer, nursery)
                with trio.fail_after(CLOSE_BOUND):
                    await peer.close()
                    await comms.state.wait_value(actors.ChannelState.CLOSED)
            _assert_all_closed(outcomes, EOFError)
            assert "peer closed the stream" in str(comms.close_cause)
            await _later_calls_fail(comms, EOFError)
            stats = comms.statistics()
            assert stats.requests_unanswered == 3 and stats.in_flight == 0
            assert stats.calls_closed == 6


async def test_peer_garbage_closes_with_the_protocol_error() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, peer):
            async with trio.open_nursery() as nursery:
                outcomes = await start_calls_of_every_kind(comms, peer, nursery)
                with trio.fail_after(CLOSE_BOUND):
                    await peer.send_raw(struct.pack(">I", 3) + b"\xc1\xc1\xc1")
                    await comms.state.wait_value(actors.ChannelState.CLOSED)
            _assert_all_closed(outcomes, channel.RemoteProtocolError)
            await _later_calls_fail(comms, channel.RemoteProtocolError)


async def test_oversized_frame_closes_with_frame_too_large() -> None:
    async with comms_and_peer(max_frame_size=1024) as (comms, peer):
        await peer.send_raw(struct.pack(">I", 2**31) + b"\xc1")  # no frame head: no id to fail alone
        await comms.state.wait_value(actors.ChannelState.CLOSED)
        assert isinstance(comms.close_cause, channel.FrameTooLarge)
        assert comms.close_cause.size == 2**31


@attrs.define
class BreakableStream(trio.abc.Stream):
    """A stream whose receive fails with BrokenResourceError when the test says so."""

    inner: trio.abc.Stream
    broken: trio.Event = attrs.field(factory=trio.Event)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        result: list[bytes | bytearray] = []
        async with trio.open_nursery() as nursery:

            async def read() -> None:
                result.append(await self.inner.receive_some(max_bytes))
                nursery.cancel_scope.cancel()

            nursery.start_soon(read)
            await self.broken.wait()
            nursery.cancel_scope.cancel()
        if not result:
            raise trio.BrokenResourceError("connection reset by peer")
        return result[0]

    async def send_eof(self) -> None:  # pragma: no cover
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_socket_error_closes_with_that_error(stream_pair) -> None:
    ours, theirs = stream_pair
    breakable = BreakableStream(ours)
    peer = FakePeer(theirs)
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_comms(breakable, CODEC) as comms:
            async with trio.open_nursery() as nursery:
                outcomes = await start_calls_of_every_kind(comms, peer, nursery)
                with trio.fail_after(CLOSE_BOUND):
                    breakable.broken.set()
                    await comms.state.wait_value(actors.ChannelState.CLOSED)
            _assert_all_closed(outcomes, trio.BrokenResourceError)
            await _later_calls_fail(comms, trio.BrokenResourceError)


async def test_aclose_fails_pending_calls_and_is_idempotent() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, peer):
            async with trio.open_nursery() as nursery:
                outcomes = await start_calls_of_every_kind(comms, peer, nursery)
                with trio.fail_after(CLOSE_BOUND):
                    await comms.aclose()
            assert comms.state.value is actors.ChannelState.CLOSED
            await comms.aclose()
            _assert_all_closed(outcomes, trio.ClosedResourceError)
            await _later_calls_fail(comms, trio.ClosedResourceError)
            # The peer sees our side close.
            with pytest.raises(EOFError):
                await peer.receive()


async def test_leaving_the_block_closes_the_channel(stream_pair) -> None:
    ours, theirs = stream_pair
    async with actors.open_comms(ours, CODEC) as comms:
        pass
    assert comms.state.value is actors.ChannelState.CLOSED
    assert isinstance(comms.close_cause, trio.ClosedResourceError)
    with pytest.raises(actors.ChannelClosed):
        await comms.asend(Echo(text="x"))
    assert await theirs.receive_some() == b""


async def test_state_goes_open_closing_closed() -> None:
    async with comms_and_peer() as (comms, peer):
        assert comms.state.value is actors.ChannelState.OPEN
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.close)
            # wait_value fires at the moment of assignment, so the brief CLOSING is seen.
            await comms.state.wait_value(actors.ChannelState.CLOSING)
            assert comms.close_cause is not None
            await comms.state.wait_value(actors.ChannelState.CLOSED)


async def test_host_keeps_running_after_the_peer_dies() -> None:
    """The actor never raises into the host's nursery because the peer went away."""
    async with comms_and_peer() as (comms, peer):
        await peer.close()
        await comms.state.wait_value(actors.ChannelState.CLOSED)
        await trio.lowlevel.checkpoint()
    # Reaching here means no exception escaped the open_comms block.
    assert isinstance(comms.close_cause, EOFError)
