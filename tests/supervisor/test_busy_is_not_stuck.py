"""Busy is not stuck: a worker whose side tasks keep 1,000 (or 3,000, over its
max_in_flight; or 5,000 with max_in_flight 4,096, more than the supervisor holds)
slow requests waiting, while its main loop heartbeats every 0.2 s, is never
restarted with stuck_after=1, because the heartbeat jumps every queue on both ends
and the worker is kept within the supervisor's credit; a supervisor whose own loop
stalls past stuck_after reads the heartbeats waiting in the socket before it
decides; and a blocked main loop under the same load is still stuck in time.

Real worker processes (tests/supervisor/worker.py, busy modes); the supervisor's
handler answers Work in 100 ms, at most 64 at once (about 640 a second).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import trio

import actors
from tests.supervisor.messages import CODEC, Ack, Heartbeat, Work
from tests.supervisor.test_supervisor import FAST, TEST_TIMEOUT, state_is, watch, worker
from tests.supervisor.test_supervisor import statuses as statuses  # the fixture

BUSY_FOR = 10.0


class SlowHandler:
    def __init__(self) -> None:
        self.work = 0

    async def __call__(self, message: Any) -> Any:
        if isinstance(message, Work):
            await trio.sleep(0.1)
            self.work += 1
            return Ack(incarnation=None)
        return None


@pytest.mark.parametrize(("load", "max_in_flight"), [(1_000, 1024), (3_000, 1024), (5_000, 4096)])
async def test_a_busy_worker_is_never_restarted(statuses, load: int, max_in_flight: int) -> None:  # type: ignore[no-untyped-def]
    handler = SlowHandler()
    command = worker("busy", "--load", str(load), "--max-in-flight", str(max_in_flight))
    with trio.fail_after(TEST_TIMEOUT + BUSY_FOR):
        async with actors.open_supervisor(
            command, CODEC, handler, heartbeat=Heartbeat, stuck_after=1.0, **FAST
        ) as supervisor, trio.open_nursery() as nursery:
            nursery.start_soon(watch, supervisor, statuses)
            await supervisor.status.wait_value(state_is(actors.WorkerState.RUNNING, 1))
            worst = 0.0
            with trio.move_on_after(BUSY_FOR):
                async for status in supervisor.status.eventual_values():
                    worst = max(worst, status.worst_heartbeat_gap or 0.0)
                    assert status.state is actors.WorkerState.RUNNING and status.incarnation == 1, status
            nursery.cancel_scope.cancel()
    assert handler.work > 5 * BUSY_FOR * 64 * 0.5  # it was busy all along, at about half its rate or more
    assert [s.state for s in statuses].count(actors.WorkerState.STUCK) == 0
    print(f"load {load}: worst heartbeat gap {worst:.3f} s, {handler.work} requests handled")


async def test_a_blocked_main_loop_under_load_is_still_stuck_in_time(statuses) -> None:  # type: ignore[no-untyped-def]
    stuck_after = 1.0
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker("busy-block", "--load", "1000"), CODEC, SlowHandler(), heartbeat=Heartbeat,
            stuck_after=stuck_after, **FAST,
        ) as supervisor, trio.open_nursery() as nursery:
            nursery.start_soon(watch, supervisor, statuses)
            await supervisor.status.wait_value(state_is(actors.WorkerState.STUCK, 1))
            stuck = supervisor.status.value
            assert stuck.heartbeat_age is not None and stuck.heartbeat_age < stuck_after + 1
            nursery.cancel_scope.cancel()


STALLS = 5  # after each, trio may run the watchdog before the reader or after: the
# code before the fix survived one stall about half the time, so five of them


class StallingHandler:
    """Answers Work at once, but every 200th blocks the supervisor's own loop 1.5 s."""

    def __init__(self) -> None:
        self.work = 0
        self.after_stall = trio.Event()

    async def __call__(self, message: Any) -> Any:
        if isinstance(message, Work):
            self.work += 1
            if self.work % 200 == 0 and self.work <= 200 * STALLS:
                time.sleep(1.5)  # noqa: ASYNC251 - the point: the supervisor itself stalls
            if self.work == 200 * STALLS + 100:
                self.after_stall.set()
            return Ack(incarnation=None)
        return None


async def test_the_supervisors_own_stall_is_not_the_workers(statuses) -> None:  # type: ignore[no-untyped-def]
    """The worker's main loop beats every 0.2 s while a side task asks without pause;
    the supervisor's loop stalls 1.5 s (five times), over stuck_after: the beat sent meanwhile waits
    in the socket, and is read before the stuck decision, so the worker is not blamed."""
    handler = StallingHandler()
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker("busy", "--load", "1"), CODEC, handler, heartbeat=Heartbeat, stuck_after=1.0, **FAST
        ) as supervisor, trio.open_nursery() as nursery:
            nursery.start_soon(watch, supervisor, statuses)
            await handler.after_stall.wait()
            assert supervisor.status.value.incarnation == 1
            nursery.cancel_scope.cancel()
    assert [s.state for s in statuses].count(actors.WorkerState.STUCK) == 0, [s.state for s in statuses]
    assert max(s.incarnation for s in statuses) == 1  # never restarted


class SlowHeartbeatAnswers:
    """Takes 2.5 s (over stuck_after) to answer each of the first two heartbeats, as
    a job whose store is slow would; the third is answered at once, and noted."""

    def __init__(self) -> None:
        self.beats = 0
        self.third_answered: float | None = None

    async def __call__(self, message: Any) -> Any:
        if isinstance(message, Heartbeat):
            self.beats += 1
            if self.beats <= 2:
                await trio.sleep(2.5)  # not synchronisation: the supervisor's slow answer
            elif self.beats == 3:
                self.third_answered = trio.current_time()
        return None


async def test_a_worker_waiting_for_its_heartbeats_answer_is_not_stuck(statuses) -> None:  # type: ignore[no-untyped-def]
    """The worker's main loop awaits each heartbeat's reply; the supervisor takes 2.5 s
    over two of them with stuck_after=1: the worker waits on the supervisor, so it is
    not blamed. After the third reply its loop blocks for good: stuck, one stuck_after
    after that reply (not after the heartbeat was read)."""
    handler = SlowHeartbeatAnswers()
    stuck_after = 1.0
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.open_supervisor(
            worker("block"), CODEC, handler, heartbeat=Heartbeat, stuck_after=stuck_after, **FAST
        ) as supervisor, trio.open_nursery() as nursery:
            nursery.start_soon(watch, supervisor, statuses)
            await supervisor.status.wait_value(state_is(actors.WorkerState.STUCK, 1))
            stuck_at = trio.current_time()
            nursery.cancel_scope.cancel()
    states = [(s.state, s.incarnation) for s in statuses]
    assert handler.beats == 3 and handler.third_answered is not None, states
    # Not stuck while its first two beats were being answered (5 s in all)...
    assert states.count((actors.WorkerState.STUCK, 1)) == 1 and (actors.WorkerState.STUCK, 2) not in states
    # ...and stuck in time once its loop had blocked.
    assert stuck_after <= stuck_at - handler.third_answered < stuck_after + 2, stuck_at - handler.third_answered
