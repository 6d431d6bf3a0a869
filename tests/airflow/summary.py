"""``python -m tests.airflow.summary RESULTS``: the harness runs of ``make test-airflow``,
stock beside trio-comms, one line each."""

from __future__ import annotations

import json
import sys


def main(path: str) -> int:
    print(f"{'Airflow':8} {'comms':11} {'callers':14} {'ok':>6} {'wrong':>6} {'out of order':>12} "
          f"{'cross-loop':>10} {'errors':>6}  runner at end, SIGTERM")
    with open(path) as results:
        for line in results:
            run = json.loads(line)
            outcomes = run["outcomes"]
            errors = sum(n for kind, n in outcomes.items() if kind.startswith("error"))
            end = "alive" if run["alive_at_end"] else f"died at {run['runner_died_at']} s"
            exit_ = "SIGKILLed after 10 s" if run["sigkilled"] else f"exit {run['exit_code']} in {run['exit_seconds']} s"
            print(f"{run['airflow']:8} {run['comms']:11} {run['callers']:14} {outcomes.get('ok', 0):>6} "
                  f"{outcomes.get('wrong', 0):>6} {outcomes.get('out-of-order', 0):>12} "
                  f"{outcomes.get('cross-loop', 0):>10} {errors:>6}  {end}, {exit_}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
