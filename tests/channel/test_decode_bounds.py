"""The documented cost of decoding one legal frame (docs/wire.rst, FrameDecoder):
at most 42 times its size in Python objects, whatever it holds; a 16 MiB frame blocks
for about a second and a half (here; the test allows 10 s on a loaded machine); any
msgpack extension type but the timestamp is refused alone, at once (16 MiB of
``fixext1`` took 6.7 s and 27 times its size to decode).
"""

from __future__ import annotations

import struct
import time
import tracemalloc

import pytest

from channel import FrameDecoder, RejectedFrame, RequestFrame

MiB = 2**20
HEAD = b"\x92\x01\x82\xa4type\xa1X\xa1v"  # [1, {"type": "X", "v": <array>}]
MAX_FACTOR = 42  # docs: "at most 42 times its size"


def frame(size: int, element: bytes) -> bytes:
    count = (size - len(HEAD) - 5) // len(element)
    payload = HEAD + b"\xdd" + struct.pack(">I", count) + element * count
    return struct.pack(">I", len(payload)) + payload


ELEMENTS = {
    "negative fixint": b"\xe0",  # -32: not one of CPython's cached small ints
    "positive fixint": b"\x01",
    "uint16": b"\xcd\x10\x00",
    "float64": b"\xcb" + struct.pack(">d", 1.5),
    "fixstr": b"\xa1a",
    "empty bin": b"\xc4\x00",
    "timestamp32": b"\xd6\xff\x00\x00\x00\x01",
    "empty map": b"\x80",
    "empty array": b"\x90",
    "nil": b"\xc0",
}


def decode(data: bytes) -> object:
    decoder = FrameDecoder(RequestFrame)
    decoder.receive_data(data)
    return decoder.next_fields()


@pytest.mark.parametrize("kind", sorted(ELEMENTS))
def test_a_frame_decodes_to_at_most_42_times_its_size(kind: str) -> None:
    data = frame(4 * MiB, ELEMENTS[kind])
    tracemalloc.start()
    try:
        event = decode(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert type(event) in (tuple, RejectedFrame)
    assert peak / len(data) <= MAX_FACTOR, f"{kind}: {peak / len(data):.1f} times its size"


def test_the_worst_16_mib_frame_decodes_in_seconds_not_minutes() -> None:
    data = frame(16 * MiB - 64, ELEMENTS["negative fixint"])
    started = time.perf_counter()
    event = decode(data)
    elapsed = time.perf_counter() - started
    assert type(event) is tuple
    assert elapsed < 10, elapsed


@pytest.mark.parametrize("element", [b"\xd4\x01\x00", b"\xc7\x00\x05", b"\xd8\x7f" + bytes(16)])
@pytest.mark.parametrize("size", [100, 4 * MiB])
def test_an_extension_type_is_refused_alone_at_once(element: bytes, size: int) -> None:
    data = frame(size, element)
    started = time.perf_counter()
    event = decode(data)
    assert type(event) is RejectedFrame and event.id == 1
    assert "extension type" in event.reason
    assert time.perf_counter() - started < 1


def test_a_timestamp_is_still_a_datetime() -> None:
    data = frame(100, ELEMENTS["timestamp32"])
    event = decode(data)
    assert type(event) is tuple and event[1] is not None
    assert all(value.year == 1970 for value in event[1]["v"])
