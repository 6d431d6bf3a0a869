"""Trigger kinds: what trigger code does, from every kind of caller.

Each trigger makes between 3 and 30 requests to the job and checks that every reply
is its own by content (a variable's value names its key, a connection's host names
its id, task states name the run ids asked for); a misroute is counted and fails the
run. The same kinds run on a trio runner and on an asyncio runner: they reach their
host only through :class:`Host`.
"""

from __future__ import annotations

import asyncio
import functools
import math
import random
import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

import greenback
from asgiref.sync import async_to_sync

import actors

from .messages import (
    ConnectionResult,
    GetConnection,
    GetTaskStates,
    GetVariable,
    TaskStatesResult,
    VariableResult,
)

T = TypeVar("T")

KINDS = ("timer", "trio_call", "thread_send", "async_to_sync", "greenback", "asyncio_loop", "fails", "hangs")
CHAOS_KINDS = ("blocks_once", "poison")
FAILING_KINDS = frozenset({"fails", "hangs", "poison"})


class Host(Protocol):
    """What a trigger needs from the loop it runs on."""

    async def sleep(self, seconds: float) -> None: ...

    async def to_thread(self, fn: Callable[[], T]) -> T: ...

    async def gather(self, calls: list[Callable[[], Awaitable[Any]]]) -> None: ...


class Misrouted(AssertionError):
    """A reply that is not the caller's own: the bug this project exists to prevent."""


def p99(values: list[float]) -> float:
    """The 99th percentile of ``values`` (0 for none)."""
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[98]


class Stats:
    """Requests by caller kind and misroutes, reported to the job in each sync."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.misroutes = 0
        self.latencies: list[float] = []  # seconds per request since the last take

    def take(self) -> tuple[dict[str, int], int, float]:
        """Requests by caller, misroutes, and the 99th percentile request latency
        (seconds) since the last take; each counter starts again."""
        requests, misroutes = dict(self.requests), self.misroutes
        latencies, self.latencies = self.latencies, []
        self.requests.clear()
        self.misroutes = 0
        return requests, misroutes, p99(latencies)


def request_for(trigger_id: int, i: int) -> Any:
    """The i-th request of a trigger: one of three kinds, keyed by the trigger."""
    key = f"t{trigger_id}-{i}"
    match i % 3:
        case 0:
            return GetVariable(key=key)
        case 1:
            return GetConnection(conn_id=key)
        case _:
            return GetTaskStates(dag_id=key, run_ids=[f"{key}-a", f"{key}-b"])


def check(request: Any, reply: Any, stats: Stats) -> None:
    """Raise Misrouted unless ``reply`` answers exactly ``request``."""
    ok = (
        (isinstance(request, GetVariable) and isinstance(reply, VariableResult) and reply.key == request.key
         and reply.value == f"value-of-{request.key}")
        or (isinstance(request, GetConnection) and isinstance(reply, ConnectionResult)
            and reply.conn_id == request.conn_id and reply.host == f"host-{request.conn_id}")
        or (isinstance(request, GetTaskStates) and isinstance(reply, TaskStatesResult)
            and reply.dag_id == request.dag_id and sorted(reply.states) == sorted(request.run_ids))
    )
    if not ok:
        stats.misroutes += 1
        raise Misrouted(f"{request!r} got {reply!r}")


class Trigger:
    """One run of one trigger: its id, attempt and kind, and how to reach the job."""

    def __init__(
        self, trigger_id: int, kind: str, attempt: int, comms: actors.Comms, host: Host, stats: Stats,
        block_seconds: float, task_caller: str,
    ) -> None:
        self.task_caller = task_caller  # "trio_task" or "asyncio_task": the runner's own loop
        self.trigger_id = trigger_id
        self.kind = kind
        self.attempt = attempt
        self.comms = comms
        self.host = host
        self.stats = stats
        self.block_seconds = block_seconds
        self.rng = random.Random(trigger_id * 1000 + attempt)
        self.count = self.rng.randint(3, 30)

    async def ask(self, i: int, caller: str) -> None:
        request = request_for(self.trigger_id, i)
        self.stats.requests[caller] += 1
        started = time.monotonic()
        reply = await self.comms.asend(request)
        self.stats.latencies.append(time.monotonic() - started)
        check(request, reply, self.stats)

    def ask_blocking(self, i: int, caller: str, send: Callable[[Any], Any]) -> None:
        request = request_for(self.trigger_id, i)
        self.stats.requests[caller] += 1
        started = time.monotonic()
        reply = send(request)
        self.stats.latencies.append(time.monotonic() - started)  # (list.append is atomic)
        check(request, reply, self.stats)

    def ask_all_blocking(self, caller: str, send: Callable[[Any], Any]) -> None:
        for i in range(self.count):
            self.ask_blocking(i, caller, send)

    async def run(self) -> str:
        """Run the trigger to its end: its result, or an exception for a failure."""
        kind, n = self.kind, self.count
        if kind == "timer":
            for i in range(n):
                await self.ask(i, self.task_caller)
                await self.host.sleep(self.rng.uniform(0.0, 0.05))
        elif kind == "trio_call":
            await self.host.gather([functools.partial(self.ask, i, self.task_caller) for i in range(n)])
        elif kind == "thread_send":
            await self.host.to_thread(functools.partial(self.ask_all_blocking, "thread", self.comms.send))
        elif kind == "async_to_sync":
            send = async_to_sync(self.comms.asend)
            await self.host.to_thread(functools.partial(self.ask_all_blocking, "async_to_sync", send))
        elif kind == "greenback":
            await greenback.ensure_portal()
            for i in range(n):  # sync code on the loop thread, awaiting through the portal
                self.ask_blocking(i, "greenback", lambda request: greenback.await_(self.comms.asend(request)))
        elif kind == "asyncio_loop":

            async def on_library_loop() -> None:
                await asyncio.gather(*(self.ask(i, "asyncio_loop") for i in range(n)))

            await self.host.to_thread(lambda: asyncio.run(on_library_loop()))
        elif kind == "fails":
            for i in range(3):
                await self.ask(i, self.task_caller)
            raise RuntimeError("this trigger fails on purpose")
        elif kind == "hangs":
            for i in range(3):
                await self.ask(i, self.task_caller)
            await self.host.sleep(math.inf)
        elif kind in ("blocks_once", "poison"):
            # blocks_once blocks as soon as it starts (its first attempt only); poison
            # after its requests, on every attempt.
            if kind == "blocks_once" and self.attempt == 1:
                time.sleep(self.block_seconds)  # noqa: ASYNC251 - the chaos: sync code blocks the loop
            for i in range(3):
                await self.ask(i, self.task_caller)
            if kind == "poison":
                time.sleep(self.block_seconds)  # noqa: ASYNC251 - the chaos: sync code blocks the loop
        else:
            raise ValueError(f"unknown trigger kind {kind!r}")
        return f"{kind} made {n if kind not in ('fails', 'hangs', 'blocks_once', 'poison') else 3} requests"
