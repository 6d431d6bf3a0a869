"""The chaos harness and its checks: what makes the demo a test, kept apart from the
example a user copies (the job, the runner, the store, the web and the display).

- :meth:`Harness.make_chaos` SIGKILLs the runner once and SIGSTOPs it once;
  :func:`trigger_mix` puts one of each chaos kind (a trigger that blocks the loop
  once, one that blocks it every time) first in a new store.
- :meth:`Harness.watch_health` samples what ``/health`` says and accounts for each
  outage, from the fault to the next RUNNING incarnation, named by how that
  incarnation ended.
- :meth:`Harness.check` is the verdict: every trigger ended exactly once, with the
  outcome its kind expects, no reply reached the wrong caller, and the chaos happened.
"""

from __future__ import annotations

import argparse
import os
import random
import signal

import attrs
import trio
from rich.console import Console

import actors

from .job import Job
from .kinds import CHAOS_KINDS, FAILING_KINDS, KINDS
from .store import TriggerRow

SHOWN_PROBLEMS = 20


@attrs.define
class Outage:
    """One time the runner was down: why, and how long /health said 503."""

    incarnation: int
    reason: str
    started: float
    ended: float | None = None
    cause: str = ""  # how that incarnation ended, once known


def trigger_mix(args: argparse.Namespace) -> list[str]:
    """The kinds of ``--triggers`` new triggers, shuffled by ``--seed``; with
    ``--chaos``, one of each chaos kind first."""
    kinds = [KINDS[i % len(KINDS)] for i in range(args.triggers)]
    random.Random(args.seed).shuffle(kinds)
    if args.chaos:
        kinds[: len(CHAOS_KINDS)] = CHAOS_KINDS
    return kinds


