"""Hypothesis strategies shared by the test suites."""

from __future__ import annotations

from typing import Any

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
