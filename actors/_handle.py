"""The caller-facing handle: ``asend`` and ``send`` from wherever the caller runs.

Each call encodes its own message (so an encode error raises in the code that sent
it), wraps it in a reply slot of the kind that suits how it waits, hands the slot to
the actor and waits, with a deadline, for the actor to resolve it:

================================  ===========================  =========================
caller                            reaches the actor by         waits on
================================  ===========================  =========================
trio task of the actor's run      a direct call (same thread)  ``wait_task_rescheduled``
asyncio coroutine, any thread     ``TrioToken.run_sync_soon``  a future on its own loop
plain thread, ``to_thread``       ``TrioToken.run_sync_soon``  a lock
sync code on the actor's thread   greenback portal -> trio     (as a trio task)
================================  ===========================  =========================
"""

from __future__ import annotations

import asyncio
import functools
import math
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio
from trio_util import AsyncValue

from channel import DEFAULT_MAX_FRAME_SIZE, Codec, LocalProtocolError

from ._comms import CommsActor
from ._errors import LoopThreadError, RequestTimeout, closed_error
from ._slots import AsyncioSlot, ThreadSlot, TrioSlot
from ._stats import ChannelState, CommsStatistics

__all__ = ["Comms", "open_comms"]

_PACKED_NIL = b"\xc0"
# A frame is its array header (1 byte), its id (up to 9 bytes), then the body.
_FRAME_OVERHEAD = 10


def _check_timeout(timeout: float | None, name: str = "timeout") -> float | None:
    """Normalise a timeout: ``None`` or ``inf`` mean no deadline; otherwise > 0."""
    if timeout is None or timeout == math.inf:
        return None
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
        raise ValueError(f"{name} must be a positive number of seconds, None or math.inf, not {timeout!r}")
    return float(timeout)


