"""Requests nobody answers: they leave max_in_flight, are bounded, and close the channel
loudly when there are too many (issue: "an unanswered request must not jam the channel").

Real socketpairs, a FakePeer that answers only what the test says, autojump_clock
for deadlines: no sleeps as synchronisation.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

import actors

from .helpers import TEST_TIMEOUT, Echo, Echoed, FakePeer, comms_and_peer


async def _hang(comms: actors.Comms, peer: FakePeer, count: int, text: str = "hang") -> list[int]:
    """``count`` calls the peer receives and never answers; each times out. Their ids."""
    ids: list[int] = []

    async def call(i: int) -> None:
        with pytest.raises(actors.RequestTimeout) as info:
            await comms.asend(Echo(text=f"{text}{i}"), timeout=0.2)
        assert info.value.written and info.value.message_type == "Echo"
        ids.append(info.value.frame_id or -1)

    async with trio.open_nursery() as nursery:
        for i in range(count):
            nursery.start_soon(call, i)
        await peer.receive_n(count)
    return sorted(ids)


async def _answered(comms: actors.Comms, peer: FakePeer, text: str) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(peer.echo, await _received(peer, nursery, comms, text))


async def _received(peer: FakePeer, nursery: trio.Nursery, comms: actors.Comms, text: str):  # type: ignore[no-untyped-def]
    async def call() -> None:
        assert await comms.asend(Echo(text=text), timeout=5) == Echoed(text=text)

    nursery.start_soon(call)
    return await peer.receive()


async def test_unanswered_requests_leave_max_in_flight(autojump_clock: trio.abc.Clock) -> None:
    """Regression: with max_in_flight=4, four unanswered calls used to jam every later
    call while the channel stayed OPEN."""
    async with comms_and_peer(max_in_flight=4) as (comms, peer):
        hung = await _hang(comms, peer, 4)
        assert hung == [1, 2, 3, 4]
        stats = comms.statistics()
        assert (stats.in_flight, stats.in_flight_abandoned, stats.calls_timed_out) == (4, 4, 4)
        for i in range(8):  # twice max_in_flight, one at a time: none is stuck behind the hung ones
            await _answered(comms, peer, f"after{i}")
        assert comms.state.value is actors.ChannelState.OPEN
        # A late reply to a hung request is dropped and counted late, never unknown.
        await peer.reply(hung[0], Echoed(text="hang0"))
        await _answered(comms, peer, "sync")
        stats = comms.statistics()
        assert (stats.replies_late, stats.replies_unknown, stats.in_flight_abandoned) == (1, 0, 3)
        assert stats.requests_sent == stats.replies_routed + stats.replies_late + stats.in_flight


async def test_one_more_than_max_unanswered_closes_with_peer_unresponsive(autojump_clock: trio.abc.Clock) -> None:
    async with comms_and_peer(max_in_flight=8, max_unanswered=3) as (comms, peer):
        await _hang(comms, peer, 3, "first")
        assert comms.state.value is actors.ChannelState.OPEN
        await trio.sleep(1)  # autojump: the oldest abandoned request ages

        async def pending() -> None:
            with pytest.raises(actors.ChannelClosed) as info:
                await comms.asend(Echo(text="pending"))
            assert isinstance(info.value.__cause__, actors.PeerUnresponsive)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(pending)
            await peer.receive()
            await _hang(comms, peer, 1, "fourth")  # the fourth unanswered one tips it over
        await comms.state.wait_value(actors.ChannelState.CLOSED)
        cause = comms.close_cause
        assert isinstance(cause, actors.PeerUnresponsive)
        assert (cause.unanswered, cause.max_unanswered) == (4, 3)
        assert 1.2 <= cause.oldest_age < 1.3
        assert "peer left 4 requests unanswered (max_unanswered=3)" in str(cause)
        with pytest.raises(actors.ChannelClosed) as later:
            await comms.asend(Echo(text="later"))
        assert later.value.__cause__ is cause
        stats = comms.statistics()
        assert stats.requests_unanswered == 5 and stats.in_flight == 0


async def test_timeout_while_queued_behind_max_in_flight_says_never_written(autojump_clock: trio.abc.Clock) -> None:
    async with comms_and_peer(max_in_flight=1, max_unanswered=10) as (comms, peer):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(comms.asend, Echo(text="blocker"), 10)
            blocker = await peer.receive()
            with pytest.raises(actors.RequestTimeout, match=r"Echo still queued after 0.5 s; it was never written") as info:
                await comms.asend(Echo(text="queued"), timeout=0.5)
            assert (info.value.written, info.value.frame_id, info.value.message_type) == (False, None, "Echo")
            await peer.echo(blocker)
        await _answered(comms, peer, "next")
        assert [f.body["text"] for f in peer.received if f.body] == ["blocker", "next"]  # never written


async def test_thread_caller_timeout_is_exact_about_being_written() -> None:
    """Threads decide "written" by the same take the writer makes: never a guess."""
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer(max_in_flight=1, max_unanswered=10) as (comms, peer):
            results: dict[str, BaseException] = {}

            def call(name: str, timeout: float) -> None:
                try:
                    comms.send(Echo(text=name), timeout=timeout)
                except actors.RequestTimeout as exc:
                    results[name] = exc

            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.to_thread.run_sync, call, "holds", 1.0)  # outlasts "queued" by far
                await peer.receive()
                # Queued behind "holds" for all of its 0.1 s: never written.
                await trio.to_thread.run_sync(call, "queued", 0.1)
            holds, queued = results["holds"], results["queued"]
            assert isinstance(holds, actors.RequestTimeout) and (holds.written, holds.frame_id) == (True, 1)
            assert isinstance(queued, actors.RequestTimeout) and (queued.written, queued.frame_id) == (False, None)
            await peer.echo(peer.received[0])  # late, dropped
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.to_thread.run_sync, call, "next", 5)
                frame = await peer.receive()
                await peer.echo(frame)
            # "queued" never reached the wire: the next request is frame 2.
            assert [(f.id, f.body["text"]) for f in peer.received if f.body] == [(1, "holds"), (2, "next")]
            assert comms.statistics().replies_late == 1
