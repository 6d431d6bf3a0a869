"""The supervisor on real worker processes (tests/supervisor/worker.py).

Rules: every test runs real processes over real socketpairs, with small timings so
each takes a second or two; every pid a test saw is checked afterwards to be gone
(reaped, not a zombie). Waits are on the supervisor's observable status or on a
process's pidfd, never on sleeps.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio

import actors
from tests.supervisor.messages import CODEC, Ack, Heartbeat, Welcome, Work

TEST_TIMEOUT = 30


def worker(mode: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "tests.supervisor.worker", mode, *extra]


class Recorder:
    """The supervisor's handler, recording what it handled and for whom."""

    def __init__(self) -> None:
        self.work: list[tuple[int | None, actors.WorkerState]] = []
        self.supervisor: actors.Supervisor | None = None

    async def __call__(self, message: Any) -> Any:
        incarnation = actors.current_request().incarnation
        if isinstance(message, Work):
            assert self.supervisor is not None
            self.work.append((incarnation, self.supervisor.status.value.state))
            return Ack(incarnation=incarnation)
        return None


def assert_gone(pids: set[int]) -> None:
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)  # reaped: not even a zombie


async def watch(supervisor: actors.Supervisor, seen: list[actors.SupervisorStatus]) -> None:
    """Until cancelled; then ``seen`` holds every status the supervisor published, in order
    (a watcher of ``status`` itself may see quick changes coalesced)."""
    try:
        await trio.sleep_forever()
    finally:
        seen[:] = supervisor.history()


@pytest.fixture
async def statuses() -> AsyncIterator[list[actors.SupervisorStatus]]:
    seen: list[actors.SupervisorStatus] = []
    yield seen
    assert_gone({s.pid for s in seen if s.pid is not None})


def state_is(state: actors.WorkerState, incarnation: int | None = None):  # type: ignore[no-untyped-def]
    return lambda s: s.state is state and (incarnation is None or s.incarnation == incarnation)


FAST = {"backoff_initial": 0.05, "backoff_max": 0.2, "stop_timeout": 2.0, "start_timeout": 5.0}


async def test_spawns_on_fd_0_sends_hello_and_runs_on_heartbeats(statuses) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder()
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker("deadlock"), CODEC, recorder, heartbeat=Heartbeat, hello=Welcome(greeting="StartTriggerer"),
            stuck_after=1000, **FAST,
        ) as supervisor:
            recorder.supervisor = supervisor
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, supervisor, statuses)
                await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING))
                assert supervisor.healthy()
                status = supervisor.status.value
                assert (status.incarnation, status.restarts, status.last_exit) == (1, 0, None)
                os.kill(status.pid, 0)  # alive
                # Its side task's requests are served, and the handler knows who asked.
                while len(recorder.work) < 5:
                    await supervisor.status.wait_transition()  # each heartbeat republishes
                assert {incarnation for incarnation, _ in recorder.work} == {1}
                nursery.cancel_scope.cancel()
    assert supervisor.status.value.state is actors.WorkerState.STOPPED


async def test_the_worker_can_take_its_socket_on_another_fd(statuses) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker("healthy", "--fd", "7"), CODEC, Recorder(), heartbeat=Heartbeat, fd=7, **FAST
        ) as supervisor, trio.open_nursery() as nursery:
            nursery.start_soon(watch, supervisor, statuses)
            await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING))
            nursery.cancel_scope.cancel()


