"""Reply slots: how the actor hands a reply to a caller, wherever the caller runs.

A slot is a one-shot: the caller creates it with its packed request, the actor
resolves it once with a reply or an error. Whoever *claims* a slot first decides
its fate: the actor when it resolves it, the caller when it gives up (deadline or
cancel). The claim is what makes a late reply and a timeout unable to both happen
to one call, even when the caller runs on another thread.

Three kinds, one per way of waiting:

- :class:`TrioSlot`: a task of the actor's own trio run, parked with
  ``wait_task_rescheduled`` (no memory channel, no Event: about a microsecond).
- :class:`ThreadSlot`: a thread blocked on a lock the actor releases.
- :class:`AsyncioSlot`: a coroutine awaiting a future on its own loop; the actor
  wakes each loop once per batch of replies, not once per reply.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import outcome
import trio

if TYPE_CHECKING:
    from ._comms import CommsActor

__all__ = ["AsyncioSlot", "ReplySlot", "ThreadSlot", "TrioSlot", "WakeBatch"]


WakeBatch = dict[asyncio.AbstractEventLoop, list["AsyncioSlot"]]
"""asyncio slots resolved since the last flush, by loop (one wake-up per loop)."""


class ReplySlot:
    """What every slot has: the packed request, and whether the actor has it waiting
    for room under ``max_in_flight`` (only the actor's thread reads or writes that)."""

    __slots__ = ("body", "waiting")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.waiting = False

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

    __slots__ = ("actor", "claimed", "task")

    def __init__(self, body: bytes, task: trio.lowlevel.Task, actor: CommsActor) -> None:
        super().__init__(body)
        self.task = task
        self.actor = actor
        self.claimed = False

    def abort(self, _: object) -> trio.lowlevel.Abort:
        """``wait_task_rescheduled``'s abort function: the caller was cancelled.

        A slot the actor resolved is never aborted, so this claim always wins. (A
        method rather than a closure per call: it is part of every trio call's cost.)
        """
        self.claimed = True
        self.actor.abandon(self)
        return trio.lowlevel.Abort.SUCCEEDED

    def try_claim(self) -> bool:
        if self.claimed:
            return False
        self.claimed = True
        return True

    def gave_up(self) -> bool:
        return self.claimed

    def resolve(self, value: Any, error: BaseException | None, wake: WakeBatch) -> None:
        trio.lowlevel.reschedule(self.task, outcome.Value(value) if error is None else outcome.Error(error))


class _CrossThreadSlot(ReplySlot):
    """A slot whose caller waits on another thread: the claim is a lock."""

    __slots__ = ("_claim", "_done", "error", "value")

    def __init__(self, body: bytes) -> None:
        super().__init__(body)
        self._claim = threading.Lock()
        self._done = threading.Lock()
        self._done.acquire()
        self.value: Any = None
        self.error: BaseException | None = None

    def try_claim(self) -> bool:
        return self._claim.acquire(blocking=False)

    def gave_up(self) -> bool:
        # The actor claims a slot only as it resolves and forgets it, so a claim
        # seen while the slot is still queued is the caller's.
        return self._claim.locked()

    def _store(self, value: Any, error: BaseException | None) -> None:
        self.value = value
        self.error = error
        self._done.release()

    def wait_resolved(self, timeout: float = -1) -> bool:
        """Block until the actor has stored the outcome; False on timeout."""
        return self._done.acquire(timeout=timeout)

    def unwrap(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class ThreadSlot(_CrossThreadSlot):
    """A slot for a plain thread blocked in ``send``."""

    __slots__ = ()

    def resolve(self, value: Any, error: BaseException | None, wake: WakeBatch) -> None:
        self._store(value, error)


class AsyncioSlot(_CrossThreadSlot):
    """A slot for a coroutine on an asyncio loop (any thread) awaiting ``asend``."""

    __slots__ = ("future", "loop")

    def __init__(self, body: bytes, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(body)
        self.loop = loop
        self.future: asyncio.Future[None] = loop.create_future()

    def resolve(self, value: Any, error: BaseException | None, wake: WakeBatch) -> None:
        self._store(value, error)
        batch = wake.get(self.loop)
        if batch is None:
            wake[self.loop] = [self]
        else:
            batch.append(self)


def _wake_futures(slots: list[AsyncioSlot]) -> None:
    for slot in slots:
        if not slot.future.done():
            slot.future.set_result(None)


def flush_wakeups(wake: WakeBatch) -> None:
    """Wake every asyncio loop that has resolved slots: one thread-safe call per loop."""
    for loop, slots in wake.items():
        try:
            loop.call_soon_threadsafe(_wake_futures, slots)
        except RuntimeError:
            pass  # that loop is closed: nobody is left to wake
    wake.clear()
