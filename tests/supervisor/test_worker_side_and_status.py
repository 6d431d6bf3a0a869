"""The worker's side and the truth of its status: connect_to_supervisor(thread=True)
puts the worker's channel on a thread of its own; a stopped worker is unhealthy at once.

A real worker blocks its main loop with sync code while one of its threads keeps
asking the supervisor: the asks are still answered (the channel does not live on the
blocked loop), and the worker is still declared stuck (the heartbeat does)."""

from __future__ import annotations

import os
import signal
from typing import Any

import trio

import actors
from tests.supervisor.messages import CODEC, Ack, Heartbeat, Work
from tests.supervisor.test_supervisor import FAST, TEST_TIMEOUT, Recorder, state_is, watch, worker
from tests.supervisor.test_supervisor import statuses as statuses  # the fixture


async def test_a_blocked_loop_does_not_stall_a_channel_on_its_own_thread(statuses) -> None:  # type: ignore[no-untyped-def]
    asked_while_blocked = 0
    enough = trio.Event()

    async def handler(message: Any) -> Any:
        nonlocal asked_while_blocked
        if isinstance(message, Work):
            if message.n == -1:
                asked_while_blocked += 1
                if asked_while_blocked == 10:
                    enough.set()
            return Ack(incarnation=actors.current_request().incarnation)
        return None

    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker("thread-block"), CODEC, handler, heartbeat=Heartbeat, stuck_after=2.0, **FAST
        ) as supervisor, trio.open_nursery() as nursery:
            nursery.start_soon(watch, supervisor, statuses)
            await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING, 1))
            await enough.wait()  # ten answered asks from a worker whose loop is blocked
            assert supervisor.status.value.incarnation == 1
            await supervisor.status.wait_value(lambda s: s.incarnation == 2)
            assert supervisor.status.value.last_exit_reason == "stuck"
            nursery.cancel_scope.cancel()


async def test_a_stopped_worker_is_unhealthy_at_once_not_after_stuck_after(statuses) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker("healthy"), CODEC, Recorder(), heartbeat=Heartbeat, stuck_after=30.0, **FAST
        ) as supervisor, trio.open_nursery() as nursery:
            nursery.start_soon(watch, supervisor, statuses)
            await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING, 1))
            pid = supervisor.status.value.pid
            assert pid is not None and supervisor.healthy()
            os.kill(pid, signal.SIGSTOP)
            try:
                # Its last heartbeat is still fresh (stuck_after is 30 s): only the
                # kernel knows, and healthy() asks it at each call.
                # Until the kernel has stopped it (it is our child: waitid says so).
                await trio.to_thread.run_sync(os.waitid, os.P_PID, pid, os.WSTOPPED | os.WNOWAIT)
                assert supervisor.why_unhealthy() == "stopped by a signal"
                assert supervisor.heartbeat_age() is not None and supervisor.heartbeat_age() < 1.0  # type: ignore[operator]
            finally:
                os.kill(pid, signal.SIGCONT)
            while not supervisor.healthy():
                await supervisor.status.wait_transition()
            nursery.cancel_scope.cancel()
