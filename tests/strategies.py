"""Hypothesis strategies shared by the test suites."""

from __future__ import annotations

from typing import Any

import msgpack
from hypothesis import strategies as st

from channel import RequestFrame, ResponseFrame

frame_ids = st.integers(min_value=0, max_value=2**64 - 1)

# Values msgpack carries and unpacks back to an equal Python value (lists, not
# tuples; no NaN, which is never equal to itself).
msgpack_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
msgpack_values = st.recursive(
    msgpack_scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
maps: st.SearchStrategy[dict[str, Any]] = st.dictionaries(st.text(max_size=8), msgpack_values, max_size=5)
optional_maps = st.none() | maps

request_frames = st.builds(RequestFrame, id=frame_ids, body=optional_maps, context_carrier=optional_maps)
response_frames = st.builds(ResponseFrame, id=frame_ids, body=optional_maps, error=optional_maps)


# ------------------------------------------------------------ hostile byte streams


def framed(payload: bytes) -> bytes:
    """A length prefix and ``payload``: a frame whatever the payload holds."""
    return len(payload).to_bytes(4, "big") + payload


def nested(depth: int) -> bytes:
    """A map whose one field nests ``depth - 1`` arrays: ``depth`` levels in all."""
    return b"\x81\xa1a" + b"\x91" * (depth - 1) + b"\xc0"


_fuzz_leaves = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats()
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
fuzz_values = st.recursive(
    _fuzz_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=40,
)


@st.composite
def hostile_payloads(draw: st.DrawFn, ids: st.SearchStrategy[int], body: st.SearchStrategy[bytes]) -> bytes:
    """One frame's payload of a kind a hostile peer sends: a good one, random values,
    deep nesting, bad strings and timestamps, a flood of empty maps."""
    frame_id = msgpack.packb(draw(ids))
    kind = draw(st.sampled_from(["good", "random", "deep", "deep-error", "bad-str", "bad-ts", "empty-maps"]))
    if kind == "good":
        return b"\x92" + frame_id + draw(body)
    if kind == "random":
        return msgpack.packb([draw(ids), draw(st.dictionaries(st.text(max_size=4), fuzz_values, max_size=4))])
    # Around the bounds that matter: ours (32), Python's recursion limit (~1,000)
    # and msgpack's own stack (1,024).
    depth = draw(st.sampled_from([31, 32, 33, 990, 1_000, 1_023, 1_100, 2_000]))
    if kind == "deep":
        return b"\x92" + frame_id + nested(depth)
    if kind == "deep-error":
        error = b"\x83\xa4type\xadErrorResponse\xa5error\xa1E\xa6detail" + nested(depth)
        return b"\x93" + frame_id + b"\xc0" + error
    if kind == "bad-str":
        return b"\x92" + frame_id + b"\x81\xa4type\xa2\xff\xfe"
    if kind == "bad-ts":
        return b"\x92" + frame_id + b"\x81\xa1t\xc7\x0c\xff" + (0).to_bytes(4, "big") + (2**62).to_bytes(8, "big")
    count = draw(st.integers(1, 20_000))
    return b"\x92" + frame_id + b"\x81\xa1a\xdd" + count.to_bytes(4, "big") + b"\x80" * count


@st.composite
def mutated(draw: st.DrawFn, frames: st.SearchStrategy[list[bytes]]) -> bytes:
    """Frames joined, then up to four random byte edits (flip, insert, delete); half
    the streams unedited, so whole hostile frames reach the code behind the decoder."""
    stream = bytearray(b"".join(draw(frames)))
    for _ in range(draw(st.sampled_from([0, 0, 0, 1, 2, 4]))):
        if not stream:
            break
        where = draw(st.integers(0, len(stream) - 1))
        edit = draw(st.sampled_from(["flip", "insert", "delete"]))
        if edit == "flip":
            stream[where] = draw(st.integers(0, 255))
        elif edit == "insert":
            stream[where:where] = draw(st.binary(min_size=1, max_size=8))
        else:
            del stream[where]
    return bytes(stream)
