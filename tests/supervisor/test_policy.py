"""The supervisor's policy on plain numbers: backoff, restart intensity, liveness."""

from __future__ import annotations

import math
import random

import pytest

from actors._policy import Backoff, Liveness, RestartIntensity


def test_backoff_doubles_with_jitter_up_to_its_maximum_and_resets() -> None:
    backoff = Backoff(0.5, 4.0, random.Random(7))
    delays = [backoff.next_delay() for _ in range(7)]
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == len(delays)  # jittered, not a fixed ladder
    backoff.reset()
    assert 0.25 <= backoff.next_delay() <= 0.5


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="initial <= maximum"):
        Backoff(2.0, 1.0)
    with pytest.raises(ValueError):
        Backoff(0, 1.0)


def test_intensity_allows_max_restarts_per_window_as_in_otp() -> None:
    intensity = RestartIntensity(3, 10.0)
    assert [intensity.allow(t) for t in (0.0, 1.0, 2.0)] == [True, True, True]
    assert not intensity.allow(3.0)  # a fourth within 10 s
    assert intensity.recent(3.0) == 3
    assert intensity.allow(10.5)  # the first has left the window
    assert not intensity.allow(10.6)


def test_zero_restarts_means_the_first_death_is_final() -> None:
    assert not RestartIntensity(0, 60.0).allow(0.0)


def test_liveness_counts_from_spawn_then_from_each_heartbeat() -> None:
    live = Liveness(stuck_after=2.0, start_timeout=5.0)
    live.spawned(100.0)
    assert live.deadline() == 105.0 and not live.fresh(101.0) and live.age(101.0) is None
    assert not live.is_stuck(104.9) and live.is_stuck(105.0)
    assert live.heartbeat(103.0) is True  # the first
    live.answered(103.0)
    assert live.heartbeat(104.0) is False
    live.answered(104.0)
    assert live.deadline() == 106.0 and live.fresh(105.9) and not live.fresh(106.0)
    assert live.age(105.0) == 1.0
    live.spawned(200.0)  # a new incarnation starts from nothing
    assert live.age(200.0) is None and live.deadline() == 205.0


def test_liveness_keeps_the_heartbeat_gaps_of_a_window_for_load_not_for_liveness() -> None:
    live = Liveness(stuck_after=2.0, start_timeout=5.0)
    live.spawned(0.0)
    assert (live.last_gap, live.worst_gap(0.0)) == (None, None)
    for now in (1.0, 1.5, 2.7, 3.0):
        live.heartbeat(now)
    assert live.last_gap == pytest.approx(0.3)
    assert live.worst_gap(3.0) == pytest.approx(1.2)  # 1.5 -> 2.7
    assert live.worst_gap(4.5) == pytest.approx(1.5)  # the open gap counts
    assert live.worst_gap(2.7 + Liveness.GAP_WINDOW + 0.1) == pytest.approx(Liveness.GAP_WINDOW - 0.2)
    live.heartbeat(40.0)
    assert live.worst_gap(40.0) == pytest.approx(37.0)
    live.heartbeat(40.5)
    assert live.worst_gap(71.0) == pytest.approx(30.5)  # 37 s gap left the window; the open one is 30.5
    live.spawned(80.0)
    assert live.last_gap is None


def test_liveness_has_no_deadline_while_a_heartbeat_is_being_answered() -> None:
    live = Liveness(stuck_after=2.0, start_timeout=5.0)
    live.spawned(0.0)
    live.heartbeat(1.0)  # read, being answered
    assert live.answering == 1 and live.deadline() == math.inf and live.fresh(100.0)
    live.heartbeat(1.5)  # a second one read meanwhile
    live.answered(9.0)
    assert live.deadline() == math.inf  # one is still being answered
    live.answered(10.0)
    assert live.answering == 0 and live.deadline() == 12.0  # from the last answer
    assert not live.is_stuck(11.9) and live.is_stuck(12.0)
    live.answered(20.0)  # more answers than heartbeats change nothing
    assert live.answering == 0 and live.deadline() == 12.0
    live.heartbeat(13.0)
    live.answered(13.1)
    assert live.deadline() == 15.1
    live.spawned(30.0)
    assert live.answering == 0 and live.deadline() == 35.0
