"""The runner's two hosts: the event loops its triggers run on, a trio loop
(:class:`TrioHost`) and an asyncio loop (:class:`AsyncioHost`), each with its 50 ms
tick (the loop's lag), its pool of worker threads, and a timer of each step of a
trigger's own code (:class:`TrioStepTimer`, :class:`_TimedSteps`) so that blame for a
blocked loop is exact. The runner's main loop (:func:`.runner.run`) is the same on both.
"""

from __future__ import annotations

import asyncio
import collections.abc
import concurrent.futures
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import trio

from .kinds import Host, Trigger

if TYPE_CHECKING:
    from .runner import Runner

T = TypeVar("T")

TICK_EVERY = 0.05
# Thread work here mostly waits for the job's replies (blocking sends, an
# async_to_sync loop per call) rather than computing: more threads than trio's
# default 40 keep it from queueing; admission control watches what still waits.
WORKER_THREADS = 200


class TrioStepTimer(trio.abc.Instrument):
    """Times each trio task step, and knows which trigger (if any) the task runs:
    the trigger's own task, or a task in a nursery under it (a gather)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.trigger_of: dict[trio.lowlevel.Task, int] = {}  # each trigger's own task
        self._spawning: int | None = None  # the trigger whose task start_soon is creating

    def spawn(self, nursery: trio.Nursery, trigger_id: int, fn: Callable[[], Awaitable[None]]) -> None:
        """Start ``fn`` as trigger ``trigger_id``'s task, linked to it before its first
        step runs (trio calls ``task_spawned`` inside ``start_soon``), so a trigger
        that blocks in its very first step is blamed too. The link ends with the task."""
        self._spawning = trigger_id
        try:
            nursery.start_soon(fn)
        finally:
            self._spawning = None

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        if self._spawning is not None:
            self.trigger_of[task] = self._spawning

    def task_exited(self, task: trio.lowlevel.Task) -> None:
        self.trigger_of.pop(task, None)

    def _trigger(self, task: trio.lowlevel.Task) -> int | None:
        while True:
            trigger_id = self.trigger_of.get(task)
            if trigger_id is not None or task.parent_nursery is None:
                return trigger_id
            task = task.parent_nursery.parent_task

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.runner.step_began(self._trigger(task))

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        self.runner.step_ended()


class _TimedSteps(collections.abc.Coroutine[Any, Any, T]):
    """An asyncio trigger's coroutine, each step of which (a ``send`` or ``throw``
    from its task) is timed and attributed to the trigger: asyncio's equivalent of a
    trio instrument, for one task."""

    def __init__(self, runner: Runner, trigger_id: int, coroutine: collections.abc.Coroutine[Any, Any, T]) -> None:
        self._runner = runner
        self._trigger_id = trigger_id
        self._coroutine = coroutine

    def send(self, value: Any) -> Any:
        self._runner.step_began(self._trigger_id)
        try:
            return self._coroutine.send(value)
        finally:
            self._runner.step_ended()

    def throw(self, *args: Any) -> Any:
        self._runner.step_began(self._trigger_id)
        try:
            return self._coroutine.throw(*args)
        finally:
            self._runner.step_ended()

    def close(self) -> None:
        self._coroutine.close()

    def __await__(self) -> Any:
        return self


async def run_one_trigger(runner: Runner, trigger_id: int, trigger: Trigger, timeout_cm: Any) -> None:
    """Run one trigger within its timeout."""
    result: str | None = None
    error: BaseException | None = None
    try:
        with timeout_cm:
            result = await trigger.run()
    except Exception as exc:
        error = exc
    if result is None and error is None:  # the deadline ended it
        error = TimeoutError(f"no outcome within {runner.args.trigger_timeout:g} s")
    runner.finished(trigger_id, result, error)


class Cancellable(Protocol):
    def cancel(self) -> Any: ...


class RunnerHost(Host, Protocol):
    """What the main loop needs from its event loop, beyond what triggers need."""

    caller: str  # how the triggers' own requests are counted: "trio_task" or "asyncio_task"

    def start(self, trigger_id: int, trigger: Trigger) -> Cancellable:
        """Start running ``trigger`` within its deadline; the handle cancels it."""
        ...


# ------------------------------------------------------------------ trio host


class TrioHost:
    caller = "trio_task"

    def __init__(self, runner: Runner, nursery: trio.Nursery, timer: TrioStepTimer) -> None:
        self.runner = runner
        self.nursery = nursery
        self.timer = timer

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, runner: Runner) -> AsyncIterator[TrioHost]:
        """The host, its step timer and its tick; leaving cancels every trigger."""
        trio.to_thread.current_default_thread_limiter().total_tokens = WORKER_THREADS
        timer = TrioStepTimer(runner)
        trio.lowlevel.add_instrument(timer)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(tick, runner, trio.sleep)
            yield cls(runner, nursery, timer)
            nursery.cancel_scope.cancel()

    def start(self, trigger_id: int, trigger: Trigger) -> trio.CancelScope:
        scope = trio.CancelScope()

        async def run_trigger() -> None:
            with scope:
                deadline = trio.move_on_after(self.runner.args.trigger_timeout)
                await run_one_trigger(self.runner, trigger_id, trigger, deadline)

        self.timer.spawn(self.nursery, trigger_id, run_trigger)
        return scope

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    async def to_thread(self, fn: Callable[[], T]) -> T:
        return await self.runner.in_thread(fn, lambda work: trio.to_thread.run_sync(work, abandon_on_cancel=True))

    async def gather(self, calls: list[Callable[[], Awaitable[Any]]]) -> None:
        async with trio.open_nursery() as nursery:
            for call in calls:
                nursery.start_soon(call)


async def tick(runner: Runner, sleep: Callable[[float], Awaitable[None]]) -> None:
    """The loop's 50 ms tick, whose lateness is its lag."""
    while True:
        runner.ticked()
        await sleep(TICK_EVERY)


