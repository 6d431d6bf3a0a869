"""Frames and the decoder: golden bytes, every error kind, EOF and terminal state.

Synchronous, no trio: channel/ is sans-IO, so its tests feed bytes and read frames.
"""

from __future__ import annotations

import struct

import msgpack
import pytest

from channel import (
    END_OF_STREAM,
    NEED_DATA,
    FrameDecoder,
    FrameTooLarge,
    LocalProtocolError,
    MessageEncodeError,
    OversizedFrame,
    RejectedFrame,
    RemoteProtocolError,
    RequestFrame,
    ResponseFrame,
    TruncatedFrame,
    encode_frame,
)
from channel.lowlevel import frame_head, pack_value


def prefixed(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


# Hand-computed: length prefix, fixarray header, then the fields.
GOLDEN = [
    # Airflow's hello: the supervisor's unsolicited StartTriggerer with id 0.
    (
        ResponseFrame(id=0, body={"type": "StartTriggerer"}),
        b"\x00\x00\x00\x17" + b"\x92\x00" + b"\x81\xa4type\xaeStartTriggerer",
    ),
    # An error reply: body nil, error map; nothing omitted because error is last.
    (
        ResponseFrame(
            id=5, error={"type": "ErrorResponse", "error": "NOT_FOUND", "detail": None}
        ),
        b"\x00\x00\x00\x2f"
        + b"\x93\x05\xc0"
        + b"\x83\xa4type\xadErrorResponse\xa5error\xa9NOT_FOUND\xa6detail\xc0",
    ),
    # A request: [id, body].
    (
        RequestFrame(id=1, body={"type": "GetX", "key": "k"}),
        b"\x00\x00\x00\x13" + b"\x92\x01" + b"\x82\xa4type\xa4GetX\xa3key\xa1k",
    ),
    # An empty reply: [id] alone, body and error omitted.
    (ResponseFrame(id=7), b"\x00\x00\x00\x02\x91\x07"),
    # A request with a context carrier; id 300 needs a uint16.
    (
        RequestFrame(id=300, body=None, context_carrier={}),
        b"\x00\x00\x00\x06" + b"\x93\xcd\x01\x2c" + b"\xc0\x80",
    ),
]


@pytest.mark.parametrize(("frame", "wire"), GOLDEN)
def test_golden_bytes_encode(frame: RequestFrame | ResponseFrame, wire: bytes) -> None:
    assert encode_frame(frame) == wire


@pytest.mark.parametrize(("frame", "wire"), GOLDEN)
def test_golden_bytes_decode(frame: RequestFrame | ResponseFrame, wire: bytes) -> None:
    decoder = FrameDecoder(type(frame))
    decoder.receive_data(wire)
    assert decoder.next_frame() == frame
    assert decoder.next_frame() is NEED_DATA


def test_frame_head_plus_prepacked_body_equals_encode_frame() -> None:
    body = {"type": "GetX", "payload": "x" * 300}
    packed = pack_value(body)
    assert frame_head(2**40, len(packed), 1) + packed == encode_frame(
        RequestFrame(id=2**40, body=body)
    )


@pytest.mark.parametrize(
    "frame_id",
    [0, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x1_0000, 0xFFFF_FFFF, 0x1_0000_0000, 2**64 - 1],
)
def test_frame_head_writes_every_id_width_as_msgpack_does(frame_id: int) -> None:
    packed = pack_value({"type": "Ok"})
    payload = msgpack.packb([frame_id, {"type": "Ok"}])
    assert frame_head(frame_id, len(packed), 1) + packed == len(payload).to_bytes(4, "big") + payload


def test_response_with_body_and_no_error_omits_error() -> None:
    wire = encode_frame(ResponseFrame(id=3, body={"type": "Ok"}))
    assert msgpack.unpackb(wire[4:]) == [3, {"type": "Ok"}]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"id": -1, "body": None}, "outside"),
        ({"id": 2**64, "body": None}, "outside"),
        ({"id": True, "body": None}, "not bool"),
        ({"id": "1", "body": None}, "not str"),
        ({"id": 1, "body": [1]}, "body must be a map"),
        ({"id": 1, "body": None, "context_carrier": "x"}, "context_carrier must be a map"),
    ],
)
def test_request_frame_validates_in_constructor(kwargs: dict, match: str) -> None:
    with pytest.raises(LocalProtocolError, match=match):
        RequestFrame(**kwargs)


def test_response_frame_validates_error_field() -> None:
    with pytest.raises(LocalProtocolError, match="error must be a map"):
        ResponseFrame(id=1, error="boom")  # type: ignore[arg-type]


