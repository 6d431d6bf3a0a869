"""Harness B: the real ``airflow triggerer`` command on a real SQLite Airflow
database, stock and through ``trio-comms-airflow``, its task instances' states
read back from the database afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest

from .test_runner_harness import STOCK_3_1

SECONDS = "20"


def run_cli_harness(comms: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.airflow.cli_harness", "--comms", comms, "--seconds", SECONDS],
        capture_output=True, text=True, timeout=400, check=True,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    if path := os.environ.get("HARNESS_RESULTS"):
        with open(path, "a") as results:
            results.write(json.dumps(summary) + "\n")
    return summary


def test_trio_comms_airflow_triggerer_loses_no_task_instance_and_exits_0_on_sigterm() -> None:
    summary = run_cli_harness("trio-comms")
    assert summary["log_trio_comms_on"], summary  # the log says it is on
    assert set(summary["outcomes"]) <= {"ok", "cancelled"}, summary  # every reply its trigger's own
    assert summary["outcomes"]["ok"] > 1000, summary
    assert summary["failed_by_trigger"] == 0, summary
    # what was marked success stays so; every other task instance is still deferred
    assert summary["ti_states"] == {"success": summary["marked_success"],
                                    "deferred": 300 - summary["marked_success"]}, summary
    assert summary["marked_success"] >= 50, summary  # the churn ran (20 s at 5 a second)
    assert summary["alive_at_end"] and summary["exit_code"] == 0 and not summary["sigkilled"], summary
    assert not summary["processes_left"] and summary["log_runner_died"] == 0, summary
    assert (summary["runner_exit_code"], summary["runner_signal_sent"]) == (0, "SIGINT"), summary


def replies_out_of_order(summary: dict) -> None:
    """3.1: replies read out of order, by the triggers' outcomes and by Airflow's log.
    When that happens while the triggerer runs, the triggers fail their task
    instances (``failed_by_trigger``) and the runner may die (the triggerer then
    exits by itself); at shutdown, the triggers' clean-up reads the wrong replies.
    Which of these a 20 s run shows depends on timing, so the summary reports them
    and only the misread replies are asserted."""
    assert summary["outcomes"].get("out-of-order", 0) > 0 and summary["log_out_of_order"] > 0, summary


def sigterm_ignored(summary: dict) -> None:
    """3.3: no reply is misread, but the runner ignores the triggerer's SIGINT and
    SIGTERM (a trigger that asks while cancelled waits forever) until its SIGKILL."""
    assert set(summary["outcomes"]) <= {"ok", "cancelled"}, summary
    assert summary["failed_by_trigger"] == 0, summary
    assert (summary["runner_exit_code"], summary["runner_signal_sent"]) == (-9, "SIGKILL"), summary


STOCK_FAILURE: Callable[[dict], None] = replies_out_of_order if STOCK_3_1 else sigterm_ignored


@pytest.mark.parametrize("failure", [STOCK_FAILURE], ids=[STOCK_FAILURE.__name__])
def test_stock_airflow_triggerer_fails_as_the_seed_says(failure: Callable[[dict], None]) -> None:
    failure(run_cli_harness("stock"))
