"""Fuzz: a live ``serve`` and a live ``open_comms`` fed mutated frames by a hostile peer.

Each example runs both ends over a real socketpair in a fresh ``trio.run``, with the
peer writing a stream of hostile frames (deep, wide, bad strings and timestamps,
empty-map floods, random values), each byte edited at random. The properties:

- no undocumented exception: ``serve`` returns or raises ``RemoteProtocolError`` /
  ``PeerNotReading``; every call ends with its reply or a documented error, and a
  ``ChannelClosed`` has a documented cause;
- no hang: everything ends within a few seconds of the peer's end (``fail_after``);
- bounded memory: the traced peak stays within a small multiple of what was sent;
- what we write back is always well-framed (the peer decodes every reply).

``make test`` runs the ``ci`` profile (50 examples); ``make soak`` 1,000.
"""

from __future__ import annotations

import collections
import contextlib
import tracemalloc
from typing import Any

import trio
from hypothesis import given
from hypothesis import strategies as st

import actors
from channel import (
    END_OF_STREAM,
    NEED_DATA,
    FrameDecoder,
    MessageDecodeError,
    OversizedFrame,
    RejectedFrame,
    RemoteProtocolError,
    RequestFrame,
    ResponseFrame,
    read_error_body,
)
from tests.actors.helpers import CODEC, Echo, Echoed, FakePeer, socket_stream_pair
from tests.strategies import framed, hostile_payloads, mutated

MAX_FRAME = 64 * 1024
CALLS = 4
BOUND = 10  # seconds: far above what any example needs; reached only by a hang
PEAK_FACTOR = 40  # traced peak within this many times the bytes sent, plus a floor
PEAK_FLOOR = 8 * 2**20

_request_body = st.just(b"\x82\xa4type\xa4Echo\xa4text\xa2hi")
_reply_body = st.integers(0, CALLS - 1).map(lambda i: b"\x82\xa4type\xa6Echoed\xa4text\xa1" + str(i).encode())

# Mostly the ids of the waiting calls (1..CALLS); sometimes the hello's, or one never sent.
_reply_ids = st.sampled_from([*range(1, CALLS + 1), *range(1, CALLS + 1), 0, CALLS + 1, 2**64 - 1])

hostile_requests = mutated(st.lists(hostile_payloads(st.integers(0, 50), _request_body).map(framed), min_size=1, max_size=6))
@st.composite
def _reply_frames(draw: st.DrawFn) -> list[bytes]:
    """One hostile reply for each waiting call, in any order, among hostile extras."""
    frames = [draw(hostile_payloads(st.just(i), _reply_body).map(framed)) for i in range(1, CALLS + 1)]
    frames += draw(st.lists(hostile_payloads(_reply_ids, _reply_body).map(framed), max_size=3))
    return draw(st.permutations(frames))


hostile_replies = mutated(_reply_frames())


def frame_ids_before_the_end(frame_type: type, stream: bytes) -> tuple[collections.Counter[int], bool]:
    """The ids of the frames (refused or not) a decoder gives for ``stream`` before
    its end, and whether it ended cleanly rather than on garbage."""
    decoder = FrameDecoder(frame_type, max_frame_size=MAX_FRAME)
    decoder.receive_data(stream)
    decoder.receive_data(b"")
    ids: collections.Counter[int] = collections.Counter()
    while True:
        try:
            event = decoder.next_frame()
        except RemoteProtocolError:
            return ids, False
        if event is END_OF_STREAM:
            return ids, True
        assert event is not NEED_DATA
        ids[event.id] += 1


def expected_outcomes(stream: bytes) -> dict[int, type]:
    """What each call (ids 1..CALLS) must end with: the first reply frame for its id
    decides, as the channel's rules say; a call without one sees the channel close."""
    decoder = FrameDecoder(ResponseFrame, max_frame_size=MAX_FRAME)
    decoder.receive_data(stream)
    decoder.receive_data(b"")
    outcomes: dict[int, type] = {}
    while True:
        try:
            event = decoder.next_frame()
        except RemoteProtocolError:
            break
        if event is END_OF_STREAM:
            break
        if event is NEED_DATA or event.id in outcomes or not 1 <= event.id <= CALLS:
            continue
        if isinstance(event, RejectedFrame):
            outcomes[event.id] = MessageDecodeError
        elif isinstance(event, OversizedFrame):
            outcomes[event.id] = actors.ReplyTooLarge
        elif event.error is not None:
            try:
                read_error_body(event.error)
                outcomes[event.id] = actors.RemoteError
            except MessageDecodeError:
                outcomes[event.id] = MessageDecodeError
        else:
            try:
                CODEC.decode(event.body)
                outcomes[event.id] = Echoed
            except MessageDecodeError:
                outcomes[event.id] = MessageDecodeError
    return {i: outcomes.get(i, actors.ChannelClosed) for i in range(1, CALLS + 1)}