def test_encode_unpackable_value_raises_message_encode_error() -> None:
    with pytest.raises(MessageEncodeError, match="cannot pack dict"):
        encode_frame(RequestFrame(id=1, body={"type": "X", "obj": object()}))


def test_encode_over_max_frame_size_is_local_error() -> None:
    frame = RequestFrame(id=1, body={"type": "X", "blob": b"x" * 100})
    with pytest.raises(LocalProtocolError, match="exceeds max_frame_size=50"):
        encode_frame(frame, max_frame_size=50)
    assert len(encode_frame(frame, max_frame_size=200)) > 100


def test_decoder_needs_data_until_the_whole_frame_is_in() -> None:
    wire = encode_frame(RequestFrame(id=9, body={"type": "X"}))
    decoder = FrameDecoder(RequestFrame)
    for byte in wire[:-1]:
        decoder.receive_data(bytes([byte]))
        assert decoder.next_frame() is NEED_DATA
    decoder.receive_data(wire[-1:])
    assert decoder.next_frame() == RequestFrame(id=9, body={"type": "X"})
    assert decoder.buffered_size == 0


def test_many_frames_in_one_chunk() -> None:
    frames = [ResponseFrame(id=i, body={"type": "R", "i": i}) for i in range(100)]
    decoder = FrameDecoder(ResponseFrame)
    decoder.receive_data(b"".join(encode_frame(f) for f in frames))
    got = []
    while isinstance(frame := decoder.next_frame(), ResponseFrame):
        got.append(frame)
    assert got == frames
    assert decoder.buffered_size == 0


def test_eof_between_frames_is_a_clean_end() -> None:
    decoder = FrameDecoder(ResponseFrame)
    decoder.receive_data(encode_frame(ResponseFrame(id=1)))
    decoder.receive_data(b"")
    assert decoder.next_frame() == ResponseFrame(id=1)
    assert decoder.next_frame() is END_OF_STREAM
    assert decoder.next_frame() is END_OF_STREAM


def test_eof_inside_a_frame_is_truncated_frame_with_offset() -> None:
    first = encode_frame(ResponseFrame(id=1))
    second = encode_frame(ResponseFrame(id=2, body={"type": "X"}))
    decoder = FrameDecoder(ResponseFrame)
    decoder.receive_data(first + second[:5])
    decoder.receive_data(b"")
    assert decoder.next_frame() == ResponseFrame(id=1)
    with pytest.raises(TruncatedFrame, match=f"after 5 bytes.*offset {len(first)}") as info:
        decoder.next_frame()
    assert (info.value.received, info.value.offset) == (5, len(first))


def test_eof_inside_the_length_prefix_is_truncated() -> None:
    decoder = FrameDecoder(ResponseFrame)
    decoder.receive_data(b"\x00\x00")
    decoder.receive_data(b"")
    with pytest.raises(TruncatedFrame):
        decoder.next_frame()


def test_data_after_eof_is_a_usage_error() -> None:
    decoder = FrameDecoder(ResponseFrame)
    decoder.receive_data(b"")
    with pytest.raises(RuntimeError, match="after the end of stream"):
        decoder.receive_data(b"\x00")


def test_oversized_prefix_fails_before_any_body_is_buffered() -> None:
    decoder = FrameDecoder(ResponseFrame, max_frame_size=1024)
    decoder.receive_data(struct.pack(">I", 2**32 - 1) + b"\xc1")  # no frame head follows
    with pytest.raises(FrameTooLarge, match="4294967295 bytes exceeds max_frame_size=1024") as info:
        decoder.next_frame()
    assert (info.value.size, info.value.max_frame_size, info.value.offset) == (2**32 - 1, 1024, 0)
    assert decoder.buffered_size == 0


def test_oversized_frame_with_a_readable_id_is_skipped_as_it_streams_in() -> None:
    big = encode_frame(ResponseFrame(id=300, body={"type": "X", "b": b"y" * 5000}))
    small = encode_frame(ResponseFrame(id=301, body={"type": "X"}))
    decoder = FrameDecoder(ResponseFrame, max_frame_size=1024)
    decoder.receive_data(big[:100])
    event = decoder.next_frame()
    assert event == OversizedFrame(id=300, size=len(big) - 4, max_frame_size=1024, offset=0)
    assert event.error_reply("response").code == "FRAME_TOO_LARGE"
    assert event.error_reply("response").detail == {"frame": "response", "size": len(big) - 4, "max_frame_size": 1024}
    assert decoder.buffered_size == 0
    for start in range(100, len(big), 700):
        decoder.receive_data(big[start : start + 700])
        assert decoder.next_frame() is NEED_DATA
        assert decoder.buffered_size == 0
    decoder.receive_data(small)
    assert decoder.next_frame() == ResponseFrame(id=301, body={"type": "X"})