class Comms:
    """A handle on one channel: send requests, get replies, from any thread or loop.

    Made by :func:`open_comms` or :func:`~actors.comms_in_thread`, never directly.
    """

    def __init__(self, actor: CommsActor, codec: Codec, default_timeout: float | None) -> None:
        self._actor = actor
        self._codec = codec
        self._default_timeout = default_timeout

    @property
    def hello(self) -> Any:
        """The peer's unsolicited first message (with ``expect_hello=True``), else ``None``."""
        return self._actor.hello

    @property
    def state(self) -> AsyncValue[ChannelState]:
        """The channel's state, observable from the actor's trio run (``await state.wait_value(...)``)."""
        return self._actor.state

    @property
    def close_cause(self) -> BaseException | None:
        """Why the channel closed (the ``__cause__`` of every ``ChannelClosed``), or ``None``."""
        return self._actor.cause

    def statistics(self) -> CommsStatistics:
        """A snapshot of the channel's counters."""
        return self._actor.statistics()

    async def aclose(self) -> None:
        """Close the channel: every pending and later call fails with ``ChannelClosed``.

        Call it from the actor's trio run. Idempotent; returns once the stream is closed.
        """
        with trio.CancelScope(shield=True):
            await self._actor.aclose()

    # ------------------------------------------------------------------ encoding

    def _pack(self, message: object) -> bytes:
        body = _PACKED_NIL if message is None else self._codec.pack(message)
        if len(body) + _FRAME_OVERHEAD > self._actor.max_frame_size:
            raise LocalProtocolError(
                f"request body of {len(body)} bytes does not fit max_frame_size={self._actor.max_frame_size}"
            )
        return body

    def _timeout(self, timeout: float | None) -> float | None:
        return self._default_timeout if timeout is None else _check_timeout(timeout)

    # ------------------------------------------------------------------ async callers

    async def asend(self, message: object, timeout: float | None = None) -> Any:
        """Send a request and wait for its reply, from a trio task or an asyncio coroutine.

        It detects the running library and never blocks the loop it is awaited on. A
        coroutine on any thread works, including a loop that asgiref's
        ``async_to_sync`` starts in a worker thread::

            reply = await comms.asend(GetVariable(key="k"), timeout=5)

        Args:
            message: a message of the channel's codec, or ``None`` for an empty body.
            timeout: seconds to wait for the reply (queueing and writing included);
                ``None`` uses the channel's default, ``math.inf`` waits forever.

        Returns:
            The decoded reply, or ``None`` if the reply had no body.

        Raises:
            MessageEncodeError: ``message`` cannot be encoded (nothing was sent).
            LocalProtocolError: the encoded request is over ``max_frame_size``.
            RequestTimeout: no reply within ``timeout``.
            RemoteError: the peer answered with an error response.
            MessageDecodeError: the reply's body is not a known message.
            ChannelClosed: the channel closed before the reply came, or was closed.
            RuntimeError: awaited outside trio and asyncio.
        """
        actor = self._actor
        if threading.get_ident() != actor.thread_id or not trio.lowlevel.in_trio_task():
            return await self._asend_elsewhere(message, timeout)
        # A trio task of the actor's own run: the hot path, inline (one coroutine
        # less per call), everything on this thread.
        timeout = self._timeout(timeout)
        body = self._pack(message)
        if actor.cause is not None:
            actor.calls_closed += 1
            raise closed_error(actor.cause)
        slot = TrioSlot(body, trio.lowlevel.current_task(), actor)
        actor.submit(slot)
        try:
            if timeout is None:
                return await trio.lowlevel.wait_task_rescheduled(slot.abort)
            with trio.move_on_after(timeout):
                return await trio.lowlevel.wait_task_rescheduled(slot.abort)
        except trio.Cancelled:
            actor.calls_cancelled += 1
            raise
        actor.calls_timed_out += 1
        raise RequestTimeout(timeout)

    async def _asend_elsewhere(self, message: object, timeout: float | None) -> Any:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            return await self._asend_asyncio(loop, message, self._timeout(timeout))
        if trio.lowlevel.in_trio_task():
            # A different trio run (another thread): wait in a worker thread.
            return await trio.to_thread.run_sync(
                functools.partial(self.send, message, timeout=timeout), abandon_on_cancel=True
            )
        raise RuntimeError("asend() must be awaited in a trio task or an asyncio coroutine")

    async def _asend_asyncio(self, loop: asyncio.AbstractEventLoop, message: object, timeout: float | None) -> Any:
        actor = self._actor
        slot = AsyncioSlot(self._pack(message), loop)
        actor.post(actor.submit, slot)
        try:
            async with asyncio.timeout(timeout):
                await slot.future
        except TimeoutError:
            if slot.try_claim():
                actor.post(actor.abandon_timed_out, slot)
                raise RequestTimeout(timeout or 0) from None
        except BaseException:
            if slot.try_claim():
                actor.post(actor.abandon_cancelled, slot)
            raise
        # Resolved, or the reply won the race against our deadline: it is stored
        # (or about to be, a few instructions away on the actor's thread).
        slot.wait_resolved()
        return slot.unwrap()

    # ------------------------------------------------------------------ blocking callers

    def send(self, message: object, timeout: float | None = None) -> Any:
        """Send a request and block this thread until its reply comes.

        For any thread that is not the actor's own: ``trio.to_thread`` workers, plain
        threads, threads running an asyncio loop (where it blocks that loop; prefer
        ``await asend`` there). On the actor's own thread it works only inside a
        greenback portal; without one it raises :class:`LoopThreadError` at once
        rather than deadlock::

            reply = comms.send(GetVariable(key="k"), timeout=5)

        Args and return value as :meth:`asend`.

        Raises:
            LoopThreadError: called on the actor's thread outside a greenback portal.
            Everything :meth:`asend` raises.
        """
        actor = self._actor
        if threading.get_ident() == actor.thread_id:
            if _has_greenback_portal():
                import greenback

                return greenback.await_(self.asend(message, timeout=timeout))
            raise LoopThreadError(
                "send() blocks, and this thread runs the trio loop that must deliver its "
                "reply: it would deadlock. Use `await comms.asend(...)`, or call send() "
                "inside a greenback portal (`await greenback.ensure_portal()` first)."
            )
        timeout = self._timeout(timeout)
        slot = ThreadSlot(self._pack(message))
        actor.post(actor.submit, slot)
        wait = -1 if timeout is None else min(timeout, threading.TIMEOUT_MAX)
        if not slot.wait_resolved(wait):
            if slot.try_claim():
                actor.post(actor.abandon_timed_out, slot)
                raise RequestTimeout(timeout or 0)
            slot.wait_resolved()  # the reply won the race: it is being stored now
        return slot.unwrap()


