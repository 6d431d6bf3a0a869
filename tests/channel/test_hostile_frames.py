"""A peer is untrusted: what any frame can cost the decoder and the codec.

Each test is an attack that once crashed or exhausted the receiving side (deep
nesting formatted into a RecursionError, empty maps amplified 80 times, a bad string
closing the whole channel). The rule: any bytes give frames, events, a
``RejectedFrame`` that fails alone, or a ``RemoteProtocolError``; nothing else, in
bounded memory, and a frame refused alone leaves the stream in sync.
"""

from __future__ import annotations

import struct
import tracemalloc

import attrs
import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from channel import (
    DEFAULT_MAX_DEPTH,
    NEED_DATA,
    Codec,
    ErrorReply,
    FrameDecoder,
    MessageDecodeError,
    RejectedFrame,
    RemoteProtocolError,
    RequestFrame,
    ResponseFrame,
    encode_frame,
    error_body,
    read_error_body,
)
from channel.lowlevel import max_containers
from tests.strategies import frame_ids, framed, hostile_payloads, mutated, nested

FOLLOWER = encode_frame(RequestFrame(id=99, body={"type": "Ping"}))


def decode_all(frame_type: type, data: bytes) -> list[object]:
    decoder = FrameDecoder(frame_type)
    decoder.receive_data(data)
    events = []
    while (event := decoder.next_frame()) is not NEED_DATA:
        events.append(event)
    return events


@pytest.mark.parametrize("depth", [DEFAULT_MAX_DEPTH + 1, 1_000, 2_000])
@pytest.mark.parametrize("frame_type", [RequestFrame, ResponseFrame])
def test_a_body_nested_too_deep_fails_alone_and_the_next_frame_decodes(frame_type: type, depth: int) -> None:
    follower = FOLLOWER if frame_type is RequestFrame else encode_frame(ResponseFrame(id=99, body={"type": "Ping"}))
    rejected, after = decode_all(frame_type, framed(b"\x92\x07" + nested(depth)) + follower)
    assert rejected == RejectedFrame(id=7, reason=f"nested deeper than max_depth={DEFAULT_MAX_DEPTH}", offset=0)
    assert after.id == 99


def test_a_body_exactly_max_depth_deep_decodes() -> None:
    (frame,) = decode_all(RequestFrame, framed(b"\x92\x01" + nested(DEFAULT_MAX_DEPTH)))
    assert isinstance(frame, RequestFrame) and frame.id == 1


def test_an_error_nested_too_deep_in_a_reply_fails_alone() -> None:
    error = b"\x83\xa4type\xadErrorResponse\xa5error\xadGENERIC_ERROR\xa6detail" + nested(1_000)
    (rejected,) = decode_all(ResponseFrame, framed(b"\x93\x05\xc0" + error))
    assert isinstance(rejected, RejectedFrame) and rejected.id == 5
    assert isinstance(rejected.decode_error(), MessageDecodeError)


def test_the_depth_bound_holds_on_the_large_frame_path_too() -> None:
    padding = b"\xa1p\xda" + struct.pack(">H", 60_000) + b"x" * 60_000  # > 64 KiB in all
    body = b"\x82" + padding + b"\xa1a" + b"\x91" * DEFAULT_MAX_DEPTH + b"\xc0"
    (rejected,) = decode_all(RequestFrame, framed(b"\x92\x03" + body + b"\x00" * 0))
    assert isinstance(rejected, RejectedFrame) and "max_depth" in rejected.reason


def test_deep_nesting_with_a_trailing_byte_is_a_bounded_protocol_error() -> None:
    # The 1 KiB frame that killed a supervisor: formatting msgpack's ExtraData
    # (which holds the nested value) raised RecursionError.
    decoder = FrameDecoder(RequestFrame)
    decoder.receive_data(framed(b"\x91" * 1_000 + b"\xc0" + b"\x00"))
    with pytest.raises(RemoteProtocolError, match="not one msgpack value: ExtraData") as caught:
        decoder.next_frame()
    assert len(str(caught.value)) < 300


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (b"\xa2\xff\xfe", "UnicodeDecodeError"),  # a str that is not UTF-8
        (b"\xc7\x0c\xff" + struct.pack(">Iq", 0, 2**62), "OverflowError"),  # a timestamp past datetime
    ],
)
def test_a_bad_string_or_timestamp_fails_only_its_frame(value: bytes, why: str) -> None:
    bad = framed(b"\x92\x04\x82\xa4type\xa4Ping\xa1v" + value)
    rejected, after = decode_all(RequestFrame, bad + FOLLOWER)
    assert isinstance(rejected, RejectedFrame) and rejected.id == 4 and why in rejected.reason
    assert after.id == 99


