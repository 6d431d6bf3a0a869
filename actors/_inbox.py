"""The actor's inbox: how other threads hand work to the actor's trio thread.

A thread queues an operation on a reply slot (submit it, or abandon it) and the
trio loop runs the queue in batches: the thread pokes the loop
(``TrioToken.run_sync_soon``, a write to its wakeup socket) only when no drain is
already scheduled, not once per call.

A coroutine on an asyncio loop batches one step earlier: what a loop's coroutines
post during one iteration is handed over together at the next (a ``call_soon``), so
a burst of calls from that loop costs one poke and one switch of the GIL to the
actor's thread, not one per call while the actor drains as fast as they come.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from ._slots import ReplySlot

__all__ = ["Inbox"]

Operation = Callable[["ReplySlot"], None]


class Inbox:
    """Operations from other threads, run on the actor's thread in batches.

    Args:
        after_drain: run on the actor's thread after each batch.
        undeliverable: called (on the poster's thread) with each slot a loop's
            batch could not hand over because the actor's trio run is over.
    """

    def __init__(self, after_drain: Callable[[], None], undeliverable: Operation) -> None:
        self._queue: collections.deque[tuple[Operation, ReplySlot]] = collections.deque()
        self._scheduled = False
        self._after_drain = after_drain
        self._undeliverable = undeliverable
        # Posted by each asyncio loop's coroutines in its current iteration; only
        # that loop's thread touches its list.
        self._from_loops: dict[asyncio.AbstractEventLoop, list[tuple[Operation, ReplySlot]]] = {}
        self.token: trio.lowlevel.TrioToken | None = None  # set when the actor runs

    def post(self, operation: Operation, slot: ReplySlot) -> None:
        """Run ``operation(slot)`` on the actor's thread, soon. Callable from any thread.

        Raises:
            trio.RunFinishedError: the actor's trio run is over; nothing will run.
        """
        self._queue.append((operation, slot))
        if not self._scheduled:
            self._schedule()

    def post_from_loop(self, loop: asyncio.AbstractEventLoop, operation: Operation, slot: ReplySlot) -> None:
        """:meth:`post` from a coroutine running on ``loop``: handed over with the rest
        of this iteration's posts, at the loop's next iteration. Never raises: a slot
        that can no longer be handed over goes to ``undeliverable``."""
        pending = self._from_loops.get(loop)
        if pending is None:
            pending = self._from_loops[loop] = []
            loop.call_soon(self._hand_over, loop)
        pending.append((operation, slot))

    def _hand_over(self, loop: asyncio.AbstractEventLoop) -> None:
        pending = self._from_loops.pop(loop)
        self._queue.extend(pending)
        if self._scheduled:
            return
        try:
            self._schedule()
        except trio.RunFinishedError:
            for _, slot in pending:
                self._undeliverable(slot)

    def _schedule(self) -> None:
        # Set before scheduling, cleared by the drain before it reads the queue: an
        # operation appended after the drain started either is seen by that drain or
        # finds the flag cleared and schedules another.
        self._scheduled = True
        assert self.token is not None
        try:
            self.token.run_sync_soon(self._drain, idempotent=True)
        except trio.RunFinishedError:
            self._scheduled = False
            self._queue.clear()  # nobody is left to run them
            raise

    def _drain(self) -> None:
        self._scheduled = False
        queue = self._queue
        while queue:
            operation, slot = queue.popleft()
            operation(slot)
        self._after_drain()
