"""The triggerer job: the supervisor process. It owns the store, serves the runner
(which the supervisor restarts), admits work as the runner's load allows, and
answers ``/health/live``, ``/health/ready`` and ``/metrics``. (Chaos and the checks
that make the demo a test live in :mod:`.harness`.)"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from typing import Any, NoReturn

import trio
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

import actors
import channel

from .admission import AdmissionControl, Load
from .messages import (
    ConnectionResult,
    GetConnection,
    GetTaskStates,
    GetVariable,
    LoopBlocked,
    Sync,
    SyncResult,
    TaskStatesResult,
    VariableResult,
)
from .store import Store, StoreError, owner

COUNTS_EVERY = 0.1  # seconds between the job's refreshes of the counts its routes read

log = logging.getLogger(__name__)


class Job:
    """Everything the job knows: the store, the supervisor, its counters."""

    def __init__(self, store: Store, args: Any) -> None:
        self.store = store
        self.args = args
        self.supervisor: actors.Supervisor | None = None
        self.requests_by_caller: Counter[str] = Counter()
        self.handled: Counter[str] = Counter()
        self.misroutes = 0
        self.blocks: list[tuple[int, int]] = []  # (trigger id, incarnation)
        self.counts: dict[str, int] = {"queued": 0, "running": 0, "succeeded": 0, "failed": 0}
        self.started = trio.current_time()
        self.channel: dict[str, int] = {}  # a runner's CommsStatistics, from its last sync
        self.channel_incarnation = 0  # whose: metrics show them only while it is the current one
        self.loop_blocked: tuple[int, int] | None = None  # (incarnation, trigger id) until its next sync
        self.job_id = 0  # this start's row in the store's jobs table (see Store.start_job)
        self.admission = AdmissionControl(args.capacity)
        self.admission_incarnation = 0
        self.loop_lags: list[float] = []  # as reported in each sync, for the summary
        self.capacities: list[int] = []  # the admission limit after each sync
        self.heartbeat_gaps: list[float] = []  # seconds between consecutive syncs of one incarnation
        self.runner_rss_kb = 0  # the largest peak RSS any runner reported
        self.scope: trio.CancelScope | None = None  # the job's work, cancelled if the store fails

    async def store_failed(self, error: StoreError) -> NoReturn:
        """The store failed under a runner's request: the job ends, its runner stopped
        and never restarted for it, the error said once (by ``__main__``). The request
        is not answered: the job's cancellation reaches this handler at once.

        Raises:
            ErrorReply: ``STORE_FAILED``, only outside a running job (no scope to end).
        """
        if self.scope is None:
            raise channel.ErrorReply("STORE_FAILED", {"error": str(error)})
        self.scope.cancel()
        await trio.sleep_forever()

    # ------------------------------------------------------------------ serving the runner

    async def handler(self, message: Any) -> Any:
        try:
            return await self._handle(message)
        except StoreError as error:
            await self.store_failed(error)

    async def _handle(self, message: Any) -> Any:
        self.handled[type(message).__name__] += 1
        incarnation = actors.current_request().incarnation
        if isinstance(message, Sync):
            if self.loop_blocked is not None and self.loop_blocked[0] == incarnation:
                self.loop_blocked = None  # its loop runs again
            # Its channel's numbers as it sent them, before the store's wait: the runner
            # is RUNNING (and /health 200) from this heartbeat's read, so /metrics shows
            # them from then on too.
            self.channel, self.channel_incarnation = message.channel, incarnation or 0
            free = self.admit(incarnation or 0, message)
            start, cancel, _stale = await self.store.sync(
                owner(self.job_id, incarnation or 0), message.events, message.running, free
            )
            self.requests_by_caller.update(message.requests)
            self.misroutes += message.misroutes
            return SyncResult(start=start, cancel=cancel)
        if isinstance(message, LoopBlocked):
            self.loop_blocked = (incarnation or 0, message.trigger_id)
            failed = await self.store.charge_block(message.trigger_id, owner(self.job_id, incarnation or 0))
            self.blocks.append((message.trigger_id, incarnation or 0))
            self.emit(f"trigger {message.trigger_id} blocked runner incarnation {incarnation} for "
                      f"{message.seconds:.1f} s{' : failed, blocked the runner 3 times' if failed else ''}")
            return None
        if isinstance(message, GetVariable):
            return VariableResult(key=message.key, value=f"value-of-{message.key}")
        if isinstance(message, GetConnection):
            return ConnectionResult(conn_id=message.conn_id, host=f"host-{message.conn_id}")
        if isinstance(message, GetTaskStates):
            return TaskStatesResult(dag_id=message.dag_id, states={run: "success" for run in message.run_ids})
        raise channel.ErrorReply("UNKNOWN_REQUEST", {"type": type(message).__name__})

    def admit(self, incarnation: int, message: Sync) -> int:
        """How many new triggers this sync may start: what the runner has room for,
        within the limit admission control sets from its reported load."""
        if incarnation != self.admission_incarnation:  # a new runner ramps up again
            self.admission.restart()
            self.admission_incarnation = incarnation
        limit = self.admission.update(
            Load(loop_lag=message.loop_lag, thread_wait=message.thread_wait,
                 request_latency=message.request_latency, running=message.peak_running)
        )
        if self.supervisor is not None:
            self.supervisor.report_load(message.loop_lag)
            gap = self.supervisor.status.value.heartbeat_gap
            if gap is not None:
                self.heartbeat_gaps.append(gap)
        self.loop_lags.append(message.loop_lag)
        self.capacities.append(limit)
        self.runner_rss_kb = max(self.runner_rss_kb, message.rss_kb)
        return max(0, min(message.free, limit - len(message.running)))

    def emit(self, line: str) -> None:
        """An event line for the log (and for tests that follow the run)."""
        print(f"[{trio.current_time() - self.started:6.2f}s] {line}", flush=True)

    # ------------------------------------------------------------------ health and metrics

    def health(self) -> tuple[bool, dict[str, Any]]:
        assert self.supervisor is not None
        status = self.supervisor.status.value
        why = self.supervisor.why_unhealthy()  # as of now: a stopped runner at once
        healthy = why is None
        blocked = self.loop_blocked
        if healthy and blocked is not None and blocked[0] == status.incarnation:
            # Its heartbeat is not stale yet, but the runner said its loop is blocked.
            healthy, why = False, f"loop blocked by trigger {blocked[1]}"
        reason = why or "running"
        return healthy, {
            "status": "healthy" if healthy else "unhealthy",
            "reason": reason,
            "runner": {
                "state": status.state.name,
                "pid": status.pid,
                "incarnation": status.incarnation,
                "restarts": status.restarts,
                "heartbeat_age": self.supervisor.heartbeat_age(),
                "last_exit": status.last_exit,
                "last_exit_reason": status.last_exit_reason,
            },
            "triggers": self.counts,
        }

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """Readiness, apart from liveness (as Kubernetes keeps them): ready to take more
        work only if alive and not overloaded. Busy makes this 503, never /health/live."""
        assert self.supervisor is not None
        live, body = self.health()
        status = self.supervisor.status.value
        overloaded = self.admission.overloaded or not self.supervisor.ready()
        ready = live and not overloaded
        reason = body["reason"] if not live else ("overloaded" if overloaded else "ready")
        return ready, {
            "status": "ready" if ready else "not ready",
            "reason": reason,
            "capacity": self.admission.limit,
            "loop_lag": status.loop_lag,
            "heartbeat_gap": status.heartbeat_gap,
            "triggers": self.counts,
        }

    # The routes cost no store query: they read the counts the job's own loop refreshes
    # every 0.1 s, so a flood of health checks cannot queue work ahead of the runner's sync.

    async def ready_route(self) -> tuple[int, str, bytes]:
        ready, body = self.readiness()
        return (200 if ready else 503), "application/json", json.dumps(body).encode()

    async def health_route(self) -> tuple[int, str, bytes]:
        healthy, body = self.health()
        return (200 if healthy else 503), "application/json", json.dumps(body).encode()

    async def metrics_route(self) -> tuple[int, str, bytes]:
        registry = CollectorRegistry()
        registry.register(_JobCollector(self))
        return 200, "text/plain; version=0.0.4; charset=utf-8", generate_latest(registry)


class _JobCollector:
    def __init__(self, job: Job) -> None:
        self.job = job

    def collect(self) -> Any:
        job = self.job
        assert job.supervisor is not None
        status = job.supervisor.status.value
        yield CounterMetricFamily("triggerer_runner_restarts", "Runner restarts.", value=status.restarts)
        yield GaugeMetricFamily("triggerer_runner_up", "1 while /health says healthy.", value=int(job.supervisor.healthy()))
        yield GaugeMetricFamily("triggerer_runner_incarnation", "The runner's incarnation.", value=status.incarnation)
        states = GaugeMetricFamily("triggerer_triggers", "Triggers by state.", labels=["state"])
        for state, count in job.counts.items():
            states.add_metric([state], count)
        yield states
        callers = CounterMetricFamily("triggerer_channel_requests", "Requests by caller kind.", labels=["caller"])
        for caller, count in sorted(job.requests_by_caller.items()):
            callers.add_metric([caller], count)
        yield callers
        handled = CounterMetricFamily("triggerer_channel_handled", "Requests the job handled, by type.", labels=["type"])
        for kind, count in sorted(job.handled.items()):
            handled.add_metric([kind], count)
        yield handled
        yield CounterMetricFamily("triggerer_channel_misroutes", "Replies that were not their caller's.", value=job.misroutes)
        runner_channel = GaugeMetricFamily(
            "triggerer_runner_channel", "The current runner's channel statistics (CommsStatistics), "
            "as of its last sync; none while no live incarnation has synced.", labels=["field"]
        )
        if job.channel_incarnation == status.incarnation and status.pid is not None:
            for field, value in sorted(job.channel.items()):
                runner_channel.add_metric([field], value)
        yield runner_channel
        yield GaugeMetricFamily("triggerer_runner_ready", "1 while /health/ready says ready.",
                                value=int(job.readiness()[0]))
        yield GaugeMetricFamily("triggerer_runner_loop_lag_seconds", "The runner's loop lag, as last reported.",
                                value=status.loop_lag or 0.0)
        yield GaugeMetricFamily("triggerer_runner_heartbeat_gap_seconds", "Seconds between the runner's last two syncs.",
                                value=status.heartbeat_gap or 0.0)
        yield GaugeMetricFamily("triggerer_admission_capacity", "Triggers the runner may run at once now (admission control).",
                                value=job.admission.limit)
        yield GaugeMetricFamily("triggerer_admission_queue", "Triggers waiting to be admitted to the runner.",
                                value=job.counts["queued"])
        yield CounterMetricFamily("triggerer_stale_completions", "Completions fenced off (stale incarnation).",
                                  value=job.store.stale_completions)


def runner_command(args: Any) -> list[str]:
    return [
        sys.executable, "-m", "examples.triggerer.runner", "--host", args.runner, "--capacity", str(args.capacity),
        "--trigger-timeout", str(args.trigger_timeout), "--block-seconds", str(args.stuck_after * 2 + 1),
    ]
