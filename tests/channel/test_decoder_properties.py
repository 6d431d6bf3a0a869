"""Hypothesis properties of the frame decoder.

Any frame round-trips; any chunking of a stream yields the same frames; garbage and
mutated streams raise only our RemoteProtocolError family (never another type,
never a hang) and never leave more than one partial frame buffered.
"""

from __future__ import annotations

import itertools
import struct

from hypothesis import given
from hypothesis import strategies as st

from channel import (
    END_OF_STREAM,
    NEED_DATA,
    FrameDecoder,
    FrameTooLarge,
    OversizedFrame,
    RemoteProtocolError,
    RequestFrame,
    ResponseFrame,
    encode_frame,
)
from tests.strategies import request_frames, response_frames

# Small enough that random garbage often exceeds it, so the buffering bound bites.
SMALL_MAX = 32


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


def drain(decoder: FrameDecoder, max_frame_size: int) -> list:
    """Take every whole frame out; check the buffered-bytes bound once drained."""
    out = []
    while True:
        frame = decoder.next_frame()
        if frame is NEED_DATA:
            # One partial frame at most; an oversized frame's head (<= 10 bytes) may
            # wait here even when max_frame_size is smaller than that.
            assert decoder.buffered_size <= 4 + max(max_frame_size, 10)
            return out
        if frame is END_OF_STREAM:
            out.append(frame)
            return out
        out.append(frame)


@given(request_frames)
def test_any_request_frame_round_trips(frame: RequestFrame) -> None:
    decoder = FrameDecoder(RequestFrame)
    decoder.receive_data(encode_frame(frame))
    assert decoder.next_frame() == frame


@given(response_frames)
def test_any_response_frame_round_trips(frame: ResponseFrame) -> None:
    decoder = FrameDecoder(ResponseFrame)
    decoder.receive_data(encode_frame(frame))
    assert decoder.next_frame() == frame


@given(st.lists(response_frames, max_size=8), st.lists(st.integers(min_value=0), max_size=30))
def test_any_chunking_yields_the_same_frames(frames: list[ResponseFrame], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(f) for f in frames)
    decoder = FrameDecoder(ResponseFrame)
    got = []
    for chunk in split(stream, cuts):
        decoder.receive_data(chunk)
        got += drain(decoder, decoder.max_frame_size)
    decoder.receive_data(b"")
    got += drain(decoder, decoder.max_frame_size)
    assert got == [*frames, END_OF_STREAM]


def feed_all(frame_type: type, chunks: list[bytes], max_frame_size: int) -> None:
    """Feed chunks then EOF; only our protocol errors may escape, and it must end."""
    decoder = FrameDecoder(frame_type, max_frame_size=max_frame_size)
    try:
        for chunk in chunks:
            decoder.receive_data(chunk)
            drain(decoder, max_frame_size)
        decoder.receive_data(b"")
        assert drain(decoder, max_frame_size)[-1:] == [END_OF_STREAM]
    except RemoteProtocolError:
        assert decoder.failed is not None
        assert decoder.buffered_size == 0


@given(st.sampled_from([RequestFrame, ResponseFrame]), st.lists(st.binary(min_size=1, max_size=64), max_size=10))
def test_garbage_raises_only_protocol_errors(frame_type: type, chunks: list[bytes]) -> None:
    feed_all(frame_type, chunks, SMALL_MAX)


@st.composite
def mutated_streams(draw: st.DrawFn) -> bytes:
    frames = draw(st.lists(response_frames, min_size=1, max_size=4))
    data = bytearray(b"".join(encode_frame(f) for f in frames))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(data)))
        kind = draw(st.sampled_from(["flip", "insert", "delete"]))
        if kind == "flip" and where < len(data):
            data[where] ^= draw(st.integers(1, 255))
        elif kind == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[where : where + draw(st.integers(1, 8))]
    return bytes(data)


@given(mutated_streams(), st.lists(st.integers(min_value=0), max_size=10))
def test_mutated_streams_raise_only_protocol_errors(stream: bytes, cuts: list[int]) -> None:
    feed_all(ResponseFrame, split(stream, cuts), 4096)


@given(
    st.sampled_from([RequestFrame, ResponseFrame]),
    st.integers(min_value=1, max_value=4096),
    st.data(),
)
def test_any_oversized_prefix_buffers_nothing_of_its_body(
    frame_type: type, max_frame_size: int, data: st.DataObject
) -> None:
    """Whatever follows an oversized prefix, none of that frame's body is ever kept:
    the decoder fails, waits for at most a 10-byte head, or skips the frame."""
    length = data.draw(st.integers(min_value=max_frame_size + 1, max_value=2**32 - 1))
    tail = data.draw(st.binary(max_size=64))
    decoder = FrameDecoder(frame_type, max_frame_size=max_frame_size)
    decoder.receive_data(struct.pack(">I", length) + tail)
    try:
        event = decoder.next_frame()
    except FrameTooLarge as error:
        assert error.size == length and error.offset == 0
        assert decoder.buffered_size == 0
        return
    if event is NEED_DATA:
        assert decoder.buffered_size <= 4 + 10
    else:
        assert isinstance(event, OversizedFrame)
        assert (event.size, event.max_frame_size, event.offset) == (length, max_frame_size, 0)
        assert decoder.buffered_size == max(0, len(tail) - length)


def oversized(frame: ResponseFrame, max_frame_size: int) -> bool:
    return len(encode_frame(frame)) - 4 > max_frame_size


@given(
    st.lists(response_frames, max_size=8),
    st.lists(st.integers(min_value=0), max_size=30),
    st.integers(min_value=8, max_value=200),
)
def test_oversized_frames_are_skipped_in_any_chunking(
    frames: list[ResponseFrame], cuts: list[int], max_frame_size: int
) -> None:
    """Frames over the limit come out as OversizedFrame(id) in their place; the rest
    come out whole; nothing of a skipped frame is ever buffered."""
    stream = b"".join(encode_frame(f) for f in frames)
    decoder = FrameDecoder(ResponseFrame, max_frame_size=max_frame_size)
    got: list[object] = []
    for chunk in split(stream, cuts):
        decoder.receive_data(chunk)
        got += drain(decoder, max_frame_size)
    decoder.receive_data(b"")
    got += drain(decoder, max_frame_size)
    expected = [
        ("skipped", f.id) if oversized(f, max_frame_size) else f for f in frames
    ]
    assert [("skipped", e.id) if isinstance(e, OversizedFrame) else e for e in got] == [*expected, END_OF_STREAM]