def _has_greenback_portal() -> bool:
    greenback = sys.modules.get("greenback")  # no import: no greenback, no portal
    if greenback is None:
        return False
    try:
        return bool(greenback.has_portal())
    except RuntimeError:  # not inside a task at all
        return False


@asynccontextmanager
async def open_comms(
    stream: trio.abc.Stream,
    codec: Codec,
    *,
    timeout: float | None = None,
    max_in_flight: int = 1024,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    expect_hello: bool = False,
) -> AsyncIterator[Comms]:
    """Run a comms actor on ``stream`` inside the current trio run.

    ::

        async with actors.open_comms(stream, codec, timeout=10) as comms:
            reply = await comms.asend(GetVariable(key="k"))

    The actor owns ``stream`` and closes it on exit. If the peer goes away, the
    actor does not raise into the host's nursery: pending and later calls raise
    ``ChannelClosed`` and ``comms.state`` becomes ``CLOSED``.

    Args:
        stream: any ``trio.abc.Stream`` (a ``SocketStream`` over a socketpair, a Unix
            or TCP socket, fd 0).
        codec: the message codec for requests and replies.
        timeout: the default deadline of each call, in seconds (``None``: none).
        max_in_flight: most requests written and not yet answered; later callers
            wait their turn (their deadlines still apply).
        max_frame_size: largest frame accepted from the peer, and largest request sent.
        expect_hello: the peer's first frame is an unsolicited response with id 0
            (Airflow's ``StartTriggerer``); wait for it (within ``timeout``) and keep
            its message as ``comms.hello`` before any request is sent.

    Raises:
        ValueError: an option is out of range.
        RequestTimeout: ``expect_hello`` and no hello came within ``timeout``.
        ChannelClosed: ``expect_hello`` and the channel closed before the hello.
        RemoteError, MessageDecodeError: the hello was an error or did not decode.
    """
    default_timeout = _check_timeout(timeout)
    if type(max_in_flight) is not int or max_in_flight < 1:
        raise ValueError(f"max_in_flight must be an int >= 1, not {max_in_flight!r}")
    actor = CommsActor(
        stream, codec, max_in_flight=max_in_flight, max_frame_size=max_frame_size, expect_hello=expect_hello
    )
    # The actor never raises into this nursery. An exception from the hello wait or
    # from the host's own block is kept out of it too, and re-raised after, so the
    # host sees its own exception rather than an ExceptionGroup wrapping it.
    error: Exception | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        comms = Comms(actor, codec, default_timeout)
        try:
            if expect_hello:
                await _wait_hello(actor, default_timeout)
            yield comms
        except Exception as exc:
            error = exc
        finally:
            await comms.aclose()
    if error is not None:
        raise error


async def _wait_hello(actor: CommsActor, timeout: float | None) -> None:
    with trio.move_on_after(math.inf if timeout is None else timeout):
        await actor.hello_received.wait()
    if not actor.hello_received.is_set():
        raise RequestTimeout(timeout or 0)
    if actor.hello_error is not None:
        raise actor.hello_error
    if actor.hello_pending:
        assert actor.cause is not None
        raise closed_error(actor.cause)