def test_oversized_frame_head_waits_for_its_id_bytes() -> None:
    big = encode_frame(RequestFrame(id=2**40, body={"type": "X", "b": b"y" * 5000}))
    decoder = FrameDecoder(RequestFrame, max_frame_size=1024)
    decoder.receive_data(big[:8])  # prefix, array byte, uint64 marker, 2 of 8 id bytes
    assert decoder.next_frame() is NEED_DATA
    decoder.receive_data(big[8:14])
    event = decoder.next_frame()
    assert isinstance(event, OversizedFrame) and event.id == 2**40


def test_oversized_garbage_without_a_frame_head_fails() -> None:
    decoder = FrameDecoder(ResponseFrame, max_frame_size=1024)
    decoder.receive_data(struct.pack(">I", 5000) + b"\x81\xa1a")  # a map, not an array
    with pytest.raises(FrameTooLarge):
        decoder.next_frame()
    assert decoder.buffered_size == 0


def test_stream_ending_inside_a_skipped_frame_is_truncated() -> None:
    big = encode_frame(ResponseFrame(id=7, body={"type": "X", "b": b"y" * 5000}))
    decoder = FrameDecoder(ResponseFrame, max_frame_size=1024)
    decoder.receive_data(big[:3000])
    assert isinstance(decoder.next_frame(), OversizedFrame)
    decoder.receive_data(b"")
    with pytest.raises(TruncatedFrame, match="after 3000 bytes") as info:
        decoder.next_frame()
    assert info.value.offset == 0


def test_frame_of_exactly_max_frame_size_is_accepted() -> None:
    wire = encode_frame(ResponseFrame(id=1, body={"type": "X", "b": b"y" * 200}))
    decoder = FrameDecoder(ResponseFrame, max_frame_size=len(wire) - 4)
    decoder.receive_data(wire)
    assert isinstance(decoder.next_frame(), ResponseFrame)


BAD_PAYLOADS = [
    (b"", "zero-length frame"),
    (b"\xc1", "not one msgpack value"),  # 0xc1 is never used in msgpack
    (msgpack.packb([1, None]) + b"\x00", "not one msgpack value"),  # trailing bytes
    (msgpack.packb({"id": 1}), "msgpack dict, not an array"),
    (msgpack.packb(7), "msgpack int, not an array"),
    (msgpack.packb([]), "0 elements"),
    (msgpack.packb([1, None, None, None]), "4 elements"),
    (msgpack.packb([-1]), "outside"),
    (msgpack.packb(["1"]), "not str"),
    (msgpack.packb([True]), "not bool"),
    (msgpack.packb([1.0]), "not float"),
    (msgpack.packb(["1", 5]), "not str"),  # a bad body under an id nobody can answer
]


@pytest.mark.parametrize(("payload", "match"), BAD_PAYLOADS)
def test_bad_response_frames_are_remote_protocol_errors(payload: bytes, match: str) -> None:
    good = encode_frame(ResponseFrame(id=1))
    decoder = FrameDecoder(ResponseFrame)
    decoder.receive_data(good + prefixed(payload))
    assert decoder.next_frame() == ResponseFrame(id=1)
    with pytest.raises(RemoteProtocolError, match=match) as info:
        decoder.next_frame()
    assert info.value.offset == len(good)
    assert f"offset {len(good)}" in str(info.value)


@pytest.mark.parametrize(
    ("frame_type", "payload", "reason"),
    [
        (ResponseFrame, [7, 5], "body must be a map or nil, not int"),
        (ResponseFrame, [7, [1]], "body must be a map or nil, not list"),
        (ResponseFrame, [7, None, "oops"], "error must be a map or nil, not str"),
        (RequestFrame, [7, "x"], "body must be a map or nil, not str"),
        (RequestFrame, [7, None, 5], "context_carrier must be a map or nil, not int"),
    ],
)
def test_a_field_that_is_not_a_map_under_a_readable_id_fails_that_frame_alone(
    frame_type: type[RequestFrame] | type[ResponseFrame], payload: list[object], reason: str
) -> None:
    """Decided in issue 18: a body that is an int is no worse than a map that is not
    a known message, so it fails its own call (it used to close the channel)."""
    decoder = FrameDecoder(frame_type)
    follower = RequestFrame(id=8, body=None) if frame_type is RequestFrame else ResponseFrame(id=8)
    decoder.receive_data(prefixed(msgpack.packb(payload)) + encode_frame(follower))
    rejected = decoder.next_frame()
    assert isinstance(rejected, RejectedFrame)
    assert (rejected.id, rejected.offset) == (7, 0)
    assert reason in rejected.reason
    assert decoder.next_frame() == follower


