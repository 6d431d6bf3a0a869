"""The triggerer's admission control on plain numbers, as the supervisor's policy is."""

from __future__ import annotations

import pytest

from examples.triggerer.admission import AdmissionControl, Load

CALM = {"loop_lag": 0.01, "thread_wait": 0.0, "request_latency": 0.01}


def test_it_starts_low_grows_fast_until_the_first_overload_then_by_a_step() -> None:
    control = AdmissionControl(ceiling=1000)
    assert control.limit == 50
    assert control.update(Load(running=50, **CALM)) == 75  # slow start: by half
    assert control.update(Load(running=75, **CALM)) == 112
    # Not used: it does not grow (an idle runner banks nothing).
    assert control.update(Load(running=20, **CALM)) == 112
    assert control.update(Load(running=112, loop_lag=1.0)) == 78  # cut
    assert control.update(Load(running=78, **CALM)) == 88  # then a step of 10 (or 5%)


def test_it_never_passes_the_ceiling_and_ramps_back_after_a_restart() -> None:
    control = AdmissionControl(ceiling=1000)
    for _ in range(100):
        control.update(Load(running=control.limit, **CALM))
    assert control.limit == 1000
    control.restart()
    assert control.limit == 50


@pytest.mark.parametrize("load", [Load(loop_lag=0.3, running=200), Load(loop_lag=0.0, thread_wait=1.0, running=200),
                                  Load(loop_lag=0.0, request_latency=0.2, running=200)])
def test_lag_or_queued_thread_work_cuts_the_limit_by_its_factor(load: Load) -> None:
    control = AdmissionControl(ceiling=1000, initial=200)
    assert control.update(load) == 140
    assert control.overloaded
    assert control.update(load) == 98


def test_it_never_goes_under_the_floor() -> None:
    control = AdmissionControl(ceiling=1000, floor=10, initial=12)
    for _ in range(10):
        control.update(Load(loop_lag=5.0, running=12))
    assert control.limit == 10


def test_under_steady_overload_the_limit_oscillates_around_what_the_runner_carries() -> None:
    # A runner that lags once it runs more than 400: the limit settles below 400 and
    # above its multiplicative cut of it, instead of running away or collapsing.
    control = AdmissionControl(ceiling=10_000)
    limits = []
    for _ in range(200):
        running = control.limit
        lag = 0.5 if running > 400 else 0.01
        limits.append(control.update(Load(loop_lag=lag, running=running)))
    settled = limits[100:]
    assert max(settled) <= 400 * 1.05 + 1  # one growth step past what it carries, no more
    assert min(settled) >= 400 * control.decrease - 1  # one cut below it, no more


def test_nonsense_is_refused() -> None:
    with pytest.raises(ValueError):
        AdmissionControl(ceiling=0)
    with pytest.raises(ValueError):
        AdmissionControl(ceiling=10, decrease=1.5)
