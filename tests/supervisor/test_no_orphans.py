"""Nothing outlives its parent: workers, their own children, and copies of the socket.

Real processes throughout; every pid is checked afterwards to be gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys

import pytest
import trio

import actors
from tests.supervisor.messages import CODEC, Heartbeat, Work
from tests.supervisor.test_supervisor import (
    FAST,
    TEST_TIMEOUT,
    Recorder,
    assert_gone,
    read_worker_pid,
    state_is,
    watch,
    worker,
)
from tests.supervisor.test_supervisor import statuses as statuses  # the fixture


class ChildRecorder(Recorder):
    """Records the pid each worker reports of its own child (Work(n=pid))."""

    def __init__(self) -> None:
        super().__init__()
        self.children: list[int] = []

    async def __call__(self, message: object) -> object:
        if isinstance(message, Work) and message.n > 0:
            self.children.append(message.n)
        return await super().__call__(message)


def alive(pid: int) -> bool:
    """Running, not a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def wait_gone(pid: int, within: float = 2.0) -> None:
    """Until ``pid`` has terminated (its pidfd is readable; it need not be our child)."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        with trio.fail_after(within):
            await trio.lowlevel.wait_readable(pidfd)
    finally:
        os.close(pidfd)


@pytest.mark.parametrize(("mode", "reason"), [("child-exit", "exited"), ("child-block", "stuck")])
async def test_a_workers_own_child_dies_with_it(statuses, mode: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    recorder = ChildRecorder()
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker(mode), CODEC, recorder, heartbeat=Heartbeat, stuck_after=0.5, **{**FAST, "stop_timeout": 0.5}
        ) as supervisor, trio.open_nursery() as nursery:
            recorder.supervisor = supervisor
            nursery.start_soon(watch, supervisor, statuses)
            await supervisor.status.wait_value(lambda s: s.incarnation == 2)
            assert supervisor.status.value.last_exit_reason == reason
            await wait_gone(recorder.children[0])
            await supervisor.status.wait_value(lambda s: len(recorder.children) == 2)
            nursery.cancel_scope.cancel()
    # Leaving the block took the second incarnation's child too.
    await wait_gone(recorder.children[1])


async def test_own_process_group_false_lets_the_child_outlive_the_worker(statuses) -> None:  # type: ignore[no-untyped-def]
    recorder = ChildRecorder()
    try:
        with trio.fail_after(TEST_TIMEOUT):
            async with actors.open_supervisor(
                worker("child-exit"), CODEC, recorder, heartbeat=Heartbeat, own_process_group=False, **FAST
            ) as supervisor, trio.open_nursery() as nursery:
                recorder.supervisor = supervisor
                nursery.start_soon(watch, supervisor, statuses)
                await supervisor.status.wait_value(lambda s: s.incarnation == 2)
                nursery.cancel_scope.cancel()
        assert alive(recorder.children[0])
    finally:
        for pid in recorder.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def test_the_worker_holds_one_copy_of_its_socket_on_another_fd(statuses) -> None:  # type: ignore[no-untyped-def]
    recorder = ChildRecorder()
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker("fds", "--fd", "7"), CODEC, recorder, heartbeat=Heartbeat, fd=7, **FAST
        ) as supervisor, trio.open_nursery() as nursery:
            recorder.supervisor = supervisor
            nursery.start_soon(watch, supervisor, statuses)
            await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING))
            nursery.cancel_scope.cancel()
    assert recorder.children == [1]


async def blocked_in_sleep(pid: int) -> None:
    """Until the worker sits in its blocking ``time.sleep`` (the kernel says where it
    waits; no event reaches us from inside another process's sync code)."""
    with trio.fail_after(TEST_TIMEOUT):
        while True:
            if "nanosleep" in await trio.Path(f"/proc/{pid}/wchan").read_text():
                return
            await trio.sleep(0.01)


@pytest.mark.parametrize("how", ["sigstop", "block"])
async def test_a_stopped_or_blocked_worker_dies_with_its_sigkilled_supervisor(how: str) -> None:
    # A stopped worker never sees EOF, and one blocked in sync code sees it only
    # when it unblocks: only the kernel's parent-death SIGKILL ends them at once.
    mode = "healthy" if how == "sigstop" else "block"
    child = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.supervisor.supervisor_main", mode], stdout=subprocess.PIPE
    )
    assert child.stdout is not None
    worker_pid: int | None = None
    try:
        worker_pid = await read_worker_pid(child)
        if how == "sigstop":
            os.kill(worker_pid, signal.SIGSTOP)
        else:
            await blocked_in_sleep(worker_pid)
        child.kill()
        await child.wait()
        await wait_gone(worker_pid)  # the kernel's parent-death SIGKILL, not EOF
    finally:
        await child.stdout.aclose()
        with trio.CancelScope(shield=True):
            if child.returncode is None:
                child.kill()
                await child.wait()
        if worker_pid is not None and alive(worker_pid):
            os.kill(worker_pid, signal.SIGKILL)


@pytest.mark.parametrize("mode", ["tight", "tight-nursery"])
async def test_a_worker_whose_supervisor_vanishes_mid_call_exits_normally(mode: str) -> None:
    """connect_to_supervisor ends normally on EOF however the worker's code waits."""
    for _ in range(5):
        await vanish_mid_call(mode)


async def vanish_mid_call(mode: str) -> None:
    ours, theirs = socket.socketpair()
    try:
        process = await trio.lowlevel.open_process(worker(mode), stdin=theirs.fileno())
    finally:
        theirs.close()
    handled = 0
    busy = trio.Event()

    async def handler(message: object) -> None:
        nonlocal handled
        handled += 1
        if handled == 50:
            busy.set()

    with trio.fail_after(TEST_TIMEOUT):
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actors.serve, stream, CODEC, handler)
            await busy.wait()  # the worker is deep in its calls
            nursery.cancel_scope.cancel()  # serve closes the socket: EOF mid-call
        assert await process.wait() == 0
    assert_gone({process.pid})
