"""Reply slots: how the actor hands a reply to a caller, wherever the caller runs.

A slot is a one-shot: the caller creates it with its packed request, the actor
resolves it once with a reply or an error. Two decisions are made on each slot,
each by whoever gets there first, so no call can have two fates even when its
caller runs on another thread:

- *take*: the writer takes the slot to write it, or the caller (giving up) takes it
  so that it is never written. That is what makes ``RequestTimeout.written`` exact.
- *claim*: the actor claims it to resolve it with a reply, or the caller claims it
  to give up (deadline or cancel). That is what makes a late reply and a timeout
  unable to both happen to one call.

Four kinds, one per way of waiting:

- :class:`TrioSlot`: a task of the actor's own trio run, parked with
  ``wait_task_rescheduled`` (no memory channel, no Event: about a microsecond).
- :class:`ThreadSlot`: a thread blocked on a lock the actor releases.
- :class:`AsyncioSlot`: a coroutine awaiting a future on its own loop.
- :class:`ForeignTrioSlot`: a task of *another* trio run, parked on its own run.

The cross-thread kinds are woken once per loop per batch of replies, not once per reply.
"""

from __future__ import annotations

import asyncio
import contextlib
from _thread import allocate_lock as _allocate_lock
from typing import Any

import outcome
import trio

__all__ = ["AsyncioSlot", "ForeignTrioSlot", "ReplySlot", "ThreadSlot", "TrioSlot", "WakeBatch", "flush_wakeups"]


_reschedule = trio.lowlevel.reschedule
_Value = outcome.Value

WakeBatch = dict[Any, list["CrossThreadSlot"]]
"""Cross-thread slots resolved since the last flush, by the loop that wakes them."""


class ReplySlot:
    """What every slot has: the packed request fields (body, and carrier if any),
    the request's class (for the declared reply type), its frame id once written,
    and whether the actor has it waiting for room under ``max_in_flight``."""

    __slots__ = ("field_count", "fields", "frame_id", "request_class", "timed_out", "waiting")

    # Set by each kind's own __init__ (not through super(): one call less per request).
    fields: bytes
    field_count: int
    request_class: type
    frame_id: int  # 0 until written (requests are numbered from 1)
    waiting: bool
    timed_out: bool
    """Set only by a caller that gave up, before it hands the slot to the actor's
    ``gave_up``: its deadline passed (True) or it was cancelled (False)."""

    eager = True
    """Write this request at once when nothing is in flight, rather than with the rest of
    the scheduler pass: for callers woken one by one. Callers woken once per batch
    (an asyncio loop, another trio run) are not eager: an early reply would split
    their batch, and each batch costs a wake-up of their loop."""

    def try_take(self) -> bool:
        """The writer's take: False if the caller gave up before it could be written."""
        raise NotImplementedError

    def try_claim(self) -> bool:
        """Take the right to decide this call's outcome; False if already taken."""
        raise NotImplementedError

    def gave_up(self) -> bool:
        """True once the caller has claimed the slot (only asked while it is queued)."""
        raise NotImplementedError

    def resolve(self, value: Any, error: BaseException | None, wake: WakeBatch) -> None:
        """Hand the outcome to the caller. Only after a successful :meth:`try_claim`."""
        raise NotImplementedError


class TrioSlot(ReplySlot):
    """A slot for a task of the actor's own trio run: everything happens on one thread."""

    __slots__ = ("claimed", "task")

    def __init__(self, fields: bytes, field_count: int, request_class: type, task: trio.lowlevel.Task) -> None:
        # ReplySlot's fields, set here (see ReplySlot).
        self.fields = fields
        self.field_count = field_count
        self.request_class = request_class
        self.frame_id = 0
        self.waiting = False
        self.task = task
        self.claimed = False

    def abort(self, _: object) -> trio.lowlevel.Abort:
        """``wait_task_rescheduled``'s abort function: the caller was cancelled (or its
        deadline passed), and hands the slot to the actor's ``gave_up`` as it unwinds.

        A slot the actor resolved is never aborted, so this claim always wins. (A
        method rather than a closure per call: it is part of every trio call's cost.)
        """
        self.claimed = True
        return trio.lowlevel.Abort.SUCCEEDED

    def try_take(self) -> bool:
        return not self.claimed

    def try_claim(self) -> bool:
        if self.claimed:
            return False
        self.claimed = True
        return True

    def gave_up(self) -> bool:
        return self.claimed

    def resolve(self, value: Any, error: BaseException | None, wake: WakeBatch) -> None:
        _reschedule(self.task, _Value(value) if error is None else outcome.Error(error))


