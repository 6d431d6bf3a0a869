"""The examples run as a user would run them, and say what the README says they say."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_quickstart_runs_every_caller_kind_and_every_error() -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")], capture_output=True, text=True, timeout=60, check=True
    )
    out = result.stdout
    assert "hello from the responder:   StartTriggerer(version='1.0')" in out
    assert "trio task:                  region=eu-west-1" in out
    assert "worker thread (send):       owner=data-platform" in out
    assert "['region=eu-west-1', 'owner=data-platform']" in out
    assert "RemoteError code=VARIABLE_NOT_FOUND detail={'key': 'missing'}" in out
    assert "RequestTimeout: no reply to Sleep (frame 6) within 0.2 s" in out
    assert "LoopThreadError" in out
    assert "responder exited with code 0" in out
