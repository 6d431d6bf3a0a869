"""The kill paths, many times over, in a real supervisor process: a worker (with a
child of its own) SIGKILLed, SIGSTOPped until stuck, SIGTERMed, stopped and killed at
once, and SIGKILLed or SIGSTOPped as soon as it is spawned: 30 incarnations in all. Only the worker's own group is ever
signalled: the supervisor process and a sentinel in its group live through every
round, and no worker or worker's child is left (issue 24, item 13)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.supervisor.test_no_orphans import alive

ROUNDS = 30
EXPECTED = {  # how each action ends an incarnation
    "SIGKILL": {"exited (-9)"},
    "SIGSTOP": {"stuck (-9)", "stopped by a signal (-9)"},
    "SIGTERM": {"exited (-15)"},
    "SIGSTOP+SIGKILL": {"exited (-9)", "stuck (-9)", "stopped by a signal (-9)"},
    "SIGKILL at start": {"exited (-9)"},
    "SIGSTOP at start": {"no first heartbeat (-9)", "stopped by a signal (-9)"},
}


def test_thirty_kills_signal_only_the_worker_s_group_and_leave_nothing() -> None:
    # Its own session: were a kill path to hit the supervisor's group, it would end the
    # supervisor and its sentinel, never this test.
    done = subprocess.run(
        [sys.executable, "-m", "tests.supervisor.kill_paths_main", str(ROUNDS)],
        capture_output=True, text=True, timeout=150, start_new_session=True,
    )
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr[-2000:])
    lines = done.stdout.splitlines()
    assert lines[-1] == f"survived {ROUNDS} rounds", lines
    pids: list[int] = []
    for number, line in enumerate(lines[:-1], start=1):
        match = re.fullmatch(r"incarnation (\d+) pid (\d+) child (\d+|-) ended (.+) after (\S+(?: at start)?)", line)
        assert match, line
        assert int(match.group(1)) == number
        assert match.group(4) in EXPECTED[match.group(5)], line
        pids += [int(match.group(2))] + ([int(match.group(3))] if match.group(3) != "-" else [])
    assert len(lines) == ROUNDS + 1
    assert [pid for pid in pids if alive(pid)] == []
