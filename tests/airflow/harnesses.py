"""What the harness tests share: this venv's Airflow release, and one harness run
whose summary is also appended to ``HARNESS_RESULTS`` (``make test-airflow``'s table)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import airflow

STOCK_3_1 = airflow.__version__.startswith("3.1.")
SECONDS = "20"


def run(module: str, comms: str, callers: str, *, timeout: float, churn: int = 5) -> dict:
    """Run ``python -m tests.airflow.<module>`` for ``SECONDS`` with ``churn``
    cancellations a second and return its summary."""
    result = subprocess.run(
        [sys.executable, "-m", f"tests.airflow.{module}", "--comms", comms, "--callers", callers,
         "--seconds", SECONDS, "--churn", str(churn)],
        capture_output=True, text=True, timeout=timeout, check=True,
    )
    summary: dict = json.loads(result.stdout.strip().splitlines()[-1])
    if path := os.environ.get("HARNESS_RESULTS"):
        with open(path, "a") as results:
            results.write(json.dumps(summary) + "\n")
    return summary
