"""Harness A: the real ``TriggerRunnerSupervisor`` and its real forked ``TriggerRunner``,
with only the supervisor's database-facing methods replaced by in-memory ones.

    python -m tests.airflow.runner_harness --comms stock|trio-comms [--triggers 300]
        [--churn 5] [--seconds 30] [--callers sync_to_async|to_thread|asend]

``--triggers`` run at once: every tenth is the standard provider's real
``WorkflowTrigger`` (it polls ``get_ti_count`` through ``sync_to_async``, and the
count never reaches its goal), the rest are
:class:`~tests.airflow.triggers.AskingTrigger`. Every second ``--churn`` of them
are cancelled and as many new ones created. The supervisor answers each
``GetVariable`` with its own key and each ``GetTICount`` with 0 (a reply of any
other type fails a ``WorkflowTrigger``); every other message goes to Airflow's own
handler. After ``--seconds`` the runner is sent SIGTERM (as
``airflow triggerer`` does on shutdown) and given 10 s to exit. Prints one JSON
line: every outcome the triggers recorded, the failed triggers, whether the runner
was alive at the end, its exit code and how long it took to exit.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import sys
import tempfile
import time
import types
from typing import Any

EXIT_GRACE = 10.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.airflow.runner_harness")
    parser.add_argument("--comms", choices=("stock", "trio-comms"), required=True)
    parser.add_argument("--triggers", type=int, default=300)
    parser.add_argument("--churn", type=int, default=5, help="cancellations (and creations) a second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--callers", choices=("sync_to_async", "to_thread", "asend"), default="sync_to_async")
    parser.add_argument("--answer-ms", type=float, default=10.0,
                        help="what answering one request costs the supervisor (its API call and database "
                        "work; the real one answers about 100 a second)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = tempfile.mkdtemp(prefix="harness-a-")
    os.environ.setdefault("AIRFLOW_HOME", home)
    outcomes_path = os.path.join(home, "outcomes")
    os.environ["HARNESS_OUTCOMES"] = outcomes_path
    if args.comms == "trio-comms":
        import trio_comms_airflow

        trio_comms_airflow.install()

    import airflow
    from airflow.executors import workloads
    from airflow.jobs.triggerer_job_runner import TriggerRunnerSupervisor
    from airflow.models.trigger import Trigger
    from airflow.sdk.execution_time.comms import GetTICount, GetVariable, TICount, VariableResult

    class Supervisor(TriggerRunnerSupervisor):  # type: ignore[misc]
        """Airflow's own supervisor with its database replaced by a set of ids."""

        def load_triggers(self) -> None:
            state = self.harness
            now = time.monotonic()
            while now >= state["next_churn"]:
                state["next_churn"] += 1.0
                running = sorted(state["wanted"])
                for trigger_id in running[: args.churn]:
                    state["wanted"].discard(trigger_id)
                for _ in range(min(args.churn, len(running))):
                    state["wanted"].add(state["next_id"])
                    state["next_id"] += 1
                state["cancelled"] += min(args.churn, len(running))
            self.update_triggers(set(state["wanted"]))

        def update_triggers(self, requested_trigger_ids: set[int]) -> None:
            known = (
                self.running_triggers.union(x[0] for x in self.events)
                .union(self.cancelling_triggers)
                .union(trigger[0] for trigger in self.failed_triggers)
                .union(trigger.id for trigger in self.creating_triggers)
            )
            for trigger_id in sorted(requested_trigger_ids - known):
                classpath, kwargs = trigger_for(trigger_id, args.callers)
                self.creating_triggers.append(workloads.RunTrigger(
                    id=trigger_id, classpath=classpath, encrypted_kwargs=Trigger.encrypt_kwargs(kwargs), ti=None,
                ))
            self.cancelling_triggers.update(self.running_triggers - requested_trigger_ids)

        def handle_events(self) -> None:
            while self.events:
                self.events.popleft()
                self.harness["events"] += 1

        def handle_failed_triggers(self) -> None:
            while self.failed_triggers:
                trigger_id, error = self.failed_triggers.popleft()
                self.harness["failed"] += 1
                self.harness["failures"].append(f"{trigger_id}: {str(error)[:200]}")

        def clean_unused(self) -> None:
            pass

        def heartbeat(self) -> None:
            pass

        def emit_metrics(self) -> None:
            pass

        def _handle_request(self, msg: Any, log: Any, req_id: int) -> None:
            self.harness["requests"] += 1
            if isinstance(msg, GetVariable):  # its own key back: each reply is checkable
                time.sleep(args.answer_ms / 1000)
                self.send_msg(VariableResult(key=msg.key, value=msg.key), request_id=req_id, error=None)
                return
            if isinstance(msg, GetTICount):  # WorkflowTrigger's poll: never done
                self.harness["ti_counts"] += 1
                time.sleep(args.answer_ms / 1000)
                self.send_msg(TICount(count=0), request_id=req_id, error=None)
                return
            super()._handle_request(msg, log, req_id)

    job = types.SimpleNamespace(id=1)
    supervisor = Supervisor.start(job=job, capacity=args.triggers * 2)
    supervisor.harness = {
        "wanted": set(range(1, args.triggers + 1)), "next_id": args.triggers + 1,
        "next_churn": time.monotonic() + 1.0, "cancelled": 0, "events": 0, "failed": 0, "failures": [],
        "requests": 0, "ti_counts": 0,
    }
    started = time.monotonic()
    died_at: float | None = None
    exit_seconds: float | None = None
    killed = False
    # The supervisor's own loop, one iteration at a time (Airflow 3.1 has no run_once).
    while True:
        if not supervisor.is_alive():
            died_at = time.monotonic() - started
            break
        if time.monotonic() - started >= args.seconds:
            break
        supervisor.load_triggers()
        supervisor._service_subprocess(1)
        supervisor.handle_events()
        supervisor.handle_failed_triggers()
    alive_at_end = died_at is None
    if alive_at_end:
        os.kill(supervisor.pid, signal.SIGTERM)
        term_at = time.monotonic()
        while supervisor.is_alive() and time.monotonic() - term_at < EXIT_GRACE:
            supervisor._service_subprocess(0.1)  # answer what it asks while it shuts down
            supervisor.handle_events()
            supervisor.handle_failed_triggers()
        if supervisor.is_alive():
            killed = True
            os.kill(supervisor.pid, signal.SIGKILL)
            while supervisor.is_alive():  # its exit is noticed by the supervisor's own loop
                supervisor._service_subprocess(0.1)
        else:
            exit_seconds = round(time.monotonic() - term_at, 2)
    exit_code = supervisor._exit_code
    counts: collections.Counter[str] = collections.Counter()
    examples: dict[str, str] = {}
    with open(outcomes_path) as outcomes:
        for line in outcomes:
            kind = classify(line)
            counts[kind] += 1
            examples.setdefault(kind, line.strip())
    state = supervisor.harness
    print(json.dumps({
        "airflow": airflow.__version__, "harness": "A", "comms": args.comms, "callers": args.callers,
        "triggers": args.triggers, "churn": args.churn, "seconds": args.seconds,
        "outcomes": dict(counts), "examples": examples, "cancelled": state["cancelled"],
        "failed_triggers": state["failed"], "failures": state["failures"][:5], "requests": state["requests"],
        "ti_counts": state["ti_counts"],
        "runner_died_at": None if died_at is None else round(died_at, 1), "alive_at_end": alive_at_end,
        "exit_code": exit_code, "exit_seconds": exit_seconds, "sigkilled": killed,
    }))
    return 0


WORKFLOW_TRIGGER = "airflow.providers.standard.triggers.external_task.WorkflowTrigger"


def trigger_for(trigger_id: int, callers: str) -> tuple[str, dict[str, Any]]:
    """Trigger ``trigger_id``'s classpath and kwargs: every tenth a real ``WorkflowTrigger``."""
    from .triggers import CLASSPATH  # imports Airflow: after install()

    if trigger_id % 10 == 0:
        return WORKFLOW_TRIGGER, {"external_dag_id": "harness", "run_ids": ["run"], "external_task_ids": ["task"],
                                  "allowed_states": ["success"], "poke_interval": 0.5}
    return CLASSPATH, {"number": trigger_id, "callers": callers, "period": 0.5}


def classify(line: str) -> str:
    """One outcome line's kind: ok, wrong, cancelled, out-of-order, cross-loop, or error."""
    if line.startswith(("ok", "wrong", "cancelled")):
        return line.split()[0]
    if "out of order" in line:
        return "out-of-order"
    if "different loop" in line or "different event loop" in line or "attached to a different" in line:
        return "cross-loop"
    return "error " + line.split(":")[0].removeprefix("error ").strip()


if __name__ == "__main__":
    sys.exit(main())
