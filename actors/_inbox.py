"""The actor's inbox: how other threads hand work to the actor's trio thread.

A thread queues an operation on a reply slot (submit it, or abandon it) and the
trio loop runs the queue in batches: the thread pokes the loop
(``TrioToken.run_sync_soon``, a write to its wakeup socket) only when no drain is
already scheduled, not once per call.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from ._slots import ReplySlot

__all__ = ["Inbox"]


class Inbox:
    """Operations from other threads, run on the actor's thread in batches."""

    def __init__(self, after_drain: Callable[[], None]) -> None:
        self._queue: collections.deque[tuple[Callable[[ReplySlot], None], ReplySlot]] = collections.deque()
        self._scheduled = False
        self._after_drain = after_drain
        self.token: trio.lowlevel.TrioToken | None = None  # set when the actor runs

    def post(self, operation: Callable[[ReplySlot], None], slot: ReplySlot) -> None:
        """Run ``operation(slot)`` on the actor's thread, soon. Callable from any thread.

        Raises:
            trio.RunFinishedError: the actor's trio run is over; nothing will run.
        """
        self._queue.append((operation, slot))
        if not self._scheduled:
            self._schedule()

    def post_all(self, operation: Callable[[ReplySlot], None], slots: list[ReplySlot]) -> None:
        """:meth:`post` for each of ``slots``, in order, with one wake-up at most.

        Raises:
            trio.RunFinishedError: the actor's trio run is over; nothing will run.
        """
        self._queue.extend([(operation, slot) for slot in slots])
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
