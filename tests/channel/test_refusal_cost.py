"""Refusing a body costs about what accepting it costs (docs/wire.rst).

cattrs' detailed validation builds one exception per bad value: a list[int] of a
million strings took 10 s and +1.7 GiB to refuse. A body holding over
DETAILED_MAX_VALUES values is now refused with its first failure, found by walking its
types with the fast converter. Time is a ratio to accepting the same shape, measured
in the same test; memory a tracemalloc bound.
"""

from __future__ import annotations

import contextlib
import time
import tracemalloc

import attrs
import pytest

from channel import Codec, MessageDecodeError
from channel._locate import DETAILED_MAX_VALUES


@attrs.frozen
class Point:
    x: int
    tags: list[str] = attrs.field(factory=list)


@attrs.frozen
class Bulk:
    ids: list[int]
    points: list[Point] = attrs.field(factory=list)
    names: dict[str, int] = attrs.field(factory=dict)
    maybe: int | None = None


CODEC = Codec([Bulk, Point])
N = 1_000_000


def timed(call) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """Seconds (without tracemalloc, which slows allocation) and peak traced bytes."""
    def run() -> None:
        with contextlib.suppress(MessageDecodeError):
            call()

    started = time.perf_counter()
    run()
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    try:
        run()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return elapsed, peak


@pytest.mark.parametrize("bad_from", [0, N - 1], ids=["all-bad", "last-bad"])
def test_refusing_a_million_bad_values_costs_about_what_accepting_a_million_costs(bad_from: int) -> None:
    good = {"type": "Bulk", "ids": list(range(N))}
    bad = {"type": "Bulk", "ids": [i if i < bad_from else str(i) for i in range(N)]}
    accept, accept_peak = min(timed(lambda: CODEC.decode(good)) for _ in range(3))
    refuse, refuse_peak = min(timed(lambda: CODEC.decode(bad)) for _ in range(3))
    with pytest.raises(MessageDecodeError) as info:
        CODEC.decode(bad)
    assert info.value.path == f"$.ids[{bad_from}]"
    assert info.value.reason.startswith("invalid value for type, expected int (the first failure only")
    # The code before: ~10 s, 1.7 GiB. Now within a small factor of acceptance.
    print(f"accept {accept:.3f} s {accept_peak / 2**20:.0f} MiB; refuse {refuse:.3f} s {refuse_peak / 2**20:.0f} MiB")
    assert refuse < 5 * accept + 0.05, (refuse, accept)
    assert refuse_peak < 4 * accept_peak + 2**20, (refuse_peak, accept_peak)


def test_refusing_a_big_map_with_its_last_value_bad_costs_about_what_accepting_it_costs() -> None:
    size = 300_000
    good = {"type": "Bulk", "ids": [], "names": {f"k{i}": i for i in range(size)}}
    bad = {"type": "Bulk", "ids": [], "names": {f"k{i}": i if i < size - 1 else "x" for i in range(size)}}
    accept, _ = min(timed(lambda: CODEC.decode(good)) for _ in range(3))
    refuse, _ = min(timed(lambda: CODEC.decode(bad)) for _ in range(3))
    with pytest.raises(MessageDecodeError) as info:
        CODEC.decode(bad)
    assert info.value.path == f"$.names['k{size - 1}']"
    print(f"map: accept {accept:.3f} s; refuse {refuse:.3f} s")
    assert refuse < 5 * accept + 0.05, (refuse, accept)


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"ids": [*range(DETAILED_MAX_VALUES), "x"]}, f"$.ids[{DETAILED_MAX_VALUES}]"),
        ({"ids": list(range(DETAILED_MAX_VALUES)), "points": [{"x": 1}, {"x": 2, "tags": ["a", 3]}]}, "$.points[1].tags[1]"),
        ({"ids": list(range(DETAILED_MAX_VALUES)), "points": [{"tags": []}]}, "$.points[0].x"),
        ({"ids": list(range(DETAILED_MAX_VALUES)), "names": {"a": 1, "b": "2"}}, "$.names['b']"),
        ({"ids": list(range(DETAILED_MAX_VALUES)), "maybe": "3"}, "$.maybe"),
    ],
)
def test_a_large_body_names_its_first_failure_exactly(body: dict, path: str) -> None:
    with pytest.raises(MessageDecodeError) as info:
        CODEC.decode({"type": "Bulk", **body})
    assert info.value.path == path
    assert "the first failure only" in info.value.reason
    assert len(str(info.value)) < 1_000


def test_a_small_body_still_names_every_bad_field() -> None:
    with pytest.raises(MessageDecodeError) as info:
        CODEC.decode({"type": "Bulk", "ids": ["a", "b"], "maybe": "3"})
    assert info.value.path == "$.ids[0]"
    assert "$.ids[1]" in info.value.reason and "$.maybe" in info.value.reason
