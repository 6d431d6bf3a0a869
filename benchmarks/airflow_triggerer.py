"""``make bench-airflow-triggerer``: how many requests a second the real ``airflow
triggerer`` answers its runner, stock and with trio-comms driving the runner's comms.

Runs harness B (``tests/airflow/cli_harness.py``: the real CLI on a migrated SQLite
database, the in-process Execution API) with ``--churn 0``: ``--tasks`` deferred task
instances whose triggers each ask for a Variable about once a second, for
``--seconds``, stock and with trio-comms interleaved, ``--repeats`` times, medians
quoted, with the share of a core the triggerer's own process used meanwhile. Writes ``benchmarks/results/airflow-triggerer.rst`` (docs/airflow.rst
includes it) and prints the same table.

    python -m benchmarks.airflow_triggerer [--tasks 300 1000] [--seconds 20] [--repeats 1]
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "airflow-triggerer.rst"
COMMS = ("stock", "trio-comms")


def run_once(comms: str, tasks: int, seconds: float) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.airflow.cli_harness", "--comms", comms, "--churn", "0", "--period", "1",
         "--tasks", str(tasks), "--seconds", str(seconds)],
        capture_output=True, text=True, timeout=600, check=True,
    )
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.airflow_triggerer")
    parser.add_argument("--tasks", type=int, nargs="+", default=[300, 1000])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    rates: dict[tuple[int, str], list[float]] = {}
    cpu: dict[tuple[int, str], list[float]] = {}
    wrong: dict[tuple[int, str], int] = {}
    version = "?"
    for _ in range(args.repeats):
        for tasks in args.tasks:
            for comms in COMMS:
                run = run_once(comms, tasks, args.seconds)
                version = run["airflow"]
                rates.setdefault((tasks, comms), []).append(run["answered_per_second"])
                cpu.setdefault((tasks, comms), []).append(run["triggerer_cpu_share"])
                outcomes = run["outcomes"]
                wrong[tasks, comms] = wrong.get((tasks, comms), 0) + sum(
                    n for kind, n in outcomes.items() if kind not in ("ok", "cancelled"))
                print(f"{tasks} triggers, {comms}: {run['answered_per_second']} answered/s", file=sys.stderr)
    day = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"*Written by* ``make bench-airflow-triggerer`` *on {day}: Airflow {version}, {args.seconds:g} s per run, "
        f"median of {args.repeats}, on the shared 2-core machine.*",
        "",
        ".. list-table:: Requests the real triggerer answers a second (each trigger asks about once a second)",
        "   :header-rows: 1",
        "",
        "   * - triggers\n     - asked a second\n     - answered a second, stock\n     - answered a second, trio-comms"
        "\n     - the triggerer's CPU, stock / trio-comms (cores)\n     - wrong replies, stock / trio-comms",
    ]
    for tasks in args.tasks:
        stock, ours = (statistics.median(rates[tasks, comms]) for comms in COMMS)
        cpu_stock, cpu_ours = (statistics.median(cpu[tasks, comms]) for comms in COMMS)
        lines.append(f"   * - {tasks}\n     - about {tasks}\n     - {stock:g}\n     - {ours:g}"
                     f"\n     - {cpu_stock:g} / {cpu_ours:g}\n     - {wrong[tasks, 'stock']} / {wrong[tasks, 'trio-comms']}")
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
