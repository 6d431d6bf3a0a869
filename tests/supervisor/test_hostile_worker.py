"""A supervisor survives whatever its worker sends: real worker processes that write
raw frames (tests/supervisor/worker.py's hostile modes) and never read.

The worker runs untrusted code, so a frame that once killed the supervisor must end
only that incarnation (or only that request), and a worker that never reads its
replies is declared dead instead of growing the supervisor's memory while healthy.
"""

from __future__ import annotations

import trio

import actors
from tests.supervisor.messages import CODEC, Heartbeat
from tests.supervisor.test_supervisor import FAST, TEST_TIMEOUT, Recorder, state_is, watch, worker
from tests.supervisor.test_supervisor import statuses as statuses  # the fixture


async def test_a_deeply_nested_garbage_frame_ends_only_that_incarnation(statuses) -> None:  # type: ignore[no-untyped-def]
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker("deep-frame"), CODEC, Recorder(), heartbeat=Heartbeat, **FAST
        ) as supervisor, trio.open_nursery() as nursery:
            nursery.start_soon(watch, supervisor, statuses)
            await supervisor.status.wait_value(lambda s: s.incarnation == 2)
            assert supervisor.status.value.last_exit_reason == "protocol error"
            await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING, 2))
            nursery.cancel_scope.cancel()


async def test_a_request_nested_too_deep_fails_alone_and_the_worker_keeps_running(statuses) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder()
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker("deep-request"), CODEC, recorder, heartbeat=Heartbeat, stuck_after=1.0, **FAST
        ) as supervisor, trio.open_nursery() as nursery:
            recorder.supervisor = supervisor
            nursery.start_soon(watch, supervisor, statuses)
            await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING, 1))
            # The deep request goes at the 4th beat; 20 more beats show nothing ended.
            for _ in range(24):
                await supervisor.status.wait_transition()
            status = supervisor.status.value
            assert (status.state, status.incarnation, status.restarts) == (actors.WorkerState.RUNNING, 1, 0)
            assert recorder.work == []  # the refused request reached no handler
            nursery.cancel_scope.cancel()


async def test_a_worker_that_never_reads_its_replies_is_declared_dead(statuses) -> None:  # type: ignore[no-untyped-def]
    recorder = Recorder()
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker("no-read"), CODEC, recorder, heartbeat=Heartbeat, stuck_after=1.0, **FAST
        ) as supervisor, trio.open_nursery() as nursery:
            recorder.supervisor = supervisor
            nursery.start_soon(watch, supervisor, statuses)
            await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING, 1))
            await supervisor.status.wait_value(lambda s: s.incarnation == 2)
            # Still heartbeating all along: it is the stall of our writes that ended it.
            assert supervisor.status.value.last_exit_reason == "stopped reading"
            nursery.cancel_scope.cancel()
