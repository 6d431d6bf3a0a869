"""make bench keeps working: every candidate and extra runs briefly and gets only its own replies.

These check that the benchmarks run and that every reply is its caller's own; they
assert nothing about speed (that lives in make bench, as ratios, never in tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.airflow import CANDIDATES as airflow_candidates
from benchmarks.trial import CANDIDATES

ROOT = Path(__file__).resolve().parent.parent


def run(module: str, *args: object) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("candidate", list(CANDIDATES))
def test_every_candidate_runs_and_gets_its_own_replies(candidate: str) -> None:
    result = run("benchmarks.trial", candidate, 3, 0.1)
    assert result["wrong"] == 0
    assert result["rps"] > 0


def test_extras_run() -> None:
    assert run("benchmarks.extras", "responder-concurrent", 0.2)["wrong"] == 0
    assert run("benchmarks.extras", "scale", 50, 0.2)["wrong"] == 0
    memory = run("benchmarks.extras", "memory", 500)
    assert memory["in_flight"] == 500 and memory["channel_bytes_per_pending"] > 0
    submit = run("benchmarks.extras", "asyncio-submit", 2)
    assert submit["channel_ms"] > 0 and submit["plain_ms"] > 0


AIRFLOW_FREE = [name for name in airflow_candidates if not name.startswith("Airflow")]


@pytest.mark.parametrize("candidate", AIRFLOW_FREE)
def test_the_airflow_run_s_own_candidates_get_their_own_variables(candidate: str) -> None:
    """make bench-airflow's peer answers GetVariable with VariableResult; our side of
    that run works without Airflow (the Airflow classes run only in its own venv)."""
    result = run("benchmarks.airflow", "trial", candidate, 3, 0.1)
    assert result["wrong"] == 0
    assert result["rps"] > 0


def test_the_airflow_report_states_every_ratio() -> None:
    from benchmarks import airflow

    medians = {
        f"{name}|{level}": {"rps": 1000.0 * (index + 1), "p50_us": 1.0, "p99_us": 2.0, "cpu_us": 3.0, "wrong": 0}
        for index, (name, levels) in enumerate(airflow.GRID)
        for level in levels
    }
    report = airflow.render(medians, 1, 0.1, 0)
    # trio tasks (1,000 req/s) over TriggerCommsDecoder coroutines (5,000 req/s), each level
    assert f"| trio tasks / {airflow.TRIGGER}, coroutines | 0.20× | 0.20× | 0.20× | 0.20× |" in report
    # threads (2,000) over the task SDK's CommsDecoder (7,000), three thread levels
    assert f"| threads / {airflow.TASK_SDK}, threads | 0.29× | 0.29× | 0.29× | |" in report
    # the bare trio references (rows 7, 8 and 9) bound trio-comms: tasks over the typed
    # parked tasks (9,000), the bare designs over the real classes
    assert "| trio tasks / trio parked tasks, typed | 0.11× | 0.11× | 0.11× | 0.11× |" in report
    assert f"| trio parked tasks, typed / {airflow.TRIGGER}, coroutines | 1.80× | 1.80× | 1.80× | 1.80× |" in report
    assert (
        f"| threads handing over to a trio thread, typed / {airflow.TASK_SDK}, threads | 1.43× | 1.43× | 1.43× | |"
        in report
    )
    assert "apache-airflow-core" in report


def test_the_bench_report_states_every_ratio() -> None:
    from benchmarks import run

    medians: dict[str, dict[str, float]] = {
        f"{name}|{level}": {"rps": 1000.0 * (index + 1), "p50_us": 1.0, "p99_us": 2.0, "cpu_us": 3.0, "wrong": 0}
        for index, (name, levels) in enumerate(run.GRID)
        for level in levels
    }
    extras = ("responder-concurrent", "responder-serial", "asyncio-submit")
    medians |= {key: {"rps": 1.0, "channel_ms": 2.0, "plain_ms": 1.0} for key in extras}
    medians |= {f"scale|{c}": {"rps": 1.0, "p99_us": 1.0} for c in (100, 1000, 10000)}
    memory = {"channel_bytes_per_pending": 1.0, "traced_bytes_per_pending": 1.0, "rss_bytes_per_pending": 1.0}
    report = run.render(medians, memory, 1, 0.1, 0)
    # trio tasks (row 1: 1,000 req/s) over the typed trio parked tasks (row 12: 12,000)
    assert "| trio tasks / trio parked tasks, typed | 0.08× | 0.08× | 0.08× | 0.08× |" in report
    # threads (row 2) over the hand-over design (row 13), three thread levels
    assert "| threads / threads handing over to a trio thread, typed | 0.15× | 0.15× | 0.15× | |" in report
    # the hand-over design (row 13) over the typed lock-serialized design (row 6)
    assert "| threads handing over to a trio thread / lock-serialized, typed | 2.17× | 2.17× | 2.17× | |" in report
    assert "| trio tasks / raw limit | 0.07× | 0.07× | 0.07× | 0.07× |" in report


def test_a_report_becomes_the_performance_page_s_rst() -> None:
    from benchmarks.rst import to_rst

    report = "Medians of 3; `x` first.\n\n| a | b |\n| --- | ---: |\n| `one` | 2 |\n\n- a bullet"
    assert to_rst(report) == (
        "Medians of 3; ``x`` first.\n\n"
        ".. list-table::\n   :header-rows: 1\n\n   * - a\n     - b\n   * - ``one``\n     - 2\n\n"
        "- a bullet\n"
    )