@pytest.mark.parametrize(
    ("mode", "exit_code"),
    [
        ("block", -signal.SIGTERM),  # sync code blocks its loop; SIGTERM works
        ("deadlock", -signal.SIGTERM),  # main loop deadlocked while side tasks stay busy
        ("sigstop", -signal.SIGKILL),  # stopped: SIGKILL at once, not after stop_timeout
        ("ignore-term", -signal.SIGKILL),  # ignores SIGTERM: SIGKILL after stop_timeout
    ],
)
async def test_a_stuck_worker_is_detected_stopped_and_restarted(statuses, mode: str, exit_code: int) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder()
    stuck_after = 0.5
    options = {**FAST, "stop_timeout": 10.0 if mode == "sigstop" else 0.5}
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker(mode), CODEC, recorder, heartbeat=Heartbeat, stuck_after=stuck_after, **options
        ) as supervisor:
            recorder.supervisor = supervisor
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, supervisor, statuses)
                await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING, 1))
                await supervisor.status.wait_value(state_is(actors.WorkerState.STUCK, 1))
                stuck = supervisor.status.value
                assert not supervisor.healthy()
                assert stuck.heartbeat_age is not None and stuck_after <= stuck.heartbeat_age < stuck_after + 1
                await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING, 2))
                restarted = supervisor.status.value
                assert (restarted.restarts, restarted.last_exit, restarted.last_exit_reason) == (1, exit_code, "stuck")
                stopping = next(s for s in supervisor.history() if s.state is actors.WorkerState.STOPPING)
                backing_off = next(s for s in supervisor.history() if s.state is actors.WorkerState.BACKING_OFF)
                if mode == "sigstop":
                    assert backing_off.since - stopping.since < 1.0  # never waited out stop_timeout
                if mode == "ignore-term":
                    assert backing_off.since - stopping.since >= 0.5
                nursery.cancel_scope.cancel()
    if mode == "deadlock":
        # Busy side tasks never counted, and nothing of the dead incarnation was
        # handled once its death was declared.
        assert any(incarnation == 1 for incarnation, _ in recorder.work)
        assert all(state is actors.WorkerState.RUNNING for _, state in recorder.work)


async def test_a_worker_gets_start_timeout_for_its_first_heartbeat(statuses) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder()
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker("silent"), CODEC, recorder, heartbeat=Heartbeat, **{**FAST, "start_timeout": 1.0}
        ) as supervisor:
            recorder.supervisor = supervisor
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, supervisor, statuses)
                await supervisor.status.wait_value(state_is(actors.WorkerState.STUCK, 1))
                stuck = supervisor.status.value
                spawned = next(s for s in supervisor.history() if s.pid is not None)
                assert stuck.since - spawned.since == pytest.approx(1.0, abs=0.5)  # spawn -> stuck
                await supervisor.status.wait_value(lambda s: s.incarnation == 2)
                assert supervisor.status.value.last_exit_reason == "no first heartbeat"
                nursery.cancel_scope.cancel()
    assert recorder.work  # it was served all along; serving is not liveness
    assert all(state is actors.WorkerState.STARTING for _, state in recorder.work)


@pytest.mark.parametrize(("mode", "reason", "exit_code"), [("exit", "exited", 3), ("garbage", "protocol error", None)])
async def test_a_dead_or_garbling_worker_is_restarted(statuses, mode: str, reason: str, exit_code: int | None) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(worker(mode), CODEC, Recorder(), heartbeat=Heartbeat, **FAST) as supervisor:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, supervisor, statuses)
                await supervisor.status.wait_value(lambda s: s.incarnation == 2)
                status = supervisor.status.value
                assert status.last_exit_reason == reason
                if exit_code is not None:
                    assert status.last_exit == exit_code
                else:
                    assert status.last_exit == -signal.SIGTERM  # stopped after its garbage
                nursery.cancel_scope.cancel()


async def test_status_is_truthful_in_order_and_healthy_only_after_a_new_heartbeat(statuses) -> None:  # type: ignore[no-untyped-def]
    checks: list[tuple[actors.WorkerState, bool]] = []
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(worker("exit"), CODEC, Recorder(), heartbeat=Heartbeat, **FAST) as supervisor:

            async def check_health() -> None:
                async for _ in supervisor.status.transitions():
                    # Read both in the same tick: a consistent pair, whatever was coalesced.
                    checks.append((supervisor.status.value.state, supervisor.healthy()))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, supervisor, statuses)
                nursery.start_soon(check_health)
                await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING, 3))
                nursery.cancel_scope.cancel()
    states = [s.state for s in statuses]
    W = actors.WorkerState
    # Each incarnation: STARTING -> RUNNING -> (exit) BACKING_OFF, nothing skipped.
    first_cycle = [W.STARTING, W.RUNNING, W.BACKING_OFF, W.STARTING, W.RUNNING, W.BACKING_OFF, W.STARTING, W.RUNNING]
    deduplicated = [state for i, state in enumerate(states) if i == 0 or states[i - 1] is not state]
    assert deduplicated[: len(first_cycle)] == first_cycle
    assert all(healthy is (state is W.RUNNING) for state, healthy in checks)
    spawned = [s.incarnation for s in statuses if s.state is W.STARTING and s.pid is not None]
    assert spawned[:3] == [1, 2, 3]


