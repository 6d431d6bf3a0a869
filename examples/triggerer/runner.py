"""The runner: the subprocess that executes triggers (``python -m examples.triggerer.runner``).

Its end of the socketpair is fd 0. The channel lives on its own thread
(``comms_in_thread``), so that a trigger blocking the runner's loop cannot stall it:
the runner's watchdog thread can still tell the job which trigger is to blame. The
main loop syncs with the job every half second (its heartbeat): it reports finished
triggers and receives triggers to start and to cancel. Two hosts run the same kinds:
a trio loop (default) and an asyncio loop, as an Airflow-style asyncio triggerer
would adopt trio-comms. The runner ends when its channel closes.
"""

from __future__ import annotations

import argparse
import asyncio
import collections.abc
import concurrent.futures
import contextlib
import math
import resource
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

import attrs
import trio

import actors

from .kinds import Host, Stats, Trigger
from .messages import CODEC, LoopBlocked, Sync, TriggerEvent

T = TypeVar("T")

SYNC_EVERY = 0.5
TICK_EVERY = 0.05
# Thread work here mostly waits for the job's replies (blocking sends, an
# async_to_sync loop per call) rather than computing: more threads than trio's
# default 40 keep it from queueing; admission control watches what still waits.
WORKER_THREADS = 200


class Runner:
    """The state the main loop and the watchdog share: library-neutral."""

    def __init__(self, comms: actors.Comms, args: argparse.Namespace) -> None:
        self.comms = comms
        self.args = args
        self.stats = Stats()
        self.events: list[TriggerEvent] = []
        self.running: dict[int, Any] = {}  # trigger id -> its cancel handle
        self.tick = time.monotonic()
        self.step: tuple[int | None, float] | None = None  # the loop's current step: (trigger, since)
        self.worst_lag = 0.0  # since the last sync
        self.peak_running = 0  # the most triggers run at once since the last sync
        self.loop_thread = threading.get_ident()
        self.closed = False
        self.waiting_for_thread: dict[object, float] = {}  # thread work not started yet -> since when
        self.worst_thread_wait = 0.0  # the longest any thread work waited to start, since the last sync

    def ticked(self) -> None:
        """The loop's 50 ms tick: how late it came is the loop's lag."""
        now = time.monotonic()
        self.worst_lag = max(self.worst_lag, now - self.tick - TICK_EVERY)
        self.tick = now

    async def in_thread(self, fn: Callable[[], T], run: Callable[[Callable[[], T]], Awaitable[T]]) -> T:
        """``await run(fn)`` (a host's to-thread call), counted as waiting for a
        thread until it starts in one, or is given up (its trigger's deadline)."""
        work = object()
        submitted = self.waiting_for_thread[work] = time.monotonic()

        def started() -> T:
            # (dict operations are atomic under the GIL; a lost max is harmless)
            self.worst_thread_wait = max(self.worst_thread_wait, time.monotonic() - submitted)
            self.waiting_for_thread.pop(work, None)
            return fn()

        try:
            return await run(started)
        finally:
            self.waiting_for_thread.pop(work, None)

    def sync_message(self) -> Sync:
        requests, misroutes, latency = self.stats.take()
        events, self.events = self.events, []
        lag, self.worst_lag = max(0.0, self.worst_lag), 0.0
        peak, self.peak_running = max(self.peak_running, len(self.running)), len(self.running)
        oldest = min(self.waiting_for_thread.values(), default=time.monotonic())
        thread_wait, self.worst_thread_wait = max(self.worst_thread_wait, time.monotonic() - oldest), 0.0
        return Sync(
            events=events, running=list(self.running), free=self.args.capacity - len(self.running),
            requests=requests, misroutes=misroutes, channel=attrs.asdict(self.comms.statistics()),
            loop_lag=lag, threads_waiting=len(self.waiting_for_thread), thread_wait=thread_wait,
            request_latency=latency, peak_running=peak,
            rss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        )

    def started(self) -> None:
        """A batch of triggers has been started: note the peak."""
        self.peak_running = max(self.peak_running, len(self.running))

    def cancel(self, trigger_ids: list[int]) -> None:
        """Cancel triggers the job no longer wants run (a trio CancelScope or an asyncio Task)."""
        for trigger_id in trigger_ids:
            handle = self.running.pop(trigger_id, None)
            if handle is not None:
                handle.cancel()

    def finished(self, trigger_id: int, result: str | None, error: BaseException | None) -> None:
        self.running.pop(trigger_id, None)
        if error is None:
            self.events.append(TriggerEvent(id=trigger_id, succeeded=True, result=result))
        else:
            self.events.append(TriggerEvent(id=trigger_id, succeeded=False, error=f"{type(error).__name__}: {error}"))

    # ------------------------------------------------------------------ the watchdog thread

    def step_began(self, trigger_id: int | None) -> None:
        """The loop began one synchronous step of a trigger's code (None: other code)."""
        self.step = (trigger_id, time.monotonic())

    def step_ended(self) -> None:
        self.step = None

    def watch_the_loop(self) -> None:
        """Tell the job which trigger blocks the loop (from this thread).

        Blame is exact: a trigger is charged only when one synchronous step of its
        own code (a trio task step, an asyncio task step, timed as it runs) has run
        for ``--block-report-after``; a loop that is merely slow, starved by many
        short steps, blames nobody.
        """
        reported: tuple[int | None, float] | None = None
        while not self.closed:
            time.sleep(TICK_EVERY)
            step = self.step
            if step is None or step is reported:
                continue
            trigger_id, began = step
            if trigger_id is None:
                continue
            blocked_for = time.monotonic() - began
            if blocked_for < self.args.block_report_after:
                continue
            reported = step
            try:
                self.comms.send(LoopBlocked(trigger_id=trigger_id, seconds=blocked_for), timeout=5)
            except actors.ChannelClosed:
                return


