"""The channel's states and the one place that moves between them.

Everything that decides where a channel is in its life lives here, as h11 keeps its
state machine in one module: the states, the transitions allowed between them, the
cause of the close, and the signal that the stream is closed. The actor asks
:attr:`Lifecycle.closing` whenever it needs "is this channel still usable?", and
nothing else answers that question.
"""

from __future__ import annotations

import enum
import os
import weakref
from typing import Final

from ._cross_loop import CrossLoopEvent
from ._observable import Observable

__all__ = ["ChannelState", "Lifecycle"]


class ChannelState(enum.Enum):
    """Where a channel is in its life. Observable as ``comms.state`` (an :class:`~actors.Observable`)."""

    AWAITING_HELLO = "awaiting_hello"
    """Opened with ``expect_hello=True``: nothing is written until the peer's hello."""
    OPEN = "open"
    """Calls are accepted and the actor is reading and writing."""
    CLOSING = "closing"
    """The close has begun: every call already fails; the stream is being closed."""
    CLOSED = "closed"
    """The stream is closed; ``comms.close_cause`` says why."""


_TRANSITIONS: Final = {
    ChannelState.AWAITING_HELLO: frozenset({ChannelState.OPEN, ChannelState.CLOSING}),
    ChannelState.OPEN: frozenset({ChannelState.CLOSING}),
    ChannelState.CLOSING: frozenset({ChannelState.CLOSED}),
    ChannelState.CLOSED: frozenset(),
}


_open: weakref.WeakSet[Lifecycle] = weakref.WeakSet()
"""Every channel of this process not yet CLOSED (see :meth:`Lifecycle.forked`)."""


def _after_fork_in_child() -> None:
    """A forked child has copies of this process's channels but none of their actors'
    threads: close every copy, so a call there fails at once instead of waiting."""
    parent, child = os.getppid(), os.getpid()
    for lifecycle in list(_open):
        lifecycle.forked(
            RuntimeError(
                f"this channel belongs to process {parent}; process {child} is a fork of it and "
                "cannot use it: open a channel of its own in the child"
            )
        )


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Lifecycle:
    """A channel's state, its close cause, and every transition. Actor thread only,
    except :meth:`wait_closed`, which any trio run or asyncio loop may await."""

    def __init__(self, *, expect_hello: bool) -> None:
        first = ChannelState.AWAITING_HELLO if expect_hello else ChannelState.OPEN
        self.observable: Observable[ChannelState] = Observable(first)
        self.cause: BaseException | None = None
        # Plain flags beside the observable value, kept by the transitions below:
        # the actor asks them once per frame and per call.
        self.awaiting_hello = expect_hello
        self.closing = False
        """True from the moment the close begins: no call can succeed any more."""
        self._closed = CrossLoopEvent()
        _open.add(self)

    @property
    def state(self) -> ChannelState:
        return self.observable.value

    def _move(self, new: ChannelState) -> None:
        old = self.observable.value
        if new not in _TRANSITIONS[old]:
            raise AssertionError(f"channel state cannot go from {old.name} to {new.name}")
        self.awaiting_hello = new is ChannelState.AWAITING_HELLO
        self.closing = new in (ChannelState.CLOSING, ChannelState.CLOSED)
        self.observable._set(new)

    def hello_received(self) -> None:
        """AWAITING_HELLO -> OPEN."""
        self._move(ChannelState.OPEN)

    def begin_close(self, cause: BaseException) -> bool:
        """-> CLOSING with ``cause``; False if the close had already begun (the first
        cause is the one every caller sees)."""
        if self.cause is not None:
            return False
        self.cause = cause
        self._move(ChannelState.CLOSING)
        return True

    def finish_close(self) -> None:
        """CLOSING -> CLOSED, once the stream is closed; wakes :meth:`wait_closed`."""
        self._move(ChannelState.CLOSED)
        self._closed.set()
        _open.discard(self)

    def forked(self, cause: BaseException) -> None:
        """-> CLOSED at once, in a child process that ``fork()`` copied this channel into.

        The actor's thread and trio run stayed in the parent, so nothing in the child
        could ever answer: every call there fails with ``ChannelClosed`` from
        ``cause`` (unless the channel had closed already, whose cause it keeps). Runs
        in the child's only thread, right after the fork; the observable value and the
        closed signal are fresh objects, because the parent's waiters (and any lock
        another thread held at the fork) were copied too and must not be touched.
        """
        if self.cause is None:
            self.cause = cause
        self.awaiting_hello = False
        self.closing = True
        self.observable = Observable(ChannelState.CLOSED)
        self._closed = CrossLoopEvent()
        self._closed.set()
        _open.discard(self)

    async def wait_open(self) -> None:
        """Wait (in the actor's run) until the hello has come or the close has begun."""
        await self.observable.wait_value(lambda state: state is not ChannelState.AWAITING_HELLO)

    async def wait_closed(self) -> None:
        """Wait, from any trio run or asyncio loop, until the stream is closed."""
        await self._closed.wait()
