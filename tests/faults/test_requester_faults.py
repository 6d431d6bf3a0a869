"""Faults a real peer can throw at a requester, each over a real socketpair.

For each: every affected call (trio, thread and asyncio alike) ends within
FAULT_BOUND with the documented typed error, the host keeps running, unaffected
calls still succeed where the fault allows, and a new channel works afterwards.
"""

from __future__ import annotations

import struct
import tracemalloc

import msgpack
import pytest
import trio
import trio.testing

import actors
import channel
from channel import ResponseFrame, encode_frame
from tests.actors.helpers import (
    TEST_TIMEOUT,
    Echo,
    Echoed,
    FakePeer,
    assert_new_channel_works,
    comms_and_peer,
    start_calls_of_every_kind,
)

FAULT_BOUND = 1.0


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


async def eof_between_frames(peer: FakePeer) -> None:
    await peer.close()


async def eof_mid_frame(peer: FakePeer) -> None:
    await peer.send_raw(encode_frame(ResponseFrame(id=1, body={"type": "Echoed", "text": "x" * 100}))[:20])
    await peer.close()


async def garbage(peer: FakePeer) -> None:
    await peer.send_raw(b"\x00\x00\x00\x08\xc1\xc1garbage!")


async def oversized_prefix(peer: FakePeer) -> None:
    await peer.send_raw(struct.pack(">I", 2**32 - 1) + b"x" * 100)


async def zero_length_frame(peer: FakePeer) -> None:
    await peer.send_raw(struct.pack(">I", 0))


async def not_an_array(peer: FakePeer) -> None:
    await peer.send_raw(frame(msgpack.packb({"id": 1, "body": None})))


async def wrong_arity(peer: FakePeer) -> None:
    await peer.send_raw(frame(msgpack.packb([1, None, None, None])))


CLOSING_FAULTS = [
    (eof_between_frames, EOFError),
    (eof_mid_frame, channel.TruncatedFrame),
    (garbage, channel.RemoteProtocolError),
    (oversized_prefix, channel.FrameTooLarge),
    (zero_length_frame, channel.RemoteProtocolError),
    (not_an_array, channel.RemoteProtocolError),
    (wrong_arity, channel.RemoteProtocolError),
]


@pytest.mark.parametrize(("inject", "cause_type"), CLOSING_FAULTS, ids=[f.__name__ for f, _ in CLOSING_FAULTS])
async def test_fault_closes_the_channel_and_fails_every_call_promptly(inject, cause_type: type) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer(timeout=TEST_TIMEOUT) as (comms, peer):
            async with trio.open_nursery() as nursery:
                outcomes = await start_calls_of_every_kind(comms, peer, nursery)
                start = trio.current_time()
                await inject(peer)
                with trio.fail_after(FAULT_BOUND):
                    await comms.state.wait_value(actors.ChannelState.CLOSED)
            assert trio.current_time() - start < FAULT_BOUND
            for kind, outcome in outcomes.items():
                assert isinstance(outcome, actors.ChannelClosed), (kind, outcome)
                assert isinstance(outcome.cause, cause_type), (kind, outcome.cause)
            with pytest.raises(actors.ChannelClosed):
                await comms.asend(Echo(text="after"))
    await assert_new_channel_works()


async def test_oversized_prefix_allocates_nothing_of_that_size() -> None:
    tracemalloc.start()
    try:
        async with comms_and_peer() as (comms, peer):
            tracemalloc.reset_peak()
            await peer.send_raw(struct.pack(">I", 2**32 - 1) + b"x" * 1000)
            await comms.state.wait_value(actors.ChannelState.CLOSED)
            _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(comms.close_cause, channel.FrameTooLarge)
    assert peak < 4 * 2**20, f"peak traced allocation {peak} bytes"


async def test_reply_to_an_id_never_sent_is_dropped_and_others_succeed() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, peer):
            async with trio.open_nursery() as nursery:
                outcomes = await start_calls_of_every_kind(comms, peer, nursery)
                await peer.reply(7777, Echoed(text="stray"))
                for request in peer.received:
                    await peer.echo(request)
            assert outcomes == {k: Echoed(text=k) for k in ("trio", "thread", "asyncio")}
            assert comms.statistics().replies_unknown == 1
    await assert_new_channel_works()


async def test_duplicate_reply_is_dropped_and_the_stream_stays_in_sync() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, peer):
            async with trio.open_nursery() as nursery:
                outcomes = await start_calls_of_every_kind(comms, peer, nursery)
                for request in peer.received:
                    await peer.echo(request)
                    await peer.echo(request)  # the duplicate
            assert outcomes == {k: Echoed(text=k) for k in ("trio", "thread", "asyncio")}
            async with trio.open_nursery() as nursery:
                nursery.start_soon(comms.asend, Echo(text="next"))
                await peer.echo(await peer.receive())
            stats = comms.statistics()
            assert (stats.replies_unknown, stats.replies_routed) == (3, 4)
    await assert_new_channel_works()


async def test_peer_that_never_answers_deadlines_fire() -> None:
    deadline = 0.2
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, peer):
            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                outcomes = await start_calls_of_every_kind(comms, peer, nursery, timeout=deadline)
            elapsed = trio.current_time() - start
            for kind, outcome in outcomes.items():
                assert isinstance(outcome, actors.RequestTimeout), (kind, outcome)
            assert elapsed < deadline + FAULT_BOUND
            assert comms.state.value is actors.ChannelState.OPEN
            stats = comms.statistics()
            assert (stats.calls_timed_out, stats.in_flight) == (3, 3)
    await assert_new_channel_works()


async def test_peer_that_stops_reading_gets_backpressure_and_deadlines_fire() -> None:
    """The peer reads nothing: the socket fills, the writer blocks, callers wait.

    Memory stays bounded (the actor holds at most max_in_flight requests; a caller
    waiting for room holds only its own), every deadline still fires, and nothing
    is written beyond what the socket took.
    """
    max_in_flight, callers, deadline = 64, 100, 0.3
    body = "x" * 64 * 1024  # 64 x 64 KiB admitted: far more than a socket buffer holds
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer(max_in_flight=max_in_flight) as (comms, _peer):
            outcomes: list[object] = []

            async def call(i: int) -> None:
                try:
                    outcomes.append(await comms.asend(Echo(text=f"{i}{body}"), timeout=deadline))
                except Exception as exc:
                    outcomes.append(exc)

            start = trio.current_time()
            async with trio.open_nursery() as nursery:
                for i in range(callers):
                    nursery.start_soon(call, i)
                await trio.testing.wait_all_tasks_blocked()
                stats = comms.statistics()
                assert stats.in_flight <= max_in_flight
                assert stats.in_flight + stats.queued == callers
                assert stats.bytes_sent < max_in_flight * len(body)  # the writer is blocked
            assert trio.current_time() - start < deadline + FAULT_BOUND
            assert len(outcomes) == callers
            assert all(isinstance(o, actors.RequestTimeout) for o in outcomes)
            stats = comms.statistics()
            assert stats.calls_timed_out == callers
            assert stats.in_flight + stats.queued <= max_in_flight
    await assert_new_channel_works()
