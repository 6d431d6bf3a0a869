"""The runner: the subprocess that executes triggers (``python -m examples.triggerer.runner``).

Its end of the socketpair is fd 0. The channel lives on its own thread
(``comms_in_thread``), so that a trigger blocking the runner's loop cannot stall it:
the runner's watchdog thread can still tell the job which trigger is to blame. The
main loop syncs with the job every half second (its heartbeat): it reports finished
triggers and receives triggers to start and to cancel. Two hosts run the same kinds:
a trio loop (default) and an asyncio loop, as an Airflow-style asyncio triggerer
would adopt trio-comms (their loops are :mod:`.hosts`). The runner ends when its
channel closes.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import attrs
import trio

import actors

from .hosts import TICK_EVERY, AsyncioHost, RunnerHost, TrioHost
from .kinds import Stats, Trigger
from .messages import CODEC, LoopBlocked, Sync, TriggerEvent

T = TypeVar("T")

SYNC_EVERY = 0.5


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
