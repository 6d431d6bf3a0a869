"""open_supervisor under trio's rules, one test per shape of the block.

The documented error (RestartIntensityExceeded, or the block's own exception) comes
out bare whatever the block does; a Cancelled never leaves the scope that raised it;
the worker is always stopped and reaped. Real worker processes that exit at once, so
the restart intensity (max_restarts=1) trips within a second.
"""

from __future__ import annotations

import pytest
import trio

import actors
from tests.supervisor.messages import CODEC, Heartbeat
from tests.supervisor.test_supervisor import FAST, TEST_TIMEOUT, Recorder, assert_gone, worker


def failing_supervisor():  # type: ignore[no-untyped-def]
    return actors.open_supervisor(
        worker("exit"), CODEC, Recorder(), heartbeat=Heartbeat, max_restarts=1, restart_window=60, **FAST
    )


def pids_of(supervisor: actors.Supervisor) -> set[int]:
    return {status.pid for status in supervisor.history() if status.pid is not None}


async def test_a_bare_block_gets_restart_intensity_exceeded() -> None:
    with trio.fail_after(TEST_TIMEOUT), pytest.raises(actors.RestartIntensityExceeded):
        async with failing_supervisor() as supervisor:
            await trio.sleep_forever()
    assert supervisor.status.value.state is actors.WorkerState.FAILED
    assert_gone(pids_of(supervisor))


async def test_a_block_with_its_own_nursery_gets_it_bare_and_no_cancelled_escapes() -> None:
    with trio.fail_after(TEST_TIMEOUT), pytest.raises(actors.RestartIntensityExceeded):
        async with failing_supervisor() as supervisor, trio.open_nursery() as nursery:
            for _ in range(3):
                nursery.start_soon(trio.sleep_forever)
    assert_gone(pids_of(supervisor))


async def test_inside_an_outer_nursery_the_failure_reaches_that_nursery() -> None:
    # The demo's shape: the supervisor in a task of an outer nursery, the block
    # with a nursery of its own. Once nothing at all was raised here.
    seen: list[actors.Supervisor] = []

    async def task() -> None:
        async with failing_supervisor() as supervisor, trio.open_nursery() as nursery:
            seen.append(supervisor)
            nursery.start_soon(trio.sleep_forever)

    with trio.fail_after(TEST_TIMEOUT), pytest.RaisesGroup(actors.RestartIntensityExceeded):
        async with trio.open_nursery() as outer:
            outer.start_soon(task)
            outer.start_soon(trio.sleep_forever)
    assert_gone(pids_of(seen[0]))


class BodyError(Exception):
    pass


@pytest.mark.parametrize("with_nursery", [False, True])
async def test_the_blocks_own_error_comes_out_as_the_block_raised_it(with_nursery: bool) -> None:
    # Bare, or (from the block's own nursery) in that nursery's group: never wrapped
    # again in ours.
    expected = pytest.RaisesGroup(BodyError) if with_nursery else pytest.raises(BodyError, match="mine")
    with trio.fail_after(TEST_TIMEOUT), expected:
        async with actors.open_supervisor(worker("healthy"), CODEC, Recorder(), heartbeat=Heartbeat, **FAST) as sup:
            await sup.status.wait_value(lambda s: s.state is actors.WorkerState.RUNNING)
            if with_nursery:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(trio.sleep_forever)
                    raise BodyError("mine")
            raise BodyError("mine")
    assert sup.status.value.state is actors.WorkerState.STOPPED
    assert_gone(pids_of(sup))


async def test_cancelled_from_outside_it_ends_quietly_and_stops_the_worker() -> None:
    with trio.fail_after(TEST_TIMEOUT), trio.CancelScope() as scope:
        async with actors.open_supervisor(worker("healthy"), CODEC, Recorder(), heartbeat=Heartbeat, **FAST) as sup:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.sleep_forever)
                await sup.status.wait_value(lambda s: s.state is actors.WorkerState.RUNNING)
                scope.cancel()
    assert scope.cancelled_caught
    assert sup.status.value.state is actors.WorkerState.STOPPED
    assert_gone(pids_of(sup))


async def test_keyboard_interrupt_in_the_block_comes_out_bare() -> None:
    with trio.fail_after(TEST_TIMEOUT), pytest.raises(KeyboardInterrupt):
        async with actors.open_supervisor(worker("healthy"), CODEC, Recorder(), heartbeat=Heartbeat, **FAST) as sup:
            await sup.status.wait_value(lambda s: s.state is actors.WorkerState.RUNNING)
            raise KeyboardInterrupt
    assert_gone(pids_of(sup))
