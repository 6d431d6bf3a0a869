"""An event set on one thread and awaited from any trio run or asyncio loop.

trio's ``Event`` belongs to one trio run and asyncio's to one loop; a channel's
state changes on the actor's thread while its host may wait on another thread, in
another trio run or on an asyncio loop. :class:`CrossLoopEvent` wakes each waiter on
its own loop (``TrioToken.run_sync_soon`` or ``loop.call_soon_threadsafe``), so no
waiter ever blocks its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

import trio

__all__ = ["CrossLoopEvent", "running_library"]


def running_library() -> str:
    """``"asyncio"`` or ``"trio"``: the library running the current coroutine.

    Raises:
        RuntimeError: called outside both.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        if trio.lowlevel.in_trio_task():
            return "trio"
        raise RuntimeError("must be awaited in a trio task or an asyncio coroutine") from None
    return "asyncio"


def _set_future(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class CrossLoopEvent:
    """A one-way flag: :meth:`set` from any thread, ``await wait()`` from any loop.

    ::

        done = CrossLoopEvent()
        ...                      # on any thread:  done.set()
        await done.wait()        # in a trio task or an asyncio coroutine
        done.wait_blocking()     # or in a plain thread
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._is_set = False
        self._waiters: list[Callable[[], None]] = []

    def is_set(self) -> bool:
        return self._is_set

    def set(self) -> None:
        """Set the flag and wake every waiter on its own loop. Idempotent."""
        with self._lock:
            if self._is_set:
                return
            self._is_set = True
            waiters, self._waiters = self._waiters, []
        for wake in waiters:
            wake()

    async def wait(self) -> None:
        """Wait until :meth:`set` has been called (returns at once if it has).

        Raises:
            RuntimeError: awaited outside trio and asyncio.
        """
        if running_library() == "asyncio":
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()

            def wake_asyncio() -> None:
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody is left to wake
                    loop.call_soon_threadsafe(_set_future, future)

            if self._register(wake_asyncio):
                try:
                    await future
                finally:
                    self._unregister(wake_asyncio)
            return
        token = trio.lowlevel.current_trio_token()
        event = trio.Event()

        def wake_trio() -> None:
            with contextlib.suppress(trio.RunFinishedError):
                token.run_sync_soon(event.set)

        if self._register(wake_trio):
            try:
                await event.wait()
            finally:
                self._unregister(wake_trio)
        else:
            await trio.lowlevel.checkpoint()

    def wait_blocking(self) -> None:
        """Block this thread until :meth:`set` has been called (for threads, not loops)."""
        done = threading.Event()
        if self._register(done.set):
            try:
                done.wait()
            finally:
                self._unregister(done.set)

    def _register(self, wake: Callable[[], None]) -> bool:
        with self._lock:
            if self._is_set:
                return False
            self._waiters.append(wake)
            return True

    def _unregister(self, wake: Callable[[], None]) -> None:
        with self._lock:
            if wake in self._waiters:
                self._waiters.remove(wake)
