"""make bench keeps working: every candidate and extra runs briefly and gets only its own replies.

These check that the benchmarks run and that every reply is its caller's own; they
assert nothing about speed (that lives in make bench, as ratios, never in tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.trial import CANDIDATES

ROOT = Path(__file__).resolve().parent.parent


def run(module: str, *args: object) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("candidate", list(CANDIDATES))
def test_every_candidate_runs_and_gets_its_own_replies(candidate: str) -> None:
    result = run("benchmarks.trial", candidate, 3, 0.1)
    assert result["wrong"] == 0
    assert result["rps"] > 0


def test_extras_run() -> None:
    assert run("benchmarks.extras", "responder-concurrent", 0.2)["wrong"] == 0
    assert run("benchmarks.extras", "scale", 50, 0.2)["wrong"] == 0
    memory = run("benchmarks.extras", "memory", 500)
    assert memory["in_flight"] == 500 and memory["channel_bytes_per_pending"] > 0