def test_request_decoder_checks_request_arity() -> None:
    for payload, match in [
        (msgpack.packb([1]), "request frame has 1 elements"),
        (msgpack.packb([1, None, None, None]), "request frame has 4 elements"),
    ]:
        decoder = FrameDecoder(RequestFrame)
        decoder.receive_data(prefixed(payload))
        with pytest.raises(RemoteProtocolError, match=match):
            decoder.next_frame()


def test_failed_decoder_stays_failed_and_buffers_nothing() -> None:
    decoder = FrameDecoder(ResponseFrame)
    decoder.receive_data(prefixed(b""))
    with pytest.raises(RemoteProtocolError) as first:
        decoder.next_frame()
    decoder.receive_data(encode_frame(ResponseFrame(id=2)))
    assert decoder.buffered_size == 0
    with pytest.raises(RemoteProtocolError) as again:
        decoder.next_frame()
    assert again.value is first.value
    assert decoder.failed is first.value


def test_decoder_rejects_bad_configuration() -> None:
    with pytest.raises(ValueError, match="max_frame_size"):
        FrameDecoder(ResponseFrame, max_frame_size=0)
    with pytest.raises(ValueError, match="frame_type"):
        FrameDecoder(dict)  # type: ignore[type-var]


def test_aware_datetimes_travel_as_msgpack_timestamps() -> None:
    import datetime as dt

    when = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
    wire = encode_frame(RequestFrame(id=1, body={"type": "X", "when": when}))
    assert b"\xd7\xff" in wire  # timestamp64 extension header
    decoder = FrameDecoder(RequestFrame)
    decoder.receive_data(wire)
    frame = decoder.next_frame()
    assert isinstance(frame, RequestFrame) and frame.body == {"type": "X", "when": when}


def test_next_fields_gives_the_checked_fields_without_a_frame_object() -> None:
    decoder = FrameDecoder(ResponseFrame)
    error = {"type": "ErrorResponse", "error": "NOT_FOUND", "detail": None}
    decoder.receive_data(
        encode_frame(ResponseFrame(id=7))
        + encode_frame(ResponseFrame(id=300, body={"type": "X"}))
        + encode_frame(ResponseFrame(id=5, error=error))
    )
    assert decoder.next_fields() == (7, None, None)
    assert decoder.next_fields() == (300, {"type": "X"}, None)
    assert decoder.next_fields() == (5, None, error)
    assert decoder.next_fields() is NEED_DATA
    requests = FrameDecoder(RequestFrame)
    requests.receive_data(encode_frame(RequestFrame(id=1, body=None, context_carrier={"a": "b"})))
    assert requests.next_fields() == (1, None, {"a": "b"})


@pytest.mark.parametrize(
    "payload",
    [
        msgpack.packb([-1, None]),  # a negative id
        msgpack.packb([True, None]),  # a bool is not an id
        msgpack.packb(["1", [1]]),  # an id that is a string
        msgpack.packb([1, None]) + b"\xc0",  # a second value inside the frame
        b"\xc1",  # never valid msgpack
    ],
)
def test_the_fast_path_leaves_every_bad_frame_to_the_careful_one(payload: bytes) -> None:
    # (A field that is not a map under a readable id is refused alone: see above.)
    """A whole frame the fast path rejects raises the careful path's precise error."""
    decoder = FrameDecoder(ResponseFrame)
    decoder.receive_data(prefixed(payload))
    with pytest.raises(RemoteProtocolError) as info:
        decoder.next_fields()
    assert info.value.offset == 0
    with pytest.raises(RemoteProtocolError):
        decoder.next_frame()  # and it stays failed


def test_pack_value_is_exact_after_a_failed_pack() -> None:
    """The per-thread Packer is reused: a pack that fails must leave nothing behind."""
    import datetime

    with pytest.raises(MessageEncodeError):
        pack_value({"when": [1, datetime.datetime(2026, 1, 1)]})  # naive: refused midway
    assert pack_value({"b": 2}) == msgpack.packb({"b": 2})
