"""The triggerer runner's ``SUPERVISOR_COMMS`` on one trio-comms actor."""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import actors
from actors._comms import _has_greenback_portal

from ._codec import AirflowCodec

__all__ = ["DEFAULT_TIMEOUT", "TriggerComms"]

DEFAULT_TIMEOUT = 300.0
"""Seconds a call waits for its reply by default. Airflow's supervisor answers one
request per loop iteration (about 100 a second) and may stall on its database: the
deadline is there for a supervisor that will never answer (it drops a request it
cannot decode), not to hurry a busy one."""


class TriggerComms:
    """What the runner and the task SDK call ``SUPERVISOR_COMMS``, on a comms actor
    that owns the socket in a thread of its own (:func:`actors.comms_in_thread`).

    Every request gets its own reply whatever asks: a trigger's coroutine on the
    runner's loop, a thread of ``sync_to_async``, another asyncio loop in a thread
    (``asyncio.to_thread`` plus ``async_to_sync``), or sync code on the runner's
    loop thread (through a greenback portal without blocking the loop; without one
    it blocks that thread for one round trip, bounded by the deadline). A caller
    cancelled after its request was written leaves nothing in the stream for the
    next one. Errors come as Airflow raises them: an error reply is
    ``AirflowRuntimeError(ErrorResponse(...))``; no reply within the deadline is
    :class:`actors.RequestTimeout`; a closed channel :class:`actors.ChannelClosed`.

    Built by :meth:`open`, which the patched ``TriggerRunner.init_comms`` calls.
    """

    def __init__(self, threaded: actors.ThreadedComms, comms: actors.Comms, loop: asyncio.AbstractEventLoop) -> None:
        self._threaded = threaded
        self._comms = comms
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._closed = False
        # Airflow 3.3's arun polls the reader task: done means "Supervisor connection
        # lost". Here it is a watcher of the channel; cancelling it (arun's finally
        # does) closes nothing, so the triggers' clean-up requests are still answered.
        self._reader_task: asyncio.Task[None] = loop.create_task(comms.wait_closed(), name="trio-comms closed")

    @classmethod
    async def open(cls, sock: socket.socket, *, timeout: float | None = DEFAULT_TIMEOUT) -> TriggerComms:
        """Start the actor on ``sock`` (the runner's fd 0), wait for the supervisor's
        hello (``StartTriggerer``, id 0) without blocking the loop, and return the
        comms, its hello in :attr:`hello`.

        Raises:
            actors.HelloTimeout: no hello within 10 s.
            Exception: whatever :func:`actors.comms_in_thread` raises on entry.
        """
        from airflow.jobs.triggerer_job_runner import ToTriggerRunner
        from airflow.sdk.execution_time.comms import _new_encoder
        from pydantic import TypeAdapter

        codec = AirflowCodec(TypeAdapter(ToTriggerRunner), _new_encoder())
        threaded = actors.comms_in_thread(sock, codec, expect_hello=True, timeout=timeout)
        comms = await threaded.__aenter__()
        return cls(threaded, comms, asyncio.get_running_loop())

    @property
    def hello(self) -> Any:
        """The supervisor's first message (``StartTriggerer``)."""
        return self._comms.hello

    @property
    def comms(self) -> actors.Comms:
        """The channel itself: its state, statistics and close cause."""
        return self._comms

    async def asend(self, msg: Any) -> Any:
        """Send ``msg`` and wait for its reply, from any asyncio loop or trio run.

        Raises:
            AirflowRuntimeError: the supervisor answered with an error.
            actors.RequestTimeout: no reply within the deadline.
            actors.ChannelClosed: the channel is closed.
        """
        try:
            return await self._comms.asend(msg)
        except actors.RemoteError as exc:
            raise _airflow_error(exc) from None

    def send(self, msg: Any) -> Any:
        """Send ``msg`` and block this thread until its reply; on the runner's loop
        thread inside a greenback portal, wait through the portal instead (the loop
        keeps running).

        Raises:
            As :meth:`asend`.
        """
        if threading.get_ident() == self._loop_thread and _has_greenback_portal():
            import greenback

            return greenback.await_(self.asend(msg))
        try:
            return self._comms.send(msg)
        except actors.RemoteError as exc:
            raise _airflow_error(exc) from None

    def close(self) -> None:
        """Close the channel (pending calls raise ``ChannelClosed``) and end its
        thread; called when the runner's loop has ended. Idempotent."""
        if not self._closed:
            self._closed = True
            self._threaded.__exit__(None, None, None)


def _airflow_error(error: actors.RemoteError) -> Exception:
    """``AirflowRuntimeError(ErrorResponse(...))``, as the SDK raises an error frame."""
    from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
    from airflow.sdk.execution_time.comms import ErrorResponse

    try:
        kind = ErrorType(error.code)
    except ValueError:
        kind = ErrorType.GENERIC_ERROR
    result: Exception = AirflowRuntimeError(error=ErrorResponse(error=kind, detail=error.detail))
    return result