class Harness:
    """Chaos, outage accounting and the verdict, for one run of the job."""

    def __init__(self, job: Job, args: argparse.Namespace) -> None:
        self.job = job
        self.args = args
        self.chaos: list[str] = []
        self.outages: list[Outage] = []
        self.unhealthy_seconds = 0.0

    async def run(self) -> None:
        """Watch health and (with ``--chaos``) make chaos until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self.watch_health)
            if self.args.chaos:
                nursery.start_soon(self.make_chaos, self.args.triggers, random.Random(self.args.seed))

    @property
    def supervisor(self) -> actors.Supervisor:
        assert self.job.supervisor is not None
        return self.job.supervisor

    # ------------------------------------------------------------------ chaos

    async def make_chaos(self, total: int, rng: random.Random) -> None:
        """SIGKILL the runner once and SIGSTOP it once, at random moments of the run."""
        last_incarnation = 0
        for action, share in (("SIGKILL", rng.uniform(0.1, 0.3)), ("SIGSTOP", rng.uniform(0.4, 0.6))):
            while True:
                counts = await self.job.store.counts()
                done = counts["succeeded"] + counts["failed"]
                status = self.supervisor.status.value
                # Each act of chaos hits a healthy runner, never the one already hit.
                if done >= share * total and self.supervisor.healthy() and status.incarnation > last_incarnation:
                    break
                await trio.sleep(0.05)
            pid, incarnation = status.pid, status.incarnation
            if pid is None:
                continue
            last_incarnation = incarnation
            os.kill(pid, signal.SIGKILL if action == "SIGKILL" else signal.SIGSTOP)
            self.chaos.append(f"{action} incarnation {incarnation}")
            self.job.emit(f"chaos: {action} runner pid {pid} (incarnation {incarnation}) at {done}/{total} done")

    # ------------------------------------------------------------------ outages

    async def watch_health(self) -> None:
        """Sample what /health would say every 50 ms: outages and seconds of 503."""
        period = 0.05
        current: Outage | None = None
        await self.supervisor.status.wait_value(lambda status: status.state is actors.WorkerState.RUNNING)
        announced = 0
        while True:
            status = self.supervisor.status.value
            if status.state is actors.WorkerState.RUNNING and status.incarnation > announced:
                announced = status.incarnation
                self.job.emit(f"runner incarnation {announced} RUNNING pid {status.pid}")
            healthy, body = self.job.health()
            now = trio.current_time() - self.job.started
            if current is not None:
                recovered = self.recovered_after(current)
                if recovered is not None:
                    # A later incarnation came up (RUNNING) between two samples: that
                    # ends this outage, even if a new fault has already begun another.
                    self.end_outage(current, recovered, status.incarnation)
                    current = None
            if not healthy and current is None:
                current = Outage(status.incarnation, body["reason"], now)
                self.outages.append(current)
                self.job.emit(f"health: 503 ({body['reason']}), runner incarnation {current.incarnation}")
            elif healthy and current is not None:
                self.end_outage(current, now, status.incarnation)
                current = None
            await trio.sleep(period)

    def end_outage(self, outage: Outage, at: float, incarnation: int) -> None:
        """From the fault to the next RUNNING (and fresh) incarnation; its cause is how
        *that* incarnation ended, if it did."""
        outage.ended = at
        outage.cause = self.ended_how(outage.incarnation) or outage.reason
        self.unhealthy_seconds += outage.ended - outage.started
        self.job.emit(f"health: 200 again, runner incarnation {incarnation}")

    def recovered_after(self, outage: Outage) -> float | None:
        """When a later incarnation than the outage's reached RUNNING (relative to the
        job's start), from the supervisor's history, or None if none has yet."""
        for status in self.supervisor.history():
            if status.state is actors.WorkerState.RUNNING and status.incarnation > outage.incarnation:
                return status.since - self.job.started
        return None

    def ended_how(self, incarnation: int) -> str | None:
        """How one incarnation ended (its reason and exit code), from the supervisor's
        history, or None if it has not ended."""
        for status in self.supervisor.history():
            if status.incarnation == incarnation and status.state in (
                actors.WorkerState.BACKING_OFF, actors.WorkerState.FAILED
            ):
                return f"{status.last_exit_reason} (exit {status.last_exit})"
        return None

    # ------------------------------------------------------------------ the verdict

    def check(self, rows: list[TriggerRow]) -> list[str]:
        """Every broken invariant, in a line each (empty: all held)."""
        problems = []
        for row in rows:
            expected = "failed" if row.kind in FAILING_KINDS else "succeeded"
            if row.outcomes != 1:
                problems.append(f"trigger {row.id} ({row.kind}) has {row.outcomes} outcomes")
            if row.state != expected:
                problems.append(f"trigger {row.id} ({row.kind}) ended {row.state}, expected {expected} ({row.error})")
            if row.kind == "poison" and row.error != "blocked the runner":
                problems.append(f"poison trigger {row.id} failed for another reason: {row.error}")
            if row.kind == "blocks_once" and not any(blamed == row.id for blamed, _ in self.job.blocks):
                # It blocks the loop in its very first step: the one a late link misses.
                problems.append(f"trigger {row.id} (blocks_once) blocked the loop and was never blamed")
        if self.job.misroutes:
            problems.append(f"{self.job.misroutes} misrouted replies")
        if self.args.chaos and not {"SIGKILL", "SIGSTOP"} <= {c.split()[0] for c in self.chaos}:
            problems.append(f"chaos did not both kill and stop the runner: {self.chaos}")
        return problems

    def report(self, console: Console, problems: list[str]) -> None:
        """The chaos, the outages and the verdict, after the job's own summary."""
        console.print(f"misrouted replies: {self.job.misroutes}")
        console.print(f"runner restarts: {self.supervisor.status.value.restarts}; "
                      f"chaos: {', '.join(self.chaos) or 'none'}; blocks charged: {len(self.job.blocks)}")
        for outage in self.outages:
            length = "still down" if outage.ended is None else f"503 for {outage.ended - outage.started:.2f} s"
            console.print(f"  outage at {outage.started:5.2f} s: incarnation {outage.incarnation} "
                          f"{outage.cause or outage.reason}, {length}")
        console.print(f"/health said 503 for {self.unhealthy_seconds:.1f} s in all; stale completions fenced: "
                      f"{self.job.store.stale_completions}")
        if problems:
            shown = "; ".join(problems[:SHOWN_PROBLEMS])
            more = f" (and {len(problems) - SHOWN_PROBLEMS} more)" if len(problems) > SHOWN_PROBLEMS else ""
            console.print(f"[bold red]FAILED[/]: {len(problems)} problems: {shown}{more}")
        else:
            console.print("[bold green]OK[/]: every trigger has exactly one outcome, the expected one; 0 misroutes")
