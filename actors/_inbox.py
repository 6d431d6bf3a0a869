"""The actor's inbox: how other threads hand work to the actor's trio thread.

A thread queues an operation on a reply slot (submit it, or give it up) and the
trio loop runs the queue in batches: the thread pokes the loop
(``TrioToken.run_sync_soon``, a write to its wakeup socket) only when no drain is
already scheduled, not once per call.

A coroutine on an asyncio loop batches one step earlier: what a loop's coroutines
post during one iteration is handed over together at the next (a ``call_soon``), so
a burst of calls from that loop costs one poke and one switch of the GIL to the
actor's thread, not one per call while the actor drains as fast as they come. That
batch is held by the loop's own ``call_soon`` handle; the inbox keeps only a weak
reference to it (per thread, for the rest of the iteration), so a loop that stops
in that iteration is never kept alive by the channel.

Once the actor's trio run is over nothing will drain: every queued slot, whoever
queued it, fails at once with ``ChannelClosed`` (``undeliverable``), so no caller
racing with the close waits forever.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from ._slots import ReplySlot

__all__ = ["Inbox"]

Operation = Callable[["ReplySlot"], None]


class _LoopBatch:
    """What one asyncio loop's coroutines posted in its current iteration."""

    __slots__ = ("__weakref__", "loop", "posts")

    def __init__(self, loop: asyncio.AbstractEventLoop | None) -> None:
        self.loop = loop  # None once handed over: the next post starts a new batch
        self.posts: list[tuple[Operation, ReplySlot]] = []


class Inbox:
    """Operations from other threads, run on the actor's thread in batches.

    Args:
        after_drain: run on the actor's thread after each batch.
        undeliverable: called (on the poster's thread) with each slot that can no
            longer be handed over because the actor's trio run is over.
    """

    def __init__(self, after_drain: Callable[[], None], undeliverable: Operation) -> None:
        self._queue: collections.deque[tuple[Operation, ReplySlot]] = collections.deque()
        self._scheduled = False
        self._after_drain = after_drain
        self._undeliverable = undeliverable
        # Per thread: a weak reference to the batch of the asyncio loop running on
        # it, for the rest of that loop's iteration (only that thread touches it).
        self._current_batch = threading.local()
        self.token: trio.lowlevel.TrioToken | None = None  # set when the actor runs

    def post(self, operation: Operation, slot: ReplySlot) -> None:
        """Run ``operation(slot)`` on the actor's thread, soon. Callable from any thread.

        Never raises: if the actor's trio run is over, every queued slot (this one
        included) goes to ``undeliverable`` instead.
        """
        self._queue.append((operation, slot))
        if not self._scheduled:
            self._schedule()

    def post_from_loop(self, loop: asyncio.AbstractEventLoop, operation: Operation, slot: ReplySlot) -> None:
        """:meth:`post` from a coroutine running on ``loop``: handed over with the rest
        of this iteration's posts, at the loop's next iteration. Never raises: a slot
        that can no longer be handed over goes to ``undeliverable``."""
        current = self._current_batch
        ref = getattr(current, "ref", None)
        batch = None if ref is None else ref()
        if batch is None or batch.loop is not loop:
            batch = _LoopBatch(loop)
            current.ref = weakref.ref(batch)
            loop.call_soon(self._hand_over, batch)  # the loop's handle holds the batch
        batch.posts.append((operation, slot))

    def _hand_over(self, batch: _LoopBatch) -> None:
        batch.loop = None
        self._queue.extend(batch.posts)
        if not self._scheduled:
            self._schedule()

    def _schedule(self) -> None:
        # Set before scheduling, cleared by the drain before it reads the queue: an
        # operation appended after the drain started either is seen by that drain or
        # finds the flag cleared and schedules another.
        self._scheduled = True
        assert self.token is not None
        try:
            self.token.run_sync_soon(self._drain, idempotent=True)
        except trio.RunFinishedError:
            # Cleared before the queue is emptied, for the same reason: a poster that
            # saw the flag set appended before this point, so its slot is failed below.
            self._scheduled = False
            self._fail_queued()

    def _fail_queued(self) -> None:
        """The actor's run is over: fail every queued slot, whichever thread queued it."""
        queue = self._queue
        while True:
            try:
                _, slot = queue.popleft()
            except IndexError:  # empty (another thread may be emptying it too)
                return
            self._undeliverable(slot)

    def _drain(self) -> None:
        self._scheduled = False
        queue = self._queue
        while True:
            try:
                operation, slot = queue.popleft()
            except IndexError:  # empty (after the run, a poster may be emptying it too)
                break
            operation(slot)
        self._after_drain()
