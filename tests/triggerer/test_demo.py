"""The example triggerer, run small as a real program: both runner hosts with chaos,
its store checked afterwards, /health and /metrics read with a real HTTP client
during an outage and after recovery, and no runner left behind, even after Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import trio

from examples.triggerer.kinds import FAILING_KINDS
from tests.supervisor.test_no_orphans import wait_gone

TEST_TIMEOUT = 120


class Demo:
    """The demo as a child process whose event lines the test follows."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.buffer = b""
        self.lines: list[str] = []
        self.url = ""
        self.runner_pids: set[int] = set()

    async def next_line(self) -> str:
        assert self.process.stdout is not None
        while b"\n" not in self.buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                raise EOFError("the demo's output ended")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\n", 1)
        line = raw.decode(errors="replace")
        self.lines.append(line)
        if match := re.search(r"on (http://\S+)", line):
            self.url = match.group(1)
        if match := re.search(r"RUNNING pid (\d+)", line):
            self.runner_pids.add(int(match.group(1)))
        return line

    @contextlib.contextmanager
    def deadline(self, seconds: float = TEST_TIMEOUT) -> Iterator[None]:
        """``trio.fail_after``, whose failure shows every line the demo printed: a
        hang is then told by the demo's own last words, not only by the test's."""
        try:
            with trio.fail_after(seconds):
                yield
        except trio.TooSlowError:
            raise AssertionError(f"the demo did not end within {seconds} s; it printed:\n"
                                 + "\n".join(self.lines)) from None

    async def follow(self, scope: trio.CancelScope) -> None:
        """Read every line until the demo's output ends, then cancel ``scope``."""
        try:
            while True:
                await self.next_line()
        except EOFError:
            scope.cancel()


def demo_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "examples.triggerer", *args]


ABORT_GRACE = 10


async def ensure_ended(process: trio.Process) -> None:
    """End the demo if a failed test left it running: SIGABRT first, which makes it
    print every thread's stack to stderr (shown with the failure) before it dies, so
    a hang tells where it waited, and its exit (-6) is never mistaken for one of its
    own kills; SIGKILL if it has not died within ``ABORT_GRACE`` seconds."""
    with trio.CancelScope(shield=True):
        if process.returncode is None:
            process.send_signal(signal.SIGABRT)
            with trio.move_on_after(ABORT_GRACE):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            print(f"the test ended the demo (pid {process.pid}): exit {process.returncode}")


def assert_gone(pids: set[int]) -> None:
    assert pids
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


@pytest.mark.parametrize("runner", ["trio", "asyncio"])
async def test_sixty_triggers_with_chaos_end_exactly_once_and_health_tells_the_truth(tmp_path: Path, runner: str) -> None:
    db = tmp_path / "triggers.db"
    process = await trio.lowlevel.open_process(
        demo_command("--triggers", "60", "--chaos", "--seed", "3", "--runner", runner, "--stuck-after", "1",
                     "--db", str(db), "--http", "127.0.0.1:0"),
        stdout=subprocess.PIPE,
    )
    demo = Demo(process)
    during: list[tuple[int, dict]] = []
    after: list[tuple[int, dict]] = []
    metrics_during: list[str] = []
    metrics_after: list[str] = []
    try:
        with demo.deadline():
            async with httpx.AsyncClient(timeout=10) as client:
                outage_incarnation = None
                while True:
                    try:
                        line = await demo.next_line()
                    except EOFError:
                        break
                    if match := re.search(r"health: 503 \(.*\), runner incarnation (\d+)", line):
                        outage_incarnation = int(match.group(1))
                        response = await client.get(demo.url + "/health")
                        body = response.json()
                        # Either still down (503, saying why), or already back on a newer one.
                        if response.status_code == 503:
                            during.append((response.status_code, body))
                            metrics_during.append((await client.get(demo.url + "/metrics")).text)
                        else:
                            assert body["runner"]["incarnation"] > outage_incarnation
                    elif "health: 200 again" in line and outage_incarnation is not None:
                        response = await client.get(demo.url + "/health")
                        after.append((response.status_code, response.json()))
                        if response.status_code == 200:
                            metrics_after.append((await client.get(demo.url + "/metrics")).text)
            code = await process.wait()
    finally:
        await ensure_ended(process)
    output = "\n".join(demo.lines)
    assert code == 0, output
    assert "OK: every trigger has exactly one outcome" in output
    # /health during an outage: 503 and why; after recovery: 200 and healthy.
    assert during, output
    for status, body in during:
        assert status == 503 and body["status"] == "unhealthy"
        assert body["reason"] in (
            "heartbeat stale", "stuck", "stopping", "dead, backing off", "starting", "stopped by a signal",
            "closed its channel",
        ) or (
            body["reason"].startswith("loop blocked by trigger ")
        )
        assert set(body["triggers"]) == {"queued", "running", "succeeded", "failed"}
    assert any("triggerer_runner_up 0.0" in text for text in metrics_during)
    # The runner channel's numbers are the current incarnation's, or none while it is
    # dead: never the dead one's.
    assert all("# HELP triggerer_runner_channel" in text for text in metrics_during)
    assert any('triggerer_runner_channel{field="requests_sent"}' not in text for text in metrics_during)
    assert metrics_after and all('triggerer_runner_channel{field="requests_sent"}' in t for t in metrics_after)
    assert all("triggerer_runner_restarts_total" in text for text in metrics_during)
    assert after and any(status == 200 and body["runner"]["state"] == "RUNNING" for status, body in after)
    # The store, read afterwards: every trigger terminal, exactly once, as its kind expects.
    with sqlite3.connect(db) as connection:
        rows = connection.execute("SELECT id, kind, state, outcomes, error, attempts FROM triggers").fetchall()
    assert len(rows) == 60
    for trigger_id, kind, state, outcomes, error, _attempts in rows:
        assert outcomes == 1, (trigger_id, kind)
        assert state == ("failed" if kind in FAILING_KINDS else "succeeded"), (trigger_id, kind, state, error)
    poison = [row for row in rows if row[1] == "poison"]
    assert poison and all(row[4] == "blocked the runner" for row in poison)
    assert max(row[5] for row in rows) >= 2  # chaos made some triggers run again
    assert re.search(r"chaos: SIGKILL", output) and re.search(r"chaos: SIGSTOP", output)
    # Each outage is told with the incarnation that had it and how *that* one ended:
    # the SIGKILLed one exited by SIGKILL; the SIGSTOPped one was stuck, then SIGKILLed.
    causes = dict(re.findall(r"outage at +[\d.]+ s: incarnation (\d+) ([^,]+),", output))
    killed = re.search(r"chaos: SIGKILL runner pid \d+ \(incarnation (\d+)\)", output)
    stopped = re.search(r"chaos: SIGSTOP runner pid \d+ \(incarnation (\d+)\)", output)
    assert killed and stopped
    assert causes.get(killed.group(1)) == "exited (exit -9)", (causes, output)
    assert causes.get(stopped.group(1)) in ("stuck (exit -9)", "stopped by a signal"), (causes, output)
    assert_gone(demo.runner_pids)


