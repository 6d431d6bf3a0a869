"""The triggerer owns its store: resumed after a SIGKILL, never confused with another
file, stopped cleanly by SIGTERM and Ctrl-C. Real job and runner processes."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest
import trio

from examples.triggerer.kinds import FAILING_KINDS
from tests.triggerer.test_demo import TEST_TIMEOUT, Demo, assert_gone, demo_command, ensure_ended


async def run_to_end(*args: str) -> tuple[int, Demo]:
    """Run the demo with ``args`` until it exits: its exit code and what it printed."""
    demo = await start_demo(*args)
    try:
        with trio.fail_after(TEST_TIMEOUT):
            return await finish(demo), demo
    finally:
        await ensure_ended(demo.process)


async def start_demo(*args: str) -> Demo:
    process = await trio.lowlevel.open_process(demo_command(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return Demo(process)


async def run_until(demo: Demo, text: str) -> None:
    while text not in await demo.next_line():
        pass


async def finish(demo: Demo) -> int:
    try:
        while True:
            await demo.next_line()
    except EOFError:
        pass
    return await demo.process.wait()


async def test_a_sigkilled_job_is_resumed_on_its_store_without_new_triggers(tmp_path: Path) -> None:
    db = str(tmp_path / "triggers.db")
    first = await start_demo("--triggers", "60", "--db", db)
    try:
        with trio.fail_after(TEST_TIMEOUT):
            await run_until(first, "progress:")  # triggers are running on its runner
            first.process.kill()
            await first.process.wait()
    finally:
        await ensure_ended(first.process)
    with sqlite3.connect(db) as connection:
        left_running = connection.execute("SELECT COUNT(*) FROM triggers WHERE state = 'running'").fetchone()[0]
    assert left_running > 0  # the dead job's, which the next must not take for its own
    code, second = await run_to_end("--triggers", "60", "--db", db)
    output = "\n".join(second.lines)
    assert code == 0, output
    assert "resuming" in output
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT kind, state, outcomes FROM triggers").fetchall()
        jobs = connection.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    assert len(rows) == 60 and jobs == 2
    for kind, state, outcomes in rows:
        assert outcomes == 1
        assert state == ("failed" if kind in FAILING_KINDS else "succeeded")
    assert_gone(first.runner_pids | second.runner_pids)  # the first's runner died with it


async def test_add_adds_to_an_existing_store(tmp_path: Path) -> None:
    db = str(tmp_path / "triggers.db")
    for extra in ((), ("--add",)):
        code, demo = await run_to_end("--triggers", "8", "--db", db, *extra)
        assert code == 0, "\n".join(demo.lines)
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT COUNT(*) FROM triggers").fetchone()[0] == 16


@pytest.mark.parametrize("content", ["text", "another application"])
def test_a_file_that_is_not_our_store_is_refused_untouched(tmp_path: Path, content: str) -> None:
    path = tmp_path / "theirs.db"
    if content == "text":
        path.write_text("not a database\n")
    else:
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE TABLE accounts (id INTEGER)")
    before = path.read_bytes()
    result = subprocess.run(demo_command("--db", str(path)), capture_output=True, text=True, timeout=TEST_TIMEOUT)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: ") and "refusing" in line
    assert path.read_bytes() == before


def test_a_db_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        demo_command("--db", str(tmp_path / "missing" / "t.db")), capture_output=True, text=True, timeout=TEST_TIMEOUT
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: the store ") and "cannot be opened" in line, line


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_sigterm_and_ctrl_c_stop_the_runner_and_exit_cleanly(tmp_path: Path, signum: int) -> None:
    db = str(tmp_path / "t.db")
    demo = await start_demo("--triggers", "1000", "--db", db)
    try:
        with trio.fail_after(TEST_TIMEOUT):
            while not demo.runner_pids:
                await demo.next_line()
            demo.process.send_signal(signum)
            code = await finish(demo)
    finally:
        await ensure_ended(demo.process)
    output = "\n".join(demo.lines)
    assert code == 128 + signum, output
    assert "Traceback" not in output
    assert f"stopped by {signal.Signals(signum).name}" in output
    assert_gone(demo.runner_pids)


async def test_a_job_that_gives_up_on_its_runner_says_so_and_exits_1(tmp_path: Path) -> None:
    # Once: the intensity error vanished inside the job's nurseries ("0 outcomes", exit 0 paths).
    code, demo = await run_to_end("--triggers", "20", "--chaos", "--max-restarts", "0", "--stuck-after", "1",
                                  "--db", str(tmp_path / "t.db"))
    output = "\n".join(demo.lines)
    assert code == 1, output
    assert "the job gave up on its runner: worker restarted more than 0 times" in " ".join(output.split())
    assert "Traceback" not in output
    assert_gone(demo.runner_pids)


async def test_a_run_leaves_no_temporary_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Once, every job made a temporary folder, used or not: a SIGKILLed job with --db
    # left an empty triggerer-* folder behind.
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    code, demo = await run_to_end("--triggers", "8")  # its store in a temporary folder
    assert code == 0, "\n".join(demo.lines)
    assert list(temp.iterdir()) == []
    killed = await start_demo("--triggers", "60", "--db", str(tmp_path / "t.db"))
    try:
        with trio.fail_after(TEST_TIMEOUT):
            await run_until(killed, "progress:")
            killed.process.kill()
            await killed.process.wait()
    finally:
        await ensure_ended(killed.process)
    assert list(temp.iterdir()) == []
    assert_gone(demo.runner_pids)  # (the killed job's runner: see the resume test above)
