"""Harness B: the real ``airflow triggerer`` command on a real, migrated SQLite
Airflow database, stock or through ``trio-comms-airflow``.

    python -m tests.airflow.cli_harness --comms stock|trio-comms [--seconds 20] [--churn 5]
        [--tasks 300] [--period 0.5] [--callers sync_to_async|to_thread]

The database (made once per Airflow home and size, then copied per run) holds one
DAG run of a ``--tasks``-task DAG whose every task instance is deferred on a trigger
of its own (an :class:`~tests.airflow.triggers.AskingTrigger` that asks for the
Variable ``t<n>`` through ``--callers`` about every ``--period`` seconds and
once more while cancelled, and fails as a real trigger would on an error or a wrong
reply), and a Variable ``t<n>`` for each, its own key as its value. The supervisor
answers from the database through Airflow's in-process Execution API. Once every
trigger has asked, ``--churn`` deferred task instances a second are marked success
(so the triggerer cancels their triggers); after ``--seconds`` the triggerer is sent
SIGTERM and given 30 s to exit before its process group is SIGKILLed (the triggerer
itself stops its runner with SIGINT, then SIGTERM and SIGKILL 10 s apart).

Prints one JSON line: the triggers' outcomes, how many requests a second were
answered meanwhile and what share of a core the triggerer's own process used, the task instance states read back from the database
(``failed_by_trigger``: sent to ``submit_failure``), the log lines that show the
seed's failure, how the runner ended by Airflow's own log, the triggerer's exit
code and whether any of its processes was left.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .runner_harness import classify

START_TIMEOUT = 120.0
EXIT_GRACE = 30.0
REPO = Path(__file__).resolve().parents[2]

DAG_FILE = '''
import pendulum
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("harness", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
    for n in range({tasks}):
        EmptyOperator(task_id=f"t{{n}}")
'''

# Run in the template's Airflow: one DAG run, every task instance deferred on its own trigger.
SEED_DB = '''
import sys

import pendulum
from airflow.models.serialized_dag import SerializedDagModel
from airflow.models.trigger import Trigger
from airflow.models.variable import Variable
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from airflow.utils.types import DagRunTriggeredByType, DagRunType

from tests.airflow.triggers import CLASSPATH

with create_session() as session:
    dag = SerializedDagModel.get_dag("harness", session=session)
    now = pendulum.now("UTC")
    run = dag.create_dagrun(
        run_id="run", logical_date=now, data_interval=(now, now), run_after=now, conf={},
        run_type=DagRunType.MANUAL, triggered_by=DagRunTriggeredByType.TEST, state=DagRunState.RUNNING,
        session=session,
    )
    session.flush()
    for ti in run.get_task_instances(session=session):
        number = int(ti.task_id[1:])
        trigger = Trigger(classpath=CLASSPATH, kwargs={
            "number": number, "callers": sys.argv[2], "period": float(sys.argv[1]), "fixed_key": True,
            "raise_errors": True})
        session.add(trigger)
        session.flush()
        ti.state = TaskInstanceState.DEFERRED
        ti.trigger_id = trigger.id
        ti.next_method = "execute_complete"
        session.add(Variable(key=f"t{number}", val=f"t{number}"))
'''


# Airflow's own record of the runner's end: "Process exited abnormally exit_code=126"
# when it died, "Process exited exit_code=0 ... signal_sent=SIGINT" when stopped.
RUNNER_EXIT = re.compile(r"Process exited.*?exit_code=(?P<code>-?\d+)(?:.*?signal_sent=(?P<signal>\w+))?")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.airflow.cli_harness")
    parser.add_argument("--comms", choices=("stock", "trio-comms"), required=True)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--churn", type=int, default=5, help="task instances marked success a second")
    parser.add_argument("--tasks", type=int, default=300, help="deferred task instances, one trigger each")
    parser.add_argument("--period", type=float, default=0.5, help="seconds between a trigger's questions (about)")
    parser.add_argument("--callers", choices=("sync_to_async", "to_thread"), default="sync_to_async",
                        help="how the triggers call the SDK (tests/airflow/triggers.py)")
    return parser.parse_args(argv)


def airflow_env(home: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ, AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"), PYTHONPATH=str(REPO), **extra)
    env.pop("HARNESS_RESULTS", None)
    return env


def airflow_bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def template(tasks: int, period: float, callers: str) -> Path:
    """The migrated, seeded Airflow home for ``tasks`` triggers asking every
    ``period`` seconds through ``callers`` (made once: ``airflow db migrate`` and
    ``dags reserialize`` take seconds each)."""
    root = Path(os.environ.get("AIRFLOW_HOME") or tempfile.gettempdir())
    ready = root / f"harness-b-{tasks}-{period:g}-{callers}"
    if ready.is_dir():
        return ready
    root.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="harness-b-making-", dir=root))
    (home / "dags").mkdir()
    (home / "dags" / "harness.py").write_text(DAG_FILE.format(tasks=tasks))
    env = airflow_env(home)
    for command in (["db", "migrate"], ["dags", "reserialize"]):
        subprocess.run([airflow_bin("airflow"), *command], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, "-c", SEED_DB, str(period), callers], env=env, check=True, capture_output=True, timeout=300)
    home.rename(ready)  # whole or not at all
    return ready


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import airflow

    home = Path(tempfile.mkdtemp(prefix="harness-b-"))
    shutil.copytree(template(args.tasks, args.period, args.callers), home, dirs_exist_ok=True)
    db = home / "airflow.db"
    outcomes_path = home / "outcomes"
    outcomes_path.touch()
    env = airflow_env(home, AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{db}",
                      AIRFLOW__LOGGING__BASE_LOG_FOLDER=str(home / "logs"), HARNESS_OUTCOMES=str(outcomes_path))
    command = "airflow" if args.comms == "stock" else "trio-comms-airflow"
    with open(home / "triggerer.log", "w") as log:
        process = subprocess.Popen([airflow_bin(command), "triggerer", "--skip-serve-logs"], env=env,
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        result = drive(process, db, outcomes_path, args)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    result.update(read_back(db, outcomes_path, home / "triggerer.log"))
    result.update({"airflow": airflow.__version__, "harness": "B", "comms": args.comms, "callers": args.callers,
                   "triggers": args.tasks, "period": args.period, "churn": args.churn, "seconds": args.seconds})
    print(json.dumps(result))
    return 0


def drive(process: subprocess.Popen[bytes], db: Path, outcomes_path: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Wait until every trigger has asked, churn for ``--seconds``, then SIGTERM."""
    started = time.monotonic()
    while lines(outcomes_path) < args.tasks:
        if process.poll() is not None or time.monotonic() - started > START_TIMEOUT:
            raise RuntimeError(f"the triggerer did not start its triggers (exit {process.poll()})")
        time.sleep(0.2)  # polling a process we do not own, not synchronising our own tasks
    churn_started = time.monotonic()
    answered_before = answered(outcomes_path)
    cpu_before = cpu_seconds(process.pid)
    marked = 0
    died_at: float | None = None
    with sqlite3.connect(db, timeout=30) as conn:
        while (now := time.monotonic()) - churn_started < args.seconds:
            if process.poll() is not None:
                died_at = round(now - churn_started, 1)
                break
            cursor = conn.execute(
                "UPDATE task_instance SET state = 'success' WHERE id IN "
                "(SELECT id FROM task_instance WHERE state = 'deferred' ORDER BY random() LIMIT ?)", (args.churn,))
            conn.commit()
            marked += cursor.rowcount
            time.sleep(max(0.0, 1.0 - (time.monotonic() - now)))
    window = time.monotonic() - churn_started
    answered_per_second = round((answered(outcomes_path) - answered_before) / window, 1)
    cpu_share = None if died_at is not None else round((cpu_seconds(process.pid) - cpu_before) / window, 2)
    exit_seconds: float | None = None
    killed = False
    if died_at is None:
        process.send_signal(signal.SIGTERM)
        term_at = time.monotonic()
        try:
            process.wait(EXIT_GRACE)
            exit_seconds = round(time.monotonic() - term_at, 2)
        except subprocess.TimeoutExpired:
            killed = True
    left_behind = group_alive(process.pid)
    if left_behind or killed:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return {"marked_success": marked, "answered_per_second": answered_per_second, "triggerer_cpu_share": cpu_share, "exited_by_itself_at": died_at, "alive_at_end": died_at is None,
            "exit_code": process.returncode, "exit_seconds": exit_seconds, "sigkilled": killed,
            "processes_left": left_behind}


