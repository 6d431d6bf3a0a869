"""A spawn that fails is a dead incarnation (docs/supervising.rst): out of fds during a
restart, the supervisor backs off and tries again, and gives up only by its restart
intensity. A first spawn of a command that cannot run at all raises at once.

Real processes and a real fd shortage: the test takes every free fd of its own
process while the supervisor restarts, then gives them back.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
from collections.abc import Iterator

import pytest
import trio

import actors
from tests.supervisor.messages import CODEC, Heartbeat
from tests.supervisor.test_supervisor import FAST, TEST_TIMEOUT, Recorder, state_is, watch, worker
from tests.supervisor.test_supervisor import statuses as statuses  # the fixture


@contextlib.contextmanager
def no_free_fds() -> Iterator[None]:
    taken: list[int] = []
    try:
        while True:
            try:
                taken.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as exc:
                assert exc.errno == errno.EMFILE
                break
        yield
    finally:
        for fd in taken:
            os.close(fd)


def spawn_failed(status: actors.SupervisorStatus) -> bool:
    return status.state is actors.WorkerState.BACKING_OFF and (status.last_exit_reason or "").startswith(
        "spawn failed"
    )


async def test_out_of_fds_during_a_restart_is_a_dead_incarnation(statuses) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker("run"), CODEC, Recorder(), heartbeat=Heartbeat, stuck_after=2.0, **FAST
        ) as supervisor, trio.open_nursery() as nursery:
            nursery.start_soon(watch, supervisor, statuses)
            await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING, 1))
            pid = supervisor.status.value.pid
            assert pid is not None
            with no_free_fds():
                os.kill(pid, signal.SIGKILL)
                await supervisor.status.wait_value(spawn_failed)
                failed = supervisor.status.value
            assert failed.incarnation == 2 and failed.pid is None
            await supervisor.status.wait_value(lambda s: s.state is actors.WorkerState.RUNNING and s.incarnation > 2)
            assert supervisor.healthy()
            nursery.cancel_scope.cancel()
    reasons = [s.last_exit_reason for s in statuses if s.state is actors.WorkerState.BACKING_OFF]
    assert reasons[0] == "exited" and reasons[1] == "spawn failed: Too many open files", reasons


async def test_a_command_that_cannot_run_raises_at_once() -> None:
    with trio.fail_after(TEST_TIMEOUT), pytest.raises(FileNotFoundError):
        async with actors.open_supervisor(["/nonexistent/worker"], CODEC, Recorder(), heartbeat=Heartbeat):
            pass  # pragma: no cover - never reached
