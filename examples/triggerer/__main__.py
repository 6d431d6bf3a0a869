"""``python -m examples.triggerer``: run the triggerer until every trigger is terminal.

Exits 0 only if every invariant held: each trigger ended exactly once, with the
outcome its kind expects, no reply reached the wrong caller, and no runner process
is left. A store given with --db is resumed: started again on the same file, the
job finishes the triggers a previous job left unfinished (even one that was
SIGKILLed) and adds --triggers new ones only with --add. SIGINT and SIGTERM stop
the runner and exit with 130 and 143; the store can then be resumed. A store that
cannot be used, or fails during the run (a full disk, a damaged page, a lock held
by another process for over 5 s), stops the runner and exits 2 with one line.
SIGABRT (and a crash) prints every thread's stack to stderr, then ends the job: how
a job that hangs tells where it waits.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import logging
import os
import signal
import sys
import tempfile
from typing import TypeVar

import trio

import actors

from .display import show_progress, summary
from .harness import Harness, trigger_mix
from .job import COUNTS_EVERY, Job, runner_command
from .messages import CODEC, Sync
from .store import Store, StoreError
from .web import serve_http


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m examples.triggerer", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--triggers", type=int, default=1000,
                        help="triggers to create in a new store (default: %(default)s)")
    parser.add_argument("--add", action="store_true",
                        help="add --triggers new triggers even though the store already has some")
    parser.add_argument("--capacity", type=int, default=1000,
                        help="most triggers the runner runs at once (default: %(default)s)")
    parser.add_argument("--chaos", action="store_true", help="kill, stop and block the runner")
    parser.add_argument("--seed", type=int, default=1, help="seed of the trigger mix and the chaos (default: %(default)s)")
    parser.add_argument("--db", help="the SQLite store; an existing one is resumed (default: a fresh one in a "
                        "temporary folder, removed at the end)")
    parser.add_argument("--http", default="127.0.0.1:0", help="HOST:PORT for /health and /metrics (default: any port)")
    parser.add_argument("--runner", choices=("trio", "asyncio"), default="trio",
                        help="the runner's event loop (default: %(default)s)")
    parser.add_argument("--stuck-after", type=float, default=2.0,
                        help="seconds without a sync before the runner counts as stuck (default: %(default)s)")
    parser.add_argument("--trigger-timeout", type=float, default=3.0,
                        help="a trigger's own deadline, in seconds (default: %(default)s)")
    parser.add_argument("--max-restarts", type=int, default=20,
                        help="restarts within 60 s after which the job gives up (default: %(default)s)")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> int:
    """Open the store (``--db``, or a fresh one in a temporary folder removed at the
    end: only a SIGKILLed job leaves that folder behind) and run the job on it."""
    with contextlib.ExitStack() as cleanup:
        if args.db is None:
            folder = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="triggerer-"))
            args.db = os.path.join(folder, "triggers.db")
        try:
            store = Store(args.db)
        except StoreError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        failed: list[StoreError] = []
        try:
            try:
                return await run_on(store, args)
            except* StoreError as group:
                failed.extend(leaves(group))
        finally:
            store.close()
        # The store failed: the job's failure, said once (its runner was stopped).
        print(f"error: {store.failure or failed[0]}", file=sys.stderr)
        return 2


async def run_on(store: Store, args: argparse.Namespace) -> int:
    job = Job(store, args)
    harness = Harness(job, args)
    job.job_id = await store.start_job()
    existing = await store.total()
    if existing and not args.add:
        job.emit(f"resuming {await store.unfinished()} unfinished of the {existing} triggers in {args.db}")
    else:
        await store.add(trigger_mix(args))
    start = trio.current_time()
    stopped_by: list[int] = []
    gave_up: list[actors.RestartIntensityExceeded] = []
    try:
        await supervise(job, harness, store, args, stopped_by)
    except* actors.RestartIntensityExceeded as group:
        gave_up.extend(leaves(group))
    if stopped_by:
        counts = await store.counts()
        print(f"stopped by {signal.Signals(stopped_by[0]).name}: runner stopped; {counts['queued'] + counts['running']} "
              f"triggers unfinished in {args.db} (run again with --db to resume)", flush=True)
        return 128 + stopped_by[0]
    wall = trio.current_time() - start
    rows = await store.rows()
    problems = harness.check(rows)
    if gave_up:
        problems.insert(0, f"the job gave up on its runner: {gave_up[0]}")
    harness.report(summary(job, rows, wall), problems)
    return 1 if problems else 0


E = TypeVar("E", bound=BaseException)


def leaves(group: BaseExceptionGroup[E]) -> list[E]:
    found: list[E] = []
    for error in group.exceptions:
        found += leaves(error) if isinstance(error, BaseExceptionGroup) else [error]
    return found


async def supervise(job: Job, harness: Harness, store: Store, args: argparse.Namespace, stopped_by: list[int]) -> None:
    """Serve /health and /metrics and supervise the runner until every trigger is
    terminal (or a signal stops the job).

    Raises:
        RestartIntensityExceeded: the runner had to be restarted too often.
    """
    host, _, port = args.http.rpartition(":")
    async with trio.open_nursery() as nursery:
        job.scope = nursery.cancel_scope  # a failed store ends the job (Job.store_failed)
        nursery.start_soon(stop_on_signals, nursery.cancel_scope, stopped_by)
        async with trio.open_nursery() as work:
            bound = await work.start(serve_http, host or "127.0.0.1", int(port),
                                     {"/health": job.health_route, "/health/live": job.health_route,
                                      "/health/ready": job.ready_route, "/metrics": job.metrics_route})
            job.emit(f"serving /health/live, /health/ready and /metrics on http://{host or '127.0.0.1'}:{bound}")
            job.emit(f"store: {args.db}; {args.triggers} triggers; runner host {args.runner}")
            async with actors.open_supervisor(
                runner_command(args), CODEC, job.handler, heartbeat=Sync, stuck_after=args.stuck_after,
                start_timeout=10.0, stop_timeout=2.0, backoff_initial=0.1, backoff_max=1.0,
                max_restarts=args.max_restarts, restart_window=60.0,
            ) as supervisor:
                job.supervisor = supervisor
                async with trio.open_nursery() as watchers:
                    watchers.start_soon(show_progress, job)
                    watchers.start_soon(harness.run)
                    while True:
                        job.counts = await store.counts()
                        if job.counts["queued"] == job.counts["running"] == 0:
                            break
                        await trio.sleep(COUNTS_EVERY)
                    watchers.cancel_scope.cancel()
            work.cancel_scope.cancel()
        nursery.cancel_scope.cancel()


async def stop_on_signals(scope: trio.CancelScope, stopped_by: list[int]) -> None:
    """SIGINT (Ctrl-C) or SIGTERM: cancel the job, which stops the runner on its way out."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            stopped_by.append(signum)
            scope.cancel()
            return


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="[%(name)s] %(levelname)s %(message)s")
    faulthandler.enable(all_threads=True)
    return trio.run(run, parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
