"""``trio-comms-airflow triggerer [ARGS]``: the ``airflow`` command with trio-comms
driving the triggerer runner's comms.

Installs the integration, then runs Airflow's own CLI with the same arguments.
An Airflow it does not support is refused with one line on stderr and exit 2,
before Airflow starts.
"""

from __future__ import annotations

import sys

from ._support import UnsupportedAirflow


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from ._install import install

    try:
        version = install()
    except UnsupportedAirflow as exc:
        print(f"trio-comms-airflow: {exc}", file=sys.stderr)
        return 2
    print(f"trio-comms-airflow: trio-comms drives the triggerer runner's comms (Airflow {version})", file=sys.stderr)
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *args]
    result = airflow_main()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
