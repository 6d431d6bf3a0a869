"""``python -m tests.airflow.summary RESULTS [--rst OUT]``: the harness runs of
``make test-airflow``, stock beside trio-comms, one line each: harness A (the real
supervisor and runner, an in-memory database) and harness B (the real ``airflow
triggerer`` on SQLite, task instance states read back). With ``--rst`` the same
tables are written as reStructuredText for docs/airflow.rst to include."""

from __future__ import annotations

import argparse
import datetime
import json
import sys

COLUMNS = ("Airflow", "comms", "callers", "churn", "ok", "wrong", "out of order", "cross-loop", "errors")


def harness_a(run: dict) -> str:
    if not run["alive_at_end"]:  # no SIGTERM was sent
        return f"{run['failed_triggers']} failed triggers; runner died at {run['runner_died_at']} s, exit {run['exit_code']}"
    exit_ = "SIGKILLed after 10 s" if run["sigkilled"] else f"exit {run['exit_code']} in {run['exit_seconds']} s"
    return f"{run['failed_triggers']} failed triggers; runner alive; SIGTERM: {exit_}"


def harness_b(run: dict) -> str:
    states = run["ti_states"]
    end = "alive" if run["alive_at_end"] else f"died {run['exited_by_itself_at']} s into the churn"
    runner = f"exit {run['runner_exit_code']}"
    if run["runner_signal_sent"]:
        runner += f" on {run['runner_signal_sent']}"
    return (f"{run['failed_by_trigger']} TIs failed, {states.get('deferred', 0)} deferred, "
            f"{states.get('success', 0)} success; runner {end}, {runner}; triggerer exit {run['exit_code']}")


def row(run: dict) -> list[str]:
    outcomes = run["outcomes"]
    errors = sum(n for kind, n in outcomes.items() if kind.startswith("error"))
    end = harness_b(run) if run["harness"] == "B" else harness_a(run)
    return [run["airflow"], run["comms"], run["callers"], f"{run['churn']}/s", str(outcomes.get("ok", 0)), str(outcomes.get("wrong", 0)),
            str(outcomes.get("out-of-order", 0)), str(outcomes.get("cross-loop", 0)), str(errors), end]


def text(runs: list[dict]) -> str:
    lines = []
    for harness in ("A", "B"):
        lines.append(f"harness {harness}")
        lines.append(f"{'Airflow':8} {'comms':11} {'callers':14} {'churn':>5} {'ok':>6} {'wrong':>6} "
                     f"{'out of order':>12} {'cross-loop':>10} {'errors':>6}  end")
        for run in runs:
            if run["harness"] == harness:
                cells = row(run)
                lines.append(f"{cells[0]:8} {cells[1]:11} {cells[2]:14} {cells[3]:>5} {cells[4]:>6} {cells[5]:>6} "
                             f"{cells[6]:>12} {cells[7]:>10} {cells[8]:>6}  {cells[9]}")
    return "\n".join(lines) + "\n"


def rst(runs: list[dict]) -> str:
    day = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    seconds = {run["seconds"] for run in runs}
    parts = [f"*Written by* ``make test-airflow`` *on {day}, {', '.join(f'{s:g}' for s in sorted(seconds))} s per run, "
             "one run each, on the shared 2-core machine.*\n"]
    for harness, title in (("A", "Harness A: the real supervisor and runner, 300 triggers, churn cancelled and "
                                 "created a second"),
                           ("B", "Harness B: the real ``airflow triggerer`` on SQLite, 300 deferred task instances, "
                                 "churn marked success a second")):
        parts.append(f".. list-table:: {title}\n   :header-rows: 1\n")
        parts.append("   * - " + "\n     - ".join([*COLUMNS, "end"]))
        for run in runs:
            if run["harness"] == harness:
                parts.append("   * - " + "\n     - ".join(row(run)))
        parts.append("")
    return "\n".join(parts) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.airflow.summary")
    parser.add_argument("results")
    parser.add_argument("--rst", help="also write the tables here as reStructuredText")
    args = parser.parse_args(argv)
    with open(args.results) as results:
        runs = sorted((json.loads(line) for line in results if line.strip()),
                      key=lambda run: (run["airflow"], run["comms"], run["callers"]))
    print(text(runs), end="")
    if args.rst:
        with open(args.rst, "w") as out:
            out.write(rst(runs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
