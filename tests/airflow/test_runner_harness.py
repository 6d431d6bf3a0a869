"""Harness A on the Airflow of this venv, stock and with trio-comms: the stock
failure must reproduce (a harness that stops reproducing it fails), and with
trio-comms every reply is its caller's own and the runner exits 0 on SIGTERM."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import airflow
import pytest

SECONDS = "20"
STOCK_3_1 = airflow.__version__.startswith("3.1.")


def run_harness(comms: str, callers: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "tests.airflow.runner_harness", "--comms", comms, "--callers", callers,
         "--seconds", SECONDS],
        capture_output=True, text=True, timeout=180, check=True,
    )
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    if path := os.environ.get("HARNESS_RESULTS"):
        with open(path, "a") as results:
            results.write(json.dumps(summary) + "\n")
    return summary


@pytest.mark.parametrize("callers", ["sync_to_async", "to_thread", "asend"])
def test_with_trio_comms_every_reply_is_its_callers_and_sigterm_exits_0(callers: str) -> None:
    summary = run_harness("trio-comms", callers)
    outcomes = summary["outcomes"]
    assert set(outcomes) <= {"ok", "cancelled"}, summary  # no wrong, out-of-order, cross-loop or error
    assert outcomes["ok"] > 1000, summary
    assert summary["failed_triggers"] == 0, summary
    assert summary["alive_at_end"] and summary["exit_code"] == 0 and not summary["sigkilled"], summary


def test_stock_fails_as_the_seed_says() -> None:
    """3.1: replies read out of order once a trigger is cancelled mid-request;
    3.3: ordering holds, but a request made while cancelled keeps the runner from
    exiting on SIGTERM."""
    summary = run_harness("stock", "sync_to_async")
    if STOCK_3_1:
        assert summary["outcomes"].get("out-of-order", 0) > 0, summary
    else:
        assert summary["sigkilled"], summary
