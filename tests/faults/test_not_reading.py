"""A peer that never reads: both ends stay bounded and then close, neither stays OPEN.

Real socketpairs; the ``autojump_clock`` runs the stall bounds (10-30 s) in no
time, because once the socket is full every task is blocked.
"""

from __future__ import annotations

import contextlib

import trio
import trio.testing

import actors
from channel import RequestFrame, encode_frame
from tests.actors.helpers import CODEC, Echo, Echoed, comms_and_peer, socket_stream_pair


async def test_a_requester_whose_peer_stops_reading_closes_with_peer_not_reading(
    autojump_clock: trio.testing.MockClock,
) -> None:
    body = "x" * 64 * 1024  # a few of these fill any socket buffer
    async with comms_and_peer(timeout=1.0) as (comms, _peer):
        outcomes: list[BaseException] = []

        async def caller(i: int) -> None:
            while True:
                try:
                    await comms.asend(Echo(text=f"{i}{body}"))
                except actors.RequestTimeout:
                    continue
                except actors.ChannelClosed as exc:
                    outcomes.append(exc)
                    return

        start = trio.current_time()
        with trio.fail_after(60):  # virtual seconds: the bound is 10
            async with trio.open_nursery() as nursery:
                for i in range(20):
                    nursery.start_soon(caller, i)
        closed_after = trio.current_time() - start
    assert len(outcomes) == 20
    cause = outcomes[0].__cause__
    assert isinstance(cause, actors.PeerNotReading), cause
    assert cause.stalled_for == 10.0  # max(10 s, 2 x timeout)
    assert cause.unwritten > 0
    assert "stopped reading" in str(cause)
    # The stall bound after the socket filled, not the callers' deadlines forever.
    assert 10.0 <= closed_after < 12.0


async def test_serve_stops_handling_while_replies_wait_then_ends_with_peer_not_reading(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """The peer floods requests and reads nothing: serve handles only as many as its
    reply bound and the socket hold, not all of them, then raises PeerNotReading."""
    ours, theirs = socket_stream_pair()
    handled = 0
    reply_text = "r" * 4096

    async def handler(message: Echo) -> Echoed:
        nonlocal handled
        handled += 1
        return Echoed(text=reply_text)

    requests = 5_000
    flood = b"".join(
        encode_frame(RequestFrame(id=i, body=CODEC.encode(Echo(text="q")))) for i in range(1, requests + 1)
    )
    raised: list[BaseException] = []

    async def run_serve() -> None:
        try:
            await actors.serve(
                ours, CODEC, handler, max_concurrency=8, max_unwritten=64 * 1024, stall_timeout=30.0
            )
        except actors.PeerNotReading as exc:
            raised.append(exc)

    start = trio.current_time()
    with trio.fail_after(120):  # virtual seconds: the bound is 30
        async with trio.open_nursery() as nursery:
            nursery.start_soon(run_serve)
            with contextlib.suppress(trio.BrokenResourceError):
                await theirs.send_all(flood)  # small requests: the socket takes them all
    ended_after = trio.current_time() - start
    await theirs.aclose()
    (error,) = raised
    assert error.stalled_for == 30.0
    assert 30.0 <= ended_after < 32.0
    # At most: the socket's buffer of replies, max_unwritten, and the handlers
    # running when the bound was reached; never the whole flood.
    assert handled < 300, handled
