"""The comms actor with trio callers: ownership, batching, routing, deadlines,
cancellation, backpressure and per-call failures (docs/callers.rst, docs/design.rst)."""

from __future__ import annotations

import math

import pytest
import trio
import trio.testing

import actors
import channel
from channel import LocalProtocolError, MessageDecodeError, MessageEncodeError

from .helpers import CODEC, Echo, Echoed, FakePeer, RecordingStream, comms_and_peer, hammer


async def test_one_reader_one_writer_and_ids_allocated_by_the_actor(stream_pair) -> None:
    ours, theirs = stream_pair
    recording = RecordingStream(ours)
    peer = FakePeer(theirs)
    await hammer(recording, peer)
    assert len(recording.senders) == 1
    assert len(recording.receivers) == 1
    assert recording.senders != recording.receivers
    # Ids come from the actor alone: 1, 2, 3, ... in the order they hit the wire.
    assert [frame.id for frame in peer.received] == list(range(1, 61))


async def test_writer_drains_everything_queued_into_one_write(autojump_clock: trio.abc.Clock, stream_pair) -> None:
    ours, theirs = stream_pair
    recording = RecordingStream(ours)
    peer = FakePeer(theirs)
    async with actors.open_comms(recording, CODEC) as comms:
        # The writer must be parked (idle) first; otherwise it may wake mid-batch and
        # rightly write only what was queued by then.
        await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(comms.asend, Echo(text=str(i)))
            frames = await peer.receive_n(50)
            assert len(recording.writes) == 1, [(w.count(b"\xa4Echo"), len(w)) for w in recording.writes]
            for frame in frames:
                await peer.echo(frame)


async def test_reply_for_unknown_id_is_dropped_and_counted() -> None:
    async with comms_and_peer() as (comms, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(comms.asend, Echo(text="a"))
            frame = await peer.receive()
            await peer.reply(999, Echoed(text="nobody asked"))
            await peer.reply(frame.id, Echoed(text="a"))
        assert comms.statistics().replies_unknown == 1
        assert comms.state.value is actors.ChannelState.OPEN
        # A duplicate reply for an id already answered is unknown too.
        await peer.reply(frame.id, Echoed(text="again"))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(comms.asend, Echo(text="b"))
            await peer.echo(await peer.receive())
        stats = comms.statistics()
        assert (stats.replies_unknown, stats.replies_routed) == (2, 2)


async def test_replies_out_of_order_reach_their_own_callers() -> None:
    async with comms_and_peer() as (comms, peer):
        results: dict[int, object] = {}

        async def call(i: int) -> None:
            results[i] = await comms.asend(Echo(text=f"m{i}"))

        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(call, i)
            frames = await peer.receive_n(10)
            for frame in reversed(frames):
                await peer.echo(frame)
        assert results == {i: Echoed(text=f"m{i}") for i in range(10)}


async def test_per_call_timeout_fails_only_that_caller(autojump_clock: trio.abc.Clock) -> None:
    async with comms_and_peer() as (comms, peer):

        async def slow() -> None:
            with pytest.raises(actors.RequestTimeout, match=r"no reply to Echo \(frame 1\) within 1 s") as info:
                await comms.asend(Echo(text="slow"), timeout=1)
            assert (info.value.timeout, info.value.message_type, info.value.frame_id) == (1, "Echo", 1)
            assert info.value.written

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow)
            slow_frame = await peer.receive()
            nursery.start_soon(comms.asend, Echo(text="fast"))
            fast_frame = await peer.receive()
            await trio.sleep(2)  # autojump: past the slow call's deadline
            await peer.echo(fast_frame)
        # The slow reply arrives after its caller gave up: dropped, stream in sync.
        await peer.echo(slow_frame)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(peer.echo, await _sent(comms, peer, nursery, "after"))
        stats = comms.statistics()
        assert (stats.calls_timed_out, stats.replies_late, stats.replies_routed) == (1, 1, 2)
        assert stats.in_flight == 0


async def _sent(comms: actors.Comms, peer: FakePeer, nursery: trio.Nursery, text: str):  # type: ignore[no-untyped-def]
    async def call() -> None:
        assert await comms.asend(Echo(text=text)) == Echoed(text=text)

    nursery.start_soon(call)
    return await peer.receive()


