"""``python -m examples.triggerer``: run the triggerer until every trigger is terminal.

Exits 0 only if every invariant held: each trigger ended exactly once, with the
outcome its kind expects, no reply reached the wrong caller, and no runner process
is left.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
from typing import Any

import trio

import actors

from .display import show_progress, summary
from .job import Job, runner_command
from .kinds import CHAOS_KINDS, FAILING_KINDS, KINDS
from .messages import CODEC, Sync
from .store import Store
from .web import serve_http


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m examples.triggerer", description=__doc__)
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--capacity", type=int, default=1000)
    parser.add_argument("--chaos", action="store_true", help="kill, stop and block the runner")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--db", help="SQLite file (default: a fresh one in a temporary folder)")
    parser.add_argument("--http", default="127.0.0.1:0", help="HOST:PORT for /health and /metrics")
    parser.add_argument("--runner", choices=("trio", "asyncio"), default="trio")
    parser.add_argument("--stuck-after", type=float, default=2.0)
    parser.add_argument("--trigger-timeout", type=float, default=3.0, help="a trigger's own deadline")
    parser.add_argument("--max-restarts", type=int, default=20)
    return parser.parse_args(argv)


def kinds_for(args: argparse.Namespace) -> list[str]:
    kinds = [KINDS[i % len(KINDS)] for i in range(args.triggers)]
    random.Random(args.seed).shuffle(kinds)
    if args.chaos:
        kinds[: len(CHAOS_KINDS)] = CHAOS_KINDS  # one of each, started first
    return kinds


def check(rows: list[Any], job: Job) -> list[str]:
    problems = []
    for trigger_id, kind, state, _attempts, _blocks, error, outcomes, _inc in rows:
        expected = "failed" if kind in FAILING_KINDS else "succeeded"
        if outcomes != 1:
            problems.append(f"trigger {trigger_id} ({kind}) has {outcomes} outcomes")
        if state != expected:
            problems.append(f"trigger {trigger_id} ({kind}) ended {state}, expected {expected} ({error})")
        if kind == "poison" and error != "blocked the runner":
            problems.append(f"poison trigger {trigger_id} failed for another reason: {error}")
    if job.misroutes:
        problems.append(f"{job.misroutes} misrouted replies")
    if job.args.chaos and not {"SIGKILL", "SIGSTOP"} <= {c.split()[0] for c in job.chaos}:
        problems.append(f"chaos did not both kill and stop the runner: {job.chaos}")
    return problems[:20]


async def run(args: argparse.Namespace) -> int:
    folder = None
    if args.db is None:
        folder = tempfile.mkdtemp(prefix="triggerer-")
        args.db = os.path.join(folder, "triggers.db")
    store = Store(args.db)
    job = Job(store, args)
    await store.add(kinds_for(args))
    host, _, port = args.http.rpartition(":")
    start = trio.current_time()
    try:
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(serve_http, host or "127.0.0.1", int(port),
                                        {"/health": job.health_route, "/metrics": job.metrics_route})
            job.emit(f"serving /health and /metrics on http://{host or '127.0.0.1'}:{bound}")
            job.emit(f"store: {args.db}; {args.triggers} triggers; runner host {args.runner}")
            async with actors.open_supervisor(
                runner_command(args), CODEC, job.handler, heartbeat=Sync, stuck_after=args.stuck_after,
                start_timeout=10.0, stop_timeout=2.0, backoff_initial=0.1, backoff_max=1.0,
                max_restarts=args.max_restarts, restart_window=60.0,
            ) as supervisor:
                job.supervisor = supervisor
                async with trio.open_nursery() as watchers:
                    watchers.start_soon(job.watch_health)
                    watchers.start_soon(show_progress, job)
                    if args.chaos:
                        watchers.start_soon(job.make_chaos, args.triggers, random.Random(args.seed))
                    while True:
                        job.counts = await store.counts()
                        if job.counts["queued"] == job.counts["running"] == 0:
                            break
                        await trio.sleep(0.1)
                    watchers.cancel_scope.cancel()
            nursery.cancel_scope.cancel()
        wall = trio.current_time() - start
        rows = await store.rows()
        problems = check(rows, job)
        summary(job, rows, wall, problems)
        return 1 if problems else 0
    finally:
        store.close()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(levelname)s %(message)s")
    return trio.run(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
