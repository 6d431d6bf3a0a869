"""Harness B: the real ``airflow triggerer`` command on a real SQLite Airflow
database, stock and through ``trio-comms-airflow``, its task instances' states
read back from the database afterwards."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from . import harnesses
from .harnesses import STOCK_3_1


def run_cli_harness(comms: str, callers: str) -> dict:
    return harnesses.run("cli_harness", comms, callers, timeout=400)


@pytest.mark.parametrize("callers", ["sync_to_async", "to_thread"])
def test_trio_comms_airflow_triggerer_loses_no_task_instance_and_exits_0_on_sigterm(callers: str) -> None:
    summary = run_cli_harness("trio-comms", callers)
    assert summary["log_trio_comms_on"], summary  # the log says it is on
    assert set(summary["outcomes"]) <= {"ok", "cancelled"}, summary  # every reply its trigger's own
    assert summary["outcomes"]["ok"] > 500, summary  # it ran (about 2,000 on a quiet machine)
    assert summary["failed_by_trigger"] == 0, summary
    # what was marked success stays so; every other task instance is still deferred
    assert summary["ti_states"] == {"success": summary["marked_success"],
                                    "deferred": 300 - summary["marked_success"]}, summary
    assert summary["marked_success"] >= 50, summary  # the churn ran (20 s at 5 a second)
    assert summary["alive_at_end"] and summary["exit_code"] == 0 and not summary["sigkilled"], summary
    assert not summary["processes_left"] and summary["log_runner_died"] == 0, summary
    assert (summary["runner_exit_code"], summary["runner_signal_sent"]) == (0, "SIGINT"), summary


def wedged_by_a_second_loop(summary: dict) -> None:
    """3.1 with ``asyncio.to_thread`` callers: the lock and the stream meet a second
    loop; next to no request is answered, the triggers' errors never reach the
    database (every task instance stays deferred), and the runner ignores the
    triggerer's SIGINT and SIGTERM until its SIGKILL. (With ``sync_to_async``
    callers harness B misreads replies only in some runs: harness A is the
    control for that.)"""
    outcomes = summary["outcomes"]
    errors = sum(n for kind, n in outcomes.items() if kind.startswith("error") or kind in ("cross-loop", "out-of-order"))
    assert outcomes.get("cross-loop", 0) > 0, summary
    assert outcomes.get("ok", 0) < errors, summary
    assert summary["ti_states"].get("deferred") == 300 - summary["marked_success"], summary


def sigterm_ignored(summary: dict) -> None:
    """3.3: no reply is misread, but the runner ignores the triggerer's SIGINT and
    SIGTERM (a trigger that asks while cancelled waits forever) until its SIGKILL."""
    assert set(summary["outcomes"]) <= {"ok", "cancelled"}, summary
    assert summary["failed_by_trigger"] == 0, summary
    assert (summary["runner_exit_code"], summary["runner_signal_sent"]) == (-9, "SIGKILL"), summary


# What stock Airflow must show on this venv's release: harness B's callers and check.
STOCK_FAILURE: tuple[str, Callable[[dict], None]] = (
    ("to_thread", wedged_by_a_second_loop) if STOCK_3_1 else ("sync_to_async", sigterm_ignored))


@pytest.mark.parametrize(("callers", "failure"), [STOCK_FAILURE], ids=[STOCK_FAILURE[1].__name__])
def test_stock_airflow_triggerer_fails_as_the_seed_says(callers: str, failure: Callable[[dict], None]) -> None:
    failure(run_cli_harness("stock", callers))