async def test_channel_default_timeout_and_explicit_infinity(autojump_clock: trio.abc.Clock) -> None:
    async with comms_and_peer(timeout=3) as (comms, peer):
        start = trio.current_time()
        with pytest.raises(actors.RequestTimeout):
            await comms.asend(Echo(text="x"))
        assert trio.current_time() - start == pytest.approx(3)
        async with trio.open_nursery() as nursery:

            async def patient() -> None:
                assert await comms.asend(Echo(text="y"), timeout=math.inf) == Echoed(text="y")

            nursery.start_soon(patient)
            await peer.receive()  # the timed-out "x"
            frame = await peer.receive()
            await trio.sleep(100)
            await peer.echo(frame)


async def test_cancelled_before_written_is_never_written(autojump_clock: trio.abc.Clock) -> None:
    async with comms_and_peer() as (comms, peer):
        with trio.CancelScope() as scope:
            scope.cancel()
            await comms.asend(Echo(text="never"))
        assert scope.cancelled_caught
        async with trio.open_nursery() as nursery:
            frame = await _sent(comms, peer, nursery, "next")
            await peer.echo(frame)
        assert [f.body["text"] for f in peer.received if f.body] == ["next"]
        assert frame.id == 1  # no id was spent on the cancelled request
        assert comms.statistics().calls_cancelled == 1