def run_bounded(scenario: Any, sent: int) -> None:
    tracemalloc.start()
    try:
        trio.run(scenario)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < PEAK_FLOOR + PEAK_FACTOR * sent, peak


@given(hostile_requests)
def test_a_live_serve_survives_any_mutated_request_stream(stream: bytes) -> None:
    handled: list[object] = []
    outcome: list[BaseException | None] = []
    replies: collections.Counter[int] = collections.Counter()

    async def handler(message: object) -> Echoed:
        handled.append(message)
        assert isinstance(message, Echo)  # only decoded messages reach a handler
        return Echoed(text=message.text)

    async def scenario() -> None:
        ours, theirs = socket_stream_pair()

        async def run_serve() -> None:
            try:
                await actors.serve(ours, CODEC, handler, max_frame_size=MAX_FRAME, drain_timeout=1)
                outcome.append(None)
            except (RemoteProtocolError, actors.PeerNotReading) as exc:
                outcome.append(exc)

        async def read_replies() -> None:
            decoder = FrameDecoder(ResponseFrame)  # our replies are always well-framed
            while True:
                try:
                    data = await theirs.receive_some()
                except trio.BrokenResourceError:
                    return
                decoder.receive_data(data)
                while (event := decoder.next_frame()) is not NEED_DATA:
                    if event is END_OF_STREAM:
                        return
                    assert isinstance(event, ResponseFrame)
                    replies[event.id] += 1

        with trio.fail_after(BOUND):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(run_serve)
                nursery.start_soon(read_replies)
                try:
                    await theirs.send_all(stream)
                    await theirs.send_eof()
                except trio.BrokenResourceError:
                    pass  # serve closed on garbage before reading it all
        await theirs.aclose()

    run_bounded(scenario, len(stream))
    assert len(outcome) == 1
    # Nothing lost: every request frame the stream held before its end (or before
    # the garbage that ended it) was answered once, whatever it held.
    expected, ended_cleanly = frame_ids_before_the_end(RequestFrame, stream)
    if outcome[0] is None:
        assert ended_cleanly
        assert replies == expected
    else:
        assert replies <= expected


DOCUMENTED_CAUSES = (EOFError, RemoteProtocolError, actors.PeerUnresponsive, trio.BrokenResourceError, OSError)


@given(hostile_replies)
def test_a_live_requester_survives_any_mutated_reply_stream(stream: bytes) -> None:
    outcomes: dict[str, object] = {}
    text_of_id: dict[int, str] = {}

    async def scenario() -> None:
        ours, theirs = socket_stream_pair()
        peer = FakePeer(theirs)
        with trio.fail_after(BOUND):
            async with actors.open_comms(ours, CODEC, timeout=BOUND / 2, max_frame_size=MAX_FRAME) as comms:

                async def call(i: int) -> None:
                    try:
                        outcomes[str(i)] = await comms.asend(Echo(text=str(i)))
                    except (actors.RemoteError, MessageDecodeError, actors.ChannelClosed) as exc:
                        outcomes[str(i)] = exc

                async with trio.open_nursery() as nursery:
                    for i in range(CALLS):
                        nursery.start_soon(call, i)
                    for frame in await peer.receive_n(CALLS):
                        assert frame.body is not None
                        text_of_id[frame.id] = frame.body["text"]
                    with contextlib.suppress(trio.BrokenResourceError):
                        await theirs.send_all(stream)  # (the channel may close on garbage first)
                    await theirs.aclose()  # every call left must now end promptly

    run_bounded(scenario, len(stream))
    assert len(outcomes) == CALLS
    for frame_id, expected in expected_outcomes(stream).items():
        outcome = outcomes[text_of_id[frame_id]]
        assert type(outcome) is expected, (frame_id, outcome, expected)
        if isinstance(outcome, actors.ChannelClosed):
            assert isinstance(outcome.__cause__, DOCUMENTED_CAUSES), repr(outcome.__cause__)