@pytest.mark.parametrize("item", [b"\x80", b"\x90", b"\x81\xc0\xc0", b"\x91\xc0"])
def test_a_frame_of_empty_containers_is_refused_before_it_costs_80_times_its_size(item: bytes) -> None:
    count = 1_000_000
    payload = b"\x92\x05\x81\xa1a\xdd" + struct.pack(">I", count) + item * count
    decoder = FrameDecoder(RequestFrame)
    decoder.receive_data(framed(payload))
    tracemalloc.start()
    try:
        event = decoder.next_frame()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(event, RejectedFrame) and event.id == 5
    assert f"more than {max_containers(len(payload))} maps and arrays" in event.reason
    # The outer array's pointers (8 bytes per item) plus the budget's containers:
    # within the ~20x FrameDecoder documents (unbounded, these cost 36-80x).
    assert peak < 20 * len(payload), peak / len(payload)


def test_a_large_frame_of_real_maps_decodes() -> None:
    body = {"type": "Batch", "items": [{"key": f"k{i}", "value": i} for i in range(20_000)]}
    frame = RequestFrame(id=8, body=body)
    (decoded,) = decode_all(RequestFrame, encode_frame(frame))
    assert decoded == frame


def test_a_deep_frame_without_a_readable_id_closes_the_stream() -> None:
    decoder = FrameDecoder(RequestFrame)
    decoder.receive_data(framed(b"\x92" + b"\x91" * 2_000 + b"\xc0" + b"\xc0"))
    with pytest.raises(RemoteProtocolError, match="without a readable id"):
        decoder.next_frame()


def test_error_texts_stay_short_whatever_the_peer_sent() -> None:
    deep: object = None
    for _ in range(5_000):
        deep = [deep]
    error = ErrorReply("GENERIC_ERROR", {"detail": deep, "big": "x" * 10_000_000})
    assert len(str(error)) < 1_000
    with pytest.raises(MessageDecodeError) as caught:
        Codec([_Ping]).decode({"type": "x" * 10_000_000})
    assert len(str(caught.value)) < 1_000
    with pytest.raises(MessageDecodeError) as caught:
        read_error_body({"type": "ErrorResponse", "error": ["y" * 10_000_000]})
    assert len(str(caught.value)) < 1_000
    answer = error_body(caught.value)
    assert len(msgpack.packb(answer)) < 2_000


@attrs.frozen
class _Ping:
    pass


# ---------------------------------------------------------------- the fuzz property

_any_payload = hostile_payloads(frame_ids, st.just(b"\x81\xa4type\xa4Ping"))
mutated_streams = mutated(st.lists(_any_payload.map(framed), min_size=1, max_size=4))


def depth_of(value: object) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack += [(inner, depth + 1) for inner in (item.values() if isinstance(item, dict) else item)]
    return deepest


@given(mutated_streams, st.sampled_from([RequestFrame, ResponseFrame]))
def test_any_mutated_stream_gives_only_documented_outcomes(stream: bytes, frame_type: type) -> None:
    codec = Codec([_Ping])
    decoder = FrameDecoder(frame_type, max_frame_size=64 * 1024)
    decoder.receive_data(stream)
    decoder.receive_data(b"")
    for _ in range(len(stream) + 2):  # every event consumes bytes: this always ends
        try:
            event = decoder.next_frame()
        except RemoteProtocolError as exc:
            assert len(str(exc)) < 1_000
            return
        if not isinstance(event, (RequestFrame, ResponseFrame)):
            if isinstance(event, RejectedFrame):
                assert len(event.reason) < 1_000
                continue
            return  # END_OF_STREAM (or an OversizedFrame's skip reaching the end)
        # Whatever decoded is within the bounds, and the codec and the error reader
        # give only their own error on it.
        for value in (event.body, getattr(event, "error", None), getattr(event, "context_carrier", None)):
            if value is None:
                continue
            assert depth_of(value) <= DEFAULT_MAX_DEPTH
            for read in (codec.decode, read_error_body):
                try:
                    read(value)
                except MessageDecodeError as exc:
                    assert len(str(exc)) < 1_000
    raise AssertionError("the decoder did not come to an end")