# ------------------------------------------------------------------ asyncio host


class AsyncioHost:
    caller = "asyncio_task"

    def __init__(self, runner: Runner) -> None:
        self.runner = runner

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, runner: Runner) -> AsyncIterator[AsyncioHost]:
        """The host and its tick; leaving cancels every trigger."""
        asyncio.get_running_loop().set_default_executor(
            concurrent.futures.ThreadPoolExecutor(WORKER_THREADS, thread_name_prefix="trigger")
        )
        tick_task = asyncio.create_task(tick(runner, asyncio.sleep))
        try:
            yield cls(runner)
        finally:
            tick_task.cancel()
            for task in list(runner.running.values()):
                task.cancel()

    def start(self, trigger_id: int, trigger: Trigger) -> asyncio.Task[None]:
        deadline = _AsyncioTimeout(self.runner.args.trigger_timeout)
        return asyncio.create_task(_TimedSteps(self.runner, trigger_id, run_one_trigger(self.runner, trigger_id, trigger, deadline)))

    async def sleep(self, seconds: float) -> None:
        if math.isinf(seconds):
            await asyncio.Event().wait()
        await asyncio.sleep(seconds)

    async def to_thread(self, fn: Callable[[], T]) -> T:
        return await self.runner.in_thread(fn, asyncio.to_thread)

    async def gather(self, calls: list[Callable[[], Awaitable[Any]]]) -> None:
        await asyncio.gather(*(call() for call in calls))


class _AsyncioTimeout:
    """``with``-able deadline for a trigger on asyncio: cancels its task at the deadline."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False

    def __enter__(self) -> None:
        task = asyncio.current_task()
        assert task is not None

        def expire() -> None:
            self.expired = True
            task.cancel()

        self._handle = asyncio.get_running_loop().call_later(self.seconds, expire)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        self._handle.cancel()
        if self.expired and exc_type is asyncio.CancelledError:
            asyncio.current_task().uncancel()  # type: ignore[union-attr]
            return True
        return False