async def test_ctrl_c_leaves_no_runner_behind(tmp_path: Path) -> None:
    process = await trio.lowlevel.open_process(
        demo_command("--triggers", "1000", "--db", str(tmp_path / "t.db")), stdout=subprocess.PIPE
    )
    demo = Demo(process)
    try:
        with demo.deadline():
            while not demo.runner_pids:
                await demo.next_line()
            process.send_signal(signal.SIGINT)
            code = await process.wait()
    finally:
        await ensure_ended(process)
    assert code == 128 + signal.SIGINT  # interrupted, not a clean run
    assert_gone(demo.runner_pids)


async def test_sigabrt_prints_every_threads_stack_and_leaves_no_runner(tmp_path: Path) -> None:
    """What ``ensure_ended`` relies on to tell where a hung demo waited."""
    process = await trio.lowlevel.open_process(
        demo_command("--triggers", "1000", "--db", str(tmp_path / "t.db")), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    demo = Demo(process)
    stderr = b""
    try:
        with demo.deadline():
            while not demo.runner_pids:
                await demo.next_line()
            process.send_signal(signal.SIGABRT)
            assert process.stderr is not None
            while chunk := await process.stderr.receive_some(65536):
                stderr += chunk
            code = await process.wait()
    finally:
        await ensure_ended(process)
    assert code == -signal.SIGABRT
    text = stderr.decode(errors="replace")
    assert "Fatal Python error: Aborted" in text, text
    assert text.count("(most recent call first)") >= 2, text  # the loop's thread and the forker's
    assert "trio/_core/_run.py" in text, text
    for pid in demo.runner_pids:  # killed by the kernel as the job died (PR_SET_PDEATHSIG)
        await wait_gone(pid)



async def test_under_overload_ready_says_503_while_live_stays_200_and_nothing_restarts(tmp_path: Path) -> None:
    """2,000 triggers at once on one runner: admission control holds work back, so
    /health/ready is 503 ("overloaded") at times while /health/live never is."""
    process = await trio.lowlevel.open_process(
        demo_command("--triggers", "2000", "--capacity", "2000", "--db", str(tmp_path / "t.db")),
        stdout=subprocess.PIPE,
    )
    demo = Demo(process)
    live: list[int] = []
    live_reasons: list[str] = []
    ready: list[tuple[int, str]] = []
    try:
        with demo.deadline():
            while not demo.runner_pids:  # sample from the runner's first heartbeat on
                await demo.next_line()
            async with httpx.AsyncClient(timeout=10) as client, trio.open_nursery() as nursery:

                async def sample() -> None:
                    try:
                        while True:  # observe, every 50 ms, until the demo stops serving
                            response = await client.get(demo.url + "/health/live")
                            live.append(response.status_code)
                            if response.status_code != 200:
                                live_reasons.append(response.json()["reason"])
                            response = await client.get(demo.url + "/health/ready")
                            ready.append((response.status_code, response.json()["reason"]))
                            await trio.sleep(0.05)
                    except (httpx.ConnectError, httpx.RemoteProtocolError):
                        pass  # the run is over: the server is gone, or going mid-request

                nursery.start_soon(sample)
                nursery.start_soon(demo.follow, nursery.cancel_scope)
            code = await process.wait()
    finally:
        await ensure_ended(process)
    output = "\n".join(demo.lines)
    assert code == 0, output
    assert "runner restarts: 0" in output
    # Never 503 while it runs: only once the job, done, stops its runner at the end.
    assert live and live.count(200) > 10 and set(live_reasons) <= {"stopping", "stopped"}, live_reasons
    assert (503, "overloaded") in ready and (200, "ready") in ready
