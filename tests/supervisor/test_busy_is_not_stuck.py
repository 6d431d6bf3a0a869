"""Busy is not stuck: a worker whose side tasks keep 1,000 (or 3,000, over its
max_in_flight) slow requests waiting, while its main loop heartbeats every 0.2 s, is
never restarted with stuck_after=1, because the heartbeat jumps every queue on both
ends; and a blocked main loop under the same load is still stuck in time.

Real worker processes (tests/supervisor/worker.py, busy modes); the supervisor's
handler answers Work in 100 ms, at most 64 at once (about 640 a second).
"""

from __future__ import annotations

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


@pytest.mark.parametrize("load", [1_000, 3_000])
async def test_a_busy_worker_is_never_restarted(statuses, load: int) -> None:  # type: ignore[no-untyped-def]
    handler = SlowHandler()
    with trio.fail_after(TEST_TIMEOUT + BUSY_FOR):
        async with actors.open_supervisor(
            worker("busy", "--load", str(load)), CODEC, handler, heartbeat=Heartbeat, stuck_after=1.0, **FAST
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
