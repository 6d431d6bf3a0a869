"""The store's failure is the job's: a damaged page, a lock another process holds at
the start or takes mid-run, and a disk that fills up mid-run each end the job with
exit code 2 and one line on stderr (no traceback), its runner stopped and never
restarted for it. A lock held for less than the store's lock timeout is waited out:
the runner is not restarted (its sync was slow, not stuck), and the run ends well.
Real job and runner processes; the full disk is a real tmpfs in a mount namespace
of the job's own."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
from pathlib import Path

import trio

from examples.triggerer.store import LOCK_TIMEOUT, Store
from tests.triggerer.test_demo import TEST_TIMEOUT, Demo, assert_gone, demo_command, ensure_ended


async def make_store(path: Path, triggers: int) -> None:
    store = Store(str(path))
    try:
        await store.start_job()
        await store.add(["timer"] * triggers)
    finally:
        store.close()
    with sqlite3.connect(path) as db:  # everything into the file itself, none left in the WAL
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


async def start(command: list[str], stderr: Path) -> Demo:
    with stderr.open("wb") as errors:
        process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=errors)
    return Demo(process)


async def to_the_end(demo: Demo) -> int:
    try:
        while True:
            await demo.next_line()
    except EOFError:
        pass
    return await demo.process.wait()


async def until_running(demo: Demo) -> None:
    while not demo.runner_pids:
        await demo.next_line()


def assert_failed_once(code: int, demo: Demo, stderr: Path, meaning: str) -> None:
    """Exit 2, one line on stderr saying ``meaning``, and no runner restarted."""
    output = "\n".join(demo.lines)
    lines = stderr.read_text().splitlines()
    assert code == 2, (code, lines, output)
    assert len(lines) == 1 and lines[0].startswith("error: the store ") and meaning in lines[0], lines
    assert "runner incarnation 2" not in output, output
    if demo.runner_pids:
        assert_gone(demo.runner_pids)


async def test_a_damaged_page_is_one_line_and_no_runner(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    await make_store(db, 3000)
    with db.open("r+b") as file:  # page 1 (the header and schema) stays; the rest is garbage
        size = file.seek(0, os.SEEK_END)
        file.seek(4096)
        file.write(b"\xa5" * (size - 4096))
    demo = await start(demo_command("--db", str(db)), tmp_path / "stderr")
    try:
        with trio.fail_after(TEST_TIMEOUT):
            code = await to_the_end(demo)
    finally:
        await ensure_ended(demo.process)
    assert_failed_once(code, demo, tmp_path / "stderr", "is damaged")


async def test_a_lock_held_at_the_start_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    await make_store(db, 10)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write lock, held throughout
    try:
        demo = await start(demo_command("--db", str(db)), tmp_path / "stderr")
        try:
            with trio.fail_after(TEST_TIMEOUT):
                code = await to_the_end(demo)
        finally:
            await ensure_ended(demo.process)
    finally:
        holder.close()
    assert_failed_once(code, demo, tmp_path / "stderr", "is locked by another process")


async def test_a_lock_held_mid_run_past_the_timeout_ends_the_job_not_the_runner(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    demo = await start(demo_command("--triggers", "3000", "--db", str(db)), tmp_path / "stderr")
    holder = sqlite3.connect(db, isolation_level=None, timeout=TEST_TIMEOUT)
    try:
        with trio.fail_after(TEST_TIMEOUT):
            await until_running(demo)
            holder.execute("BEGIN IMMEDIATE")  # and held until the job has ended
            code = await to_the_end(demo)
    finally:
        holder.close()
        await ensure_ended(demo.process)
    assert_failed_once(code, demo, tmp_path / "stderr", "is locked by another process")


async def test_a_lock_held_mid_run_under_the_timeout_is_waited_out_without_a_restart(tmp_path: Path) -> None:
    """Held 3 s: over the runner's stuck_after (2 s), under the store's LOCK_TIMEOUT.
    The runner's sync waits for the store meanwhile; it is not stuck, nor restarted."""
    held = 3.0
    assert 2.0 < held < LOCK_TIMEOUT
    db = tmp_path / "t.db"
    demo = await start(demo_command("--triggers", "3000", "--db", str(db)), tmp_path / "stderr")
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        with trio.fail_after(TEST_TIMEOUT):
            await until_running(demo)
            holder.execute("BEGIN IMMEDIATE")
            await trio.sleep(held)  # not synchronisation: how long the other process holds its lock
            holder.execute("ROLLBACK")
            code = await to_the_end(demo)
    finally:
        holder.close()
        await ensure_ended(demo.process)
    output = "\n".join(demo.lines)
    assert code == 0, (output, (tmp_path / "stderr").read_text())
    assert "runner restarts: 0" in output and "OK: every trigger has exactly one outcome" in output, output


async def test_a_full_disk_mid_run_ends_the_job_not_the_runner(tmp_path: Path) -> None:
    """The store on a 16 MiB tmpfs of the job's own (a mount namespace: only the job
    and its runner see it); once the runner runs, the test fills what is left."""
    mount = tmp_path / "disk"
    mount.mkdir()
    db = mount / "t.db"
    command = ["unshare", "--mount", "sh", "-c",
               f'mount -t tmpfs -o size=16m tmpfs "{mount}" && exec "$@"', "sh",
               *demo_command("--triggers", "3000", "--db", str(db))]
    demo = await start(command, tmp_path / "stderr")
    try:
        with trio.fail_after(TEST_TIMEOUT):
            await until_running(demo)
            # The job's own view of the folder: its tmpfs, not ours.
            inside = Path(f"/proc/{demo.process.pid}/root") / str(mount).lstrip("/")
            assert os.statvfs(inside).f_blocks * os.statvfs(inside).f_frsize <= 16 << 20
            with (inside / "filler").open("wb") as filler:
                try:
                    while True:
                        filler.write(b"\0" * 65536)
                        filler.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
            code = await to_the_end(demo)
    finally:
        await ensure_ended(demo.process)
    assert_failed_once(code, demo, tmp_path / "stderr", "the disk is full")
