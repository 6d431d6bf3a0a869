"""Harness A on the Airflow of this venv, stock and with trio-comms: the stock
failure must reproduce (a harness that stops reproducing it fails), and with
trio-comms every reply is its caller's own and the runner exits 0 on SIGTERM."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from . import harnesses
from .harnesses import STOCK_3_1


def run_harness(comms: str, callers: str, churn: int = 5) -> dict:
    return harnesses.run("runner_harness", comms, callers, timeout=180, churn=churn)


@pytest.mark.parametrize("callers", ["sync_to_async", "to_thread", "asend"])
def test_with_trio_comms_every_reply_is_its_callers_and_sigterm_exits_0(callers: str) -> None:
    summary = run_harness("trio-comms", callers)
    outcomes = summary["outcomes"]
    assert set(outcomes) <= {"ok", "cancelled"}, summary  # no wrong, out-of-order, cross-loop or error
    assert outcomes["ok"] > 500, summary  # it ran (about 1,800 on a quiet machine)
    assert summary["ti_counts"] > 0, summary  # the real WorkflowTrigger asked too
    assert summary["failed_triggers"] == 0, summary
    assert summary["alive_at_end"] and summary["exit_code"] == 0 and not summary["sigkilled"], summary


def out_of_order(summary: dict) -> None:
    """3.1: a trigger cancelled mid-request leaves its reply for the next caller (run
    at 50 cancellations a second: a cancellation must hit the one request in flight,
    and at 5 a second a 20 s run misread none in about one run of ten)."""
    assert summary["outcomes"].get("out-of-order", 0) > 0, summary


def cross_loop(summary: dict) -> None:
    """3.1: ``asyncio.to_thread`` callers meet the runner's lock from a second loop,
    and next to nothing gets through."""
    outcomes = summary["outcomes"]
    assert outcomes.get("cross-loop", 0) > 0, summary
    assert outcomes.get("ok", 0) < outcomes["cross-loop"], summary


def sigterm_ignored(summary: dict) -> None:
    """3.3: the reader task keeps the order, but a request made while a trigger is
    cancelled at shutdown waits forever, so the runner ignores SIGTERM."""
    assert set(summary["outcomes"]) <= {"ok", "cancelled"}, summary
    assert summary["sigkilled"], summary


# What stock comms must show on this venv's Airflow: one test per failure, none skipped
# (callers, cancellations a second, the check).
STOCK_FAILURES = [("sync_to_async", 50, out_of_order), ("to_thread", 5, cross_loop)] if STOCK_3_1 else [
    ("sync_to_async", 5, sigterm_ignored)]


@pytest.mark.parametrize(("callers", "churn", "failure"), STOCK_FAILURES, ids=[f.__name__ for *_, f in STOCK_FAILURES])
def test_stock_fails_as_the_seed_says(callers: str, churn: int, failure: Callable[[dict], None]) -> None:
    failure(run_harness("stock", callers, churn))