async def test_cancelled_after_written_drops_the_reply(autojump_clock: trio.abc.Clock) -> None:
    async with comms_and_peer() as (comms, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(comms.asend, Echo(text="doomed"))
            frame = await peer.receive()
            nursery.cancel_scope.cancel()
        await peer.echo(frame)
        async with trio.open_nursery() as nursery:
            await peer.echo(await _sent(comms, peer, nursery, "fine"))
        stats = comms.statistics()
        assert (stats.calls_cancelled, stats.replies_late, stats.in_flight) == (1, 1, 0)


async def test_backpressure_caps_requests_in_flight(autojump_clock: trio.abc.Clock) -> None:
    async with comms_and_peer(max_in_flight=4) as (comms, peer), trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(comms.asend, Echo(text=str(i)))
        first = await peer.receive_n(4)
        await trio.testing.wait_all_tasks_blocked()
        assert len(peer.received) == 4 and peer.decoder.buffered_size == 0
        stats = comms.statistics()
        assert (stats.in_flight, stats.queued) == (4, 6)
        await peer.echo(first[0])
        fifth = await peer.receive()
        assert fifth.id == 5
        await trio.testing.wait_all_tasks_blocked()
        assert comms.statistics().in_flight == 4
        rest = first[1:] + [fifth] + await _answer_as_they_come(peer, [*first[1:], fifth], 5)
        assert len(rest) == 9


async def _answer_as_they_come(peer: FakePeer, outstanding: list, more: int) -> list:
    for frame in outstanding:
        await peer.echo(frame)
    extra = []
    for _ in range(more):
        frame = await peer.receive()
        extra.append(frame)
        await peer.echo(frame)
    return extra


async def test_waiting_callers_deadlines_still_apply(autojump_clock: trio.abc.Clock) -> None:
    async with comms_and_peer(max_in_flight=1) as (comms, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(comms.asend, Echo(text="holder"))
            holder = await peer.receive()
            with pytest.raises(actors.RequestTimeout):
                await comms.asend(Echo(text="waiter"), timeout=1)
            await peer.echo(holder)
        async with trio.open_nursery() as nursery:
            await peer.echo(await _sent(comms, peer, nursery, "third"))
        # The waiter timed out before it was admitted: never written.
        assert [f.body["text"] for f in peer.received if f.body] == ["holder", "third"]


async def test_undecodable_reply_fails_only_its_caller() -> None:
    async with comms_and_peer() as (comms, peer):
        results: dict[str, object] = {}

        async def call(text: str) -> None:
            try:
                results[text] = await comms.asend(Echo(text=text))
            except MessageDecodeError as exc:
                results[text] = exc

        async with trio.open_nursery() as nursery:
            nursery.start_soon(call, "bad")
            bad = await peer.receive()
            nursery.start_soon(call, "good")
            good = await peer.receive()
            await peer.reply(bad.id, {"type": "Echoed", "text": 42})
            await peer.echo(good)
        error = results["bad"]
        assert isinstance(error, MessageDecodeError)
        assert (error.message_type, error.path) == ("Echoed", "$.text")
        assert results["good"] == Echoed(text="good")
        assert comms.statistics().replies_undecodable == 1


async def test_error_reply_raises_remote_error_in_that_caller_only() -> None:
    async with comms_and_peer() as (comms, peer):
        async with trio.open_nursery() as nursery:

            async def failing() -> None:
                with pytest.raises(actors.RemoteError) as info:
                    await comms.asend(Echo(text="x"))
                assert (info.value.code, info.value.detail) == ("VARIABLE_NOT_FOUND", {"key": "x"})
                assert info.value.frame_id == 1

            nursery.start_soon(failing)
            failing_frame = await peer.receive()
            ok_frame = await _sent(comms, peer, nursery, "ok")
            await peer.reply(
                failing_frame.id,
                error={"type": "ErrorResponse", "error": "VARIABLE_NOT_FOUND", "detail": {"key": "x"}},
            )
            await peer.echo(ok_frame)
        assert comms.statistics().replies_remote_error == 1


async def test_empty_reply_body_is_none() -> None:
    async with comms_and_peer() as (comms, peer), trio.open_nursery() as nursery:

        async def call() -> None:
            assert await comms.asend(Echo(text="x")) is None

        nursery.start_soon(call)
        await peer.reply((await peer.receive()).id)


async def test_encode_errors_raise_in_the_caller_and_send_nothing() -> None:
    async with comms_and_peer(max_frame_size=1024) as (comms, _peer):
        with pytest.raises(MessageEncodeError, match="not a message class"):
            await comms.asend(object())
        with pytest.raises(LocalProtocolError, match="max_frame_size=1024"):
            await comms.asend(Echo(text="x" * 2000))
        assert comms.statistics().requests_sent == 0


async def test_hello_is_received_before_any_request(stream_pair) -> None:
    ours, theirs = stream_pair
    peer = FakePeer(theirs)
    await peer.reply(0, {"type": "Hello", "greeting": "StartTriggerer"})
    async with actors.open_comms(ours, CODEC, expect_hello=True, timeout=5) as comms:
        assert comms.hello.greeting == "StartTriggerer"
        async with trio.open_nursery() as nursery:
            frame = await _sent(comms, peer, nursery, "first")
            assert frame.id == 1
            await peer.echo(frame)


async def test_missing_hello_times_out(autojump_clock: trio.abc.Clock, stream_pair) -> None:
    ours, _theirs = stream_pair
    with pytest.raises(actors.RequestTimeout):
        async with actors.open_comms(ours, CODEC, expect_hello=True, timeout=2):
            pytest.fail("entered without a hello")


async def test_a_first_frame_that_is_not_a_hello_is_a_protocol_error(stream_pair) -> None:
    ours, theirs = stream_pair
    await FakePeer(theirs).reply(3, {"type": "Hello", "greeting": "x"})
    with pytest.raises(actors.ChannelClosed) as info:
        async with actors.open_comms(ours, CODEC, expect_hello=True, timeout=5):
            pytest.fail("entered without a hello")
    assert isinstance(info.value.__cause__, channel.RemoteProtocolError)
    assert "expected the peer's hello" in str(info.value.__cause__)


async def test_host_exception_passes_through_unwrapped(stream_pair) -> None:
    ours, _ = stream_pair
    with pytest.raises(KeyError):
        async with actors.open_comms(ours, CODEC):
            raise KeyError("host bug")


async def test_bad_options_are_rejected(stream_pair) -> None:
    ours, _ = stream_pair
    with pytest.raises(ValueError, match="max_in_flight"):
        async with actors.open_comms(ours, CODEC, max_in_flight=0):
            pass
    with pytest.raises(ValueError, match="timeout"):
        async with actors.open_comms(ours, CODEC, timeout=-1):
            pass