class TrioStepTimer(trio.abc.Instrument):
    """Times each trio task step, and knows which trigger (if any) the task runs:
    the trigger's own task, or a task in a nursery under it (a gather)."""

    def __init__(self, runner: Runner) -> None:
        self.runner = runner
        self.trigger_of: dict[trio.lowlevel.Task, int] = {}  # each trigger's own task

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


async def run(runner: Runner, host: RunnerHost) -> None:
    """The runner's main loop, the same on either host: sync with the job (the
    heartbeat), cancel and start what it answers, sleep, again, until the channel
    closes. The watchdog thread watches the loop meanwhile."""
    comms, args = runner.comms, runner.args
    threading.Thread(target=runner.watch_the_loop, daemon=True).start()
    try:
        while True:
            reply = await comms.asend(runner.sync_message())
            runner.cancel(reply.cancel)
            for spec in reply.start:
                trigger = Trigger(spec.id, spec.kind, spec.attempt, comms, host, runner.stats, args.block_seconds,
                                  host.caller)
                runner.running[spec.id] = host.start(spec.id, trigger)
            runner.started()
            await host.sleep(SYNC_EVERY)
    except actors.ChannelClosed:
        pass  # the job is gone or done with us: end
    finally:
        runner.closed = True


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
            task = trio.lowlevel.current_task()
            self.timer.trigger_of[task] = trigger_id
            try:
                with scope:
                    deadline = trio.move_on_after(self.runner.args.trigger_timeout)
                    await run_one_trigger(self.runner, trigger_id, trigger, deadline)
            finally:
                del self.timer.trigger_of[task]

        self.nursery.start_soon(run_trigger)
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


async def trio_main(sock: socket.socket, args: argparse.Namespace) -> None:
    async with actors.comms_in_thread(sock, CODEC, timeout=10, heartbeat=Sync) as comms:
        runner = Runner(comms, args)
        async with TrioHost.open(runner) as host:
            await run(runner, host)


async def asyncio_main(sock: socket.socket, args: argparse.Namespace) -> None:
    async with actors.comms_in_thread(sock, CODEC, timeout=10, heartbeat=Sync) as comms:
        runner = Runner(comms, args)
        async with AsyncioHost.open(runner) as host:
            await run(runner, host)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m examples.triggerer.runner",
        description="The runner subprocess; the job starts it with its socket on fd 0.",
    )
    parser.add_argument("--host", choices=("trio", "asyncio"), default="trio",
                        help="the event loop the triggers run on (default: %(default)s)")
    parser.add_argument("--capacity", type=int, default=1000,
                        help="most triggers run at once (default: %(default)s)")
    parser.add_argument("--trigger-timeout", type=float, default=3.0,
                        help="a trigger's own deadline, in seconds (default: %(default)s)")
    parser.add_argument("--block-seconds", type=float, default=5.0,
                        help="how long the chaos kinds block the loop, in seconds (default: %(default)s)")
    parser.add_argument("--block-report-after", type=float, default=0.5,
                        help="a trigger step longer than this, in seconds, is reported as blocking the loop "
                             "(default: %(default)s)")
    args = parser.parse_args()
    sock = actors.supervisor_socket()  # fd 0, as the supervisor passes it
    if args.host == "trio":
        trio.run(trio_main, sock, args)
    else:
        asyncio.run(asyncio_main(sock, args))


if __name__ == "__main__":
    main()