async def test_too_many_restarts_fail_loudly(statuses) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(TEST_TIMEOUT), pytest.raises(actors.RestartIntensityExceeded) as info:
        async with actors.open_supervisor(
            worker("exit"), CODEC, Recorder(), heartbeat=Heartbeat, max_restarts=2, restart_window=60, **FAST
        ) as supervisor, trio.open_nursery() as nursery:
            nursery.start_soon(watch, supervisor, statuses)
            with pytest.raises(actors.RestartIntensityExceeded):
                await supervisor.wait_failed()
            await trio.sleep_forever()  # the failure cancels the block
    assert supervisor.status.value.state is actors.WorkerState.FAILED
    assert [e.incarnation for e in info.value.exits] == [1, 2, 3]
    assert {(e.reason, e.exit_code) for e in info.value.exits} == {("exited", 3)}
    assert "more than 2 times within 60 s" in str(info.value)


async def test_leaving_by_cancellation_stops_the_worker(statuses) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(TEST_TIMEOUT), trio.CancelScope() as scope:
        async with actors.open_supervisor(worker("ignore-term"), CODEC, Recorder(), heartbeat=Heartbeat, stuck_after=100, **{**FAST, "stop_timeout": 0.3}) as supervisor:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(watch, supervisor, statuses)
                await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING))
                scope.cancel()
    assert scope.cancelled_caught
    assert supervisor.status.value.state is actors.WorkerState.STOPPED


def test_keyboard_interrupt_stops_the_worker() -> None:
    """A supervisor process interrupted by Ctrl-C (SIGINT) leaves no worker behind."""
    import select

    child = subprocess.Popen(
        [sys.executable, "-m", "tests.supervisor.supervisor_main"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        worker_pid = int(child.stdout.readline())
        pidfd = os.pidfd_open(worker_pid)
        child.send_signal(signal.SIGINT)
        assert child.wait(timeout=TEST_TIMEOUT) != 0  # KeyboardInterrupt propagated
        assert select.select([pidfd], [], [], 5)[0] == [pidfd]  # the worker is gone
        os.close(pidfd)
    finally:
        child.kill()  # only if the test failed before it ended
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


async def read_worker_pid(supervisor_process: trio.Process) -> int:
    """The worker pid tests/supervisor/supervisor_main.py prints once its worker runs."""
    assert supervisor_process.stdout is not None
    line = b""
    with trio.fail_after(TEST_TIMEOUT):
        while not line.endswith(b"\n"):
            line += await supervisor_process.stdout.receive_some(64)
    return int(line)


async def test_a_worker_whose_supervisor_was_sigkilled_exits_within_a_second() -> None:
    child = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.supervisor.supervisor_main"], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    worker_pid: int | None = None
    exited = False
    try:
        worker_pid = await read_worker_pid(child)
        pidfd = os.pidfd_open(worker_pid)
        try:
            child.kill()
            await child.wait()
            killed_at = trio.current_time()
            with trio.fail_after(1.0):  # the worker sees EOF and its main loop ends
                await trio.lowlevel.wait_readable(pidfd)  # readable: it has terminated
            exited = True
            assert trio.current_time() - killed_at < 1.0
        finally:
            os.close(pidfd)
    finally:
        await child.stdout.aclose()
        with trio.CancelScope(shield=True):
            if child.returncode is None:  # only if the test failed before the kill
                child.kill()
                await child.wait()
        if worker_pid is not None and not exited:
            # The orphan was reparented, so only a signal can reach it now. (An exited
            # one may stay a zombie until its new parent reaps it: it is not alive.)
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker_pid, signal.SIGKILL)