class CrossThreadSlot(ReplySlot):
    """A slot whose caller waits on another thread: the take and the claim are locks."""

    __slots__ = ("_claim", "_done", "_taken", "error", "value")

    def __init__(self, fields: bytes, field_count: int, request_class: type) -> None:
        # ReplySlot's fields, set here (see ReplySlot); the host's thread pays for it.
        self.fields = fields
        self.field_count = field_count
        self.request_class = request_class
        self.frame_id = 0
        self.waiting = False
        self._claim = _allocate_lock()
        self._taken = _allocate_lock()
        done = self._done = _allocate_lock()
        done.acquire()
        self.value: Any = None
        self.error: BaseException | None = None

    def try_take(self) -> bool:
        return self._taken.acquire(blocking=False)

    def written_frame_id(self) -> int | None:
        """After the caller's claim: the frame id it was written as, or ``None``.

        The caller takes the slot if the writer has not: then it is never written.
        The writer sets ``frame_id`` before its own take, so a failed take here sees it.
        """
        if self._taken.acquire(blocking=False):
            return None
        return self.frame_id

    def try_claim(self) -> bool:
        return self._claim.acquire(blocking=False)

    def gave_up(self) -> bool:
        # The actor claims a slot only as it resolves and forgets it, so a claim
        # seen while the slot is still queued is the caller's.
        return self._claim.locked()

    def resolve(self, value: Any, error: BaseException | None, wake: WakeBatch) -> None:
        self.value = value
        self.error = error
        self._done.release()
        key = self.wake_key()
        if key is not None:
            batch = wake.get(key)
            if batch is None:
                wake[key] = [self]
            else:
                batch.append(self)

    def wake_key(self) -> Any:
        """The loop that wakes this slot's caller, or ``None`` if it needs no waking."""
        return None

    @staticmethod
    def wake_all(key: Any, slots: list[CrossThreadSlot]) -> None:
        """Wake every caller in ``slots`` (all sharing ``key``), from the actor's thread."""

    def wait_resolved(self, timeout: float = -1) -> bool:
        """Block until the actor has stored the outcome; False on timeout."""
        return self._done.acquire(timeout=timeout)

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class ThreadSlot(CrossThreadSlot):
    """A slot for a plain thread blocked in ``send``: the stored outcome wakes it."""

    __slots__ = ()


class AsyncioSlot(CrossThreadSlot):
    """A slot for a coroutine on an asyncio loop (any thread) awaiting ``asend``."""

    __slots__ = ("future", "loop")
    eager = False

    def __init__(self, fields: bytes, field_count: int, request_class: type, loop: asyncio.AbstractEventLoop) -> None:
        CrossThreadSlot.__init__(self, fields, field_count, request_class)  # (no super() lookup)
        self.loop = loop
        self.future = loop.create_future()

    def wake_key(self) -> Any:
        return self.loop

    @staticmethod
    def wake_all(key: Any, slots: list[CrossThreadSlot]) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is left to wake
            key.call_soon_threadsafe(_wake_futures, slots)


def _wake_futures(slots: list[AsyncioSlot]) -> None:
    for slot in slots:
        if not slot.future.done():
            slot.future.set_result(None)


class ForeignTrioSlot(CrossThreadSlot):
    """A slot for a task of another trio run (another thread), parked on its own run."""

    __slots__ = ("task", "token")
    eager = False

    def __init__(
        self,
        fields: bytes,
        field_count: int,
        request_class: type,
        task: trio.lowlevel.Task,
        token: trio.lowlevel.TrioToken,
    ) -> None:
        super().__init__(fields, field_count, request_class)
        self.task = task
        self.token = token

    def abort(self, _: object) -> trio.lowlevel.Abort:
        """The caller was cancelled: give up, unless the reply is already on its way."""
        if self.try_claim():
            return trio.lowlevel.Abort.SUCCEEDED
        return trio.lowlevel.Abort.FAILED  # resolved: its reschedule is coming

    def wake_key(self) -> Any:
        return self.token

    @staticmethod
    def wake_all(key: Any, slots: list[CrossThreadSlot]) -> None:
        with contextlib.suppress(trio.RunFinishedError):  # that run is over: nobody to wake
            key.run_sync_soon(_reschedule_all, slots)


def _reschedule_all(slots: list[ForeignTrioSlot]) -> None:
    for slot in slots:
        trio.lowlevel.reschedule(slot.task)


def flush_wakeups(wake: WakeBatch) -> None:
    """Wake every loop that has resolved slots: one thread-safe call per loop."""
    for key, slots in wake.items():
        slots[0].wake_all(key, slots)
    wake.clear()
