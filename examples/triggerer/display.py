"""What a person sees: a live rich table on a terminal, plain lines otherwise, and
the summary at the end."""

from __future__ import annotations

import statistics
import sys
from collections import Counter

import trio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from .job import Job
from .kinds import FAILING_KINDS, p99
from .store import TriggerRow


def _progress_table(job: Job, rate: float) -> Table:
    assert job.supervisor is not None
    status = job.supervisor.status.value
    age = job.supervisor.heartbeat_age()
    table = Table(title="triggerer", show_header=False)
    table.add_row("triggers", "  ".join(f"{state} {count}" for state, count in job.counts.items()))
    table.add_row("requests/s", f"{rate:,.0f}")
    table.add_row("runner", f"{status.state.name} pid {status.pid} incarnation {status.incarnation} "
                            f"restarts {status.restarts}")
    table.add_row("heartbeat age", "-" if age is None else f"{age:.2f} s")
    table.add_row("/health", "200" if job.supervisor.healthy() else "503")
    return table


async def show_progress(job: Job) -> None:
    """Refresh the live display (or print a line every 2 s) until cancelled."""
    last_total, last_time = 0, trio.current_time()
    interactive = sys.stdout.isatty()
    live = Live(auto_refresh=False) if interactive else None
    if live is not None:
        live.start()
    try:
        while True:
            await trio.sleep(0.25 if interactive else 2.0)
            job.counts = await job.store.counts()
            total, now = sum(job.requests_by_caller.values()), trio.current_time()
            rate = (total - last_total) / max(now - last_time, 1e-9)
            last_total, last_time = total, now
            if live is not None:
                live.update(_progress_table(job, rate), refresh=True)
            else:
                assert job.supervisor is not None
                status = job.supervisor.status.value
                counts = " ".join(f"{state}={count}" for state, count in job.counts.items())
                age = job.supervisor.heartbeat_age()
                job.emit(f"progress: {counts} | {rate:,.0f} req/s | runner {status.state.name} "
                         f"incarnation {status.incarnation} restarts {status.restarts} "
                         f"heartbeat age {'-' if age is None else f'{age:.2f} s'}")
    finally:
        if live is not None:
            live.stop()


def summary(job: Job, rows: list[TriggerRow], wall: float) -> Console:
    """Print what the run did (outcomes by kind, requests by caller, load); return
    the console, for the harness's report to follow."""
    console = Console(soft_wrap=True)  # whole lines, also when not on a terminal
    outcomes: dict[str, Counter[str]] = {}
    for row in rows:
        outcomes.setdefault(row.kind, Counter())[row.state] += 1
    table = Table(title="outcomes by kind")
    for column in ("kind", "succeeded", "failed", "other", "expected"):
        table.add_column(column, justify="right" if column != "kind" else "left")
    for kind, counter in sorted(outcomes.items()):
        other = sum(n for state, n in counter.items() if state not in ("succeeded", "failed"))
        table.add_row(kind, str(counter["succeeded"]), str(counter["failed"]), str(other),
                      "failed" if kind in FAILING_KINDS else "succeeded")
    console.print(table)
    requests = Table(title="requests by caller kind")
    requests.add_column("caller")
    requests.add_column("requests", justify="right")
    for caller, count in sorted(job.requests_by_caller.items()):
        requests.add_row(caller, f"{count:,}")
    console.print(requests)
    total_requests = sum(job.requests_by_caller.values())
    console.print(f"total {wall:.1f} s, {total_requests:,} requests, {total_requests / wall:,.0f} req/s")
    if job.loop_lags:
        lags, capacity, rss = job.loop_lags, job.capacities, job.runner_rss_kb
        console.print(
            f"load: runner loop lag p50 {statistics.median(lags) * 1000:.0f} ms, p99 {p99(lags) * 1000:.0f} ms; "
            f"effective capacity min {min(capacity)}, median {statistics.median(capacity):.0f}, max {max(capacity)} "
            f"(ceiling {job.args.capacity}); heartbeat gap p99 {p99(job.heartbeat_gaps) * 1000:.0f} ms; "
            f"runner peak RSS {rss / 1024:.0f} MiB ({rss * 1024 / max(len(rows), 1):,.0f} B per trigger)"
        )
    return console
