"""Exact blame: a trigger is charged for blocking the runner only for a synchronous
step of its own code that ran long, timed as it runs (a trio instrument; on asyncio a
wrapper around the trigger's coroutine), never for being around while the loop was slow."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from typing import Any

import trio
import trio.lowlevel

from examples.triggerer.hosts import TrioStepTimer, _TimedSteps


class StepLog:
    """Stands in for the Runner: records how long each step of each trigger ran."""

    def __init__(self) -> None:
        self.longest: dict[int | None, float] = defaultdict(float)
        self._began: tuple[int | None, float] | None = None

    def step_began(self, trigger_id: int | None) -> None:
        self._began = (trigger_id, time.monotonic())

    def step_ended(self) -> None:
        if self._began is None:
            return  # the step the instrument was added in
        trigger_id, began = self._began
        self.longest[trigger_id] = max(self.longest[trigger_id], time.monotonic() - began)


async def blocker() -> None:
    await trio.lowlevel.checkpoint()
    time.sleep(0.2)  # noqa: ASYNC251 - one long synchronous step: the one to blame


async def busy_but_polite() -> None:
    # Many short steps over a long time, in a child task of its own nursery.
    async def child() -> None:
        for _ in range(3_000):
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(child)


def test_trio_steps_are_timed_and_attributed_to_their_trigger_even_in_child_tasks() -> None:
    log = StepLog()

    async def main() -> None:
        timer = TrioStepTimer(log)  # type: ignore[arg-type]
        trio.lowlevel.add_instrument(timer)

        async def as_trigger(trigger_id: int, fn: Any) -> None:
            timer.trigger_of[trio.lowlevel.current_task()] = trigger_id
            await fn()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(as_trigger, 7, blocker)
            nursery.start_soon(as_trigger, 8, busy_but_polite)
        trio.lowlevel.remove_instrument(timer)

    trio.run(main)
    assert log.longest[7] >= 0.2
    assert 0 < log.longest[8] < 0.05  # long-lived and busy, but never blocking
    assert log.longest[None] < 0.05  # the runner's own tasks


def test_asyncio_steps_are_timed_and_attributed_to_their_trigger() -> None:
    log = StepLog()

    async def block() -> str:
        await asyncio.sleep(0)
        time.sleep(0.2)  # noqa: ASYNC251 - one long synchronous step: the one to blame
        return "done"

    async def polite() -> str:
        for _ in range(3_000):
            await asyncio.sleep(0)
        return "done"

    async def main() -> list[str]:
        tasks = [asyncio.create_task(_TimedSteps(log, 7, block())),  # type: ignore[arg-type]
                 asyncio.create_task(_TimedSteps(log, 8, polite()))]  # type: ignore[arg-type]
        return await asyncio.gather(*tasks)

    assert asyncio.run(main()) == ["done", "done"]
    assert log.longest[7] >= 0.2
    assert 0 < log.longest[8] < 0.05


def test_a_trio_trigger_that_blocks_in_its_very_first_step_is_blamed() -> None:
    """Issue 24 item 19: the task was linked to its trigger inside its first step, after
    the instrument's before_task_step had run, so that step was charged to nobody (8 of
    8 trio runs never blamed blocks_once). TrioStepTimer.spawn links it at spawn."""
    log = StepLog()

    async def blocks_at_once() -> None:
        time.sleep(0.2)  # noqa: ASYNC251 - before any checkpoint: the very first step

    async def main() -> None:
        timer = TrioStepTimer(log)  # type: ignore[arg-type]
        trio.lowlevel.add_instrument(timer)
        async with trio.open_nursery() as nursery:
            timer.spawn(nursery, 7, blocks_at_once)
        assert timer.trigger_of == {}  # the link ended with the task
        trio.lowlevel.remove_instrument(timer)

    trio.run(main)
    assert log.longest[7] >= 0.2
    assert log.longest[None] < 0.2