def cpu_seconds(pid: int) -> float:
    """CPU time the triggerer's own process (not its runner) has used so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def lines(path: Path) -> int:
    with path.open() as outcomes:
        return sum(1 for _ in outcomes)


def answered(path: Path) -> int:
    """Requests answered with their own reply so far."""
    with path.open() as outcomes:
        return sum(1 for line in outcomes if line.startswith("ok"))


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def read_back(db: Path, outcomes_path: Path, log_path: Path) -> dict[str, Any]:
    """The task instances' states from the database, the outcomes, and the log's tell-tale lines."""
    with sqlite3.connect(db, timeout=30) as conn:
        rows = conn.execute("SELECT state, next_method FROM task_instance").fetchall()
    states = collections.Counter(state for state, _ in rows)
    counts: collections.Counter[str] = collections.Counter()
    examples: dict[str, str] = {}
    for line in outcomes_path.read_text().splitlines():
        kind = classify(line)
        counts[kind] += 1
        examples.setdefault(kind, line.strip())
    log = log_path.read_text(errors="replace")
    exit_line = RUNNER_EXIT.search(log)
    return {
        "runner_exit_code": None if exit_line is None else int(exit_line["code"]),
        "runner_signal_sent": None if exit_line is None else exit_line["signal"],
        "outcomes": dict(counts), "examples": examples, "ti_states": dict(states),
        "failed_by_trigger": sum(1 for _, next_method in rows if next_method == "__fail__"),
        "log_out_of_order": log.count("Response read out of order"), "log_runner_died": log.count("has died"),
        "log_trio_comms_on": "trio-comms drives the triggerer runner's comms" in log,
    }


if __name__ == "__main__":
    sys.exit(main())
