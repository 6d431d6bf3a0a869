"""The harness's verdict and the summary, on plain values: what a run prints when it
fails, and that it prints whole lines when stdout is not a terminal."""

from __future__ import annotations

import argparse
import io
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from examples.triggerer.display import summary
from examples.triggerer.harness import SHOWN_PROBLEMS, Harness, trigger_mix
from examples.triggerer.kinds import CHAOS_KINDS, FAILING_KINDS, KINDS
from examples.triggerer.store import TriggerRow


def fake_job(misroutes: int = 0) -> Any:
    status = SimpleNamespace(restarts=2)
    return SimpleNamespace(
        misroutes=misroutes,
        blocks=[],
        store=SimpleNamespace(stale_completions=0),
        supervisor=SimpleNamespace(status=SimpleNamespace(value=status)),
        requests_by_caller={"trio_task": 10_000},
        loop_lags=[0.001, 0.002, 0.5],
        capacities=[50, 60, 70],
        heartbeat_gaps=[0.5, 0.51],
        runner_rss_kb=40_000,
        args=SimpleNamespace(capacity=10_000),
    )


def args(**overrides: Any) -> argparse.Namespace:
    return argparse.Namespace(**{"triggers": 40, "seed": 1, "chaos": False, **overrides})


def row(trigger_id: int, kind: str, state: str | None = None, outcomes: int = 1, error: str | None = None) -> TriggerRow:
    expected = "failed" if kind in FAILING_KINDS else "succeeded"
    return TriggerRow(trigger_id, kind, state or expected, 1, 0, error, outcomes, 1)


def test_every_broken_invariant_is_named() -> None:
    harness = Harness(fake_job(misroutes=3), args(chaos=True))
    problems = harness.check([row(1, "timer"), row(2, "fails", "succeeded"), row(3, "timer", outcomes=2),
                              row(4, "poison", error="RuntimeError: other")])
    assert problems == [
        "trigger 2 (fails) ended succeeded, expected failed (None)",
        "trigger 3 (timer) has 2 outcomes",
        "poison trigger 4 failed for another reason: RuntimeError: other",
        "3 misrouted replies",
        "chaos did not both kill and stop the runner: []",
    ]
    assert Harness(fake_job(), args()).check([row(1, "timer"), row(2, "hangs")]) == []


def test_a_long_failure_list_says_how_many_it_leaves_out() -> None:
    harness = Harness(fake_job(), args())
    problems = harness.check([row(i, "timer", outcomes=0) for i in range(SHOWN_PROBLEMS + 7)])
    out = io.StringIO()
    harness.report(Console(file=out, width=80, soft_wrap=True), problems)
    verdict = out.getvalue().splitlines()[-1]
    assert verdict.startswith(f"FAILED: {SHOWN_PROBLEMS + 7} problems: trigger 0 (timer) has 0 outcomes")
    assert verdict.endswith("(and 7 more)")
    assert verdict.count("has 0 outcomes") == SHOWN_PROBLEMS


def test_the_summary_prints_whole_lines_when_not_on_a_terminal(capsys: pytest.CaptureFixture[str]) -> None:
    summary(fake_job(), [row(1, "timer")], wall=12.5)
    lines = capsys.readouterr().out.splitlines()
    (load,) = [line for line in lines if line.startswith("load: ")]
    assert load.endswith("B per trigger)") and len(load) > 80  # one line, not wrapped at 80


def test_the_trigger_mix_is_seeded_and_puts_the_chaos_first() -> None:
    plain = trigger_mix(args(triggers=len(KINDS) * 3))
    assert sorted(plain) == sorted(KINDS * 3) and plain == trigger_mix(args(triggers=len(KINDS) * 3))
    chaotic = trigger_mix(args(triggers=len(KINDS) * 3, chaos=True))
    assert tuple(chaotic[: len(CHAOS_KINDS)]) == CHAOS_KINDS
