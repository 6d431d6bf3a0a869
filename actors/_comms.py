"""The caller-facing handle: ``asend`` and ``send`` from wherever the caller runs.

Each call encodes its own message (so an encode error raises in the code that sent
it), wraps it in a reply slot of the kind that suits how it waits, hands the slot to
the actor and waits, with a deadline, for the actor to resolve it:

================================  ===========================  =========================
caller                            reaches the actor by         waits on
================================  ===========================  =========================
trio task of the actor's run      a direct call (same thread)  ``wait_task_rescheduled``
trio task of another trio run     ``TrioToken.run_sync_soon``  ``wait_task_rescheduled``
asyncio coroutine, any thread     ``TrioToken.run_sync_soon``  a future on its own loop
plain thread, ``to_thread``       ``TrioToken.run_sync_soon``  a lock
sync code on the actor's thread   greenback portal -> trio     (as a trio task)
================================  ===========================  =========================
"""

from __future__ import annotations

import asyncio
import math
import sys
import threading
from asyncio.events import _get_running_loop
from collections.abc import Mapping
from typing import Any, TypeVar, final, overload

import trio

from channel import MessageCodec, Request
from channel._util import NoPublicConstructor
from channel.lowlevel import check_request_size, max_request_body, message_type_of, pack_value

from ._actor import CommsActor
from ._context import outgoing_carrier
from ._errors import LoopThreadError, RequestTimeout
from ._observable import Observable
from ._options import check_timeout
from ._slots import AsyncioSlot, CrossThreadSlot, ForeignTrioSlot, ThreadSlot, TrioSlot
from ._state import ChannelState
from ._stats import CommsStatistics

__all__ = ["Comms"]

ReplyT = TypeVar("ReplyT")
_modules = sys.modules


def _type_name(message: object) -> str:
    return "None" if message is None else message_type_of(type(message))


@final
class Comms(metaclass=NoPublicConstructor):
    """A handle on one channel: send requests, get replies, from any thread or loop.

    Made by :func:`open_comms` or :func:`~actors.comms_in_thread`, never directly
    (``Comms(...)`` raises ``TypeError``).
    """

    def __init__(self, actor: CommsActor, codec: MessageCodec, default_timeout: float | None) -> None:
        self._actor = actor
        self._codec = codec
        self._default_timeout = default_timeout
        self._max_body = max_request_body(actor.max_frame_size)

    def __repr__(self) -> str:
        return f"<actors.Comms {self._actor.lifecycle.state.name}>"

    @property
    def hello(self) -> Any:
        """The peer's unsolicited first message (with ``expect_hello=True``), else ``None``."""
        return self._actor.hello

    @property
    def state(self) -> Observable[ChannelState]:
        """The channel's state, observable from the actor's trio run (``await state.wait_value(...)``).

        From anywhere else, read ``state.value`` or ``await comms.wait_closed()``.
        """
        return self._actor.lifecycle.observable

    @property
    def close_cause(self) -> BaseException | None:
        """Why the channel closed (the ``__cause__`` of every ``ChannelClosed``), or ``None``."""
        return self._actor.lifecycle.cause

    def statistics(self) -> CommsStatistics:
        """A snapshot of the channel's counters."""
        return self._actor.statistics()

    async def wait_closed(self) -> None:
        """Wait until the channel is closed, from any trio run or asyncio loop.

        Raises:
            RuntimeError: awaited outside trio and asyncio.
        """
        await self._actor.lifecycle.wait_closed()

    async def aclose(self) -> None:
        """Close the channel: every pending and later call fails with ``ChannelClosed``.

        Works from the actor's trio run, another trio run or an asyncio loop.
        Idempotent; returns once the stream is closed.
        """
        actor = self._actor
        if actor.lifecycle.state is ChannelState.CLOSED:
            await self.wait_closed()  # (a checkpoint, as every aclose is)
            return
        if threading.get_ident() == actor.thread_id and trio.lowlevel.in_trio_task():
            with trio.CancelScope(shield=True):
                await actor.aclose()
            return
        assert actor.token is not None
        try:
            actor.token.run_sync_soon(actor.close, trio.ClosedResourceError("channel closed by aclose()"))
        except trio.RunFinishedError:
            return  # the actor's run is over: the channel is closed
        await self.wait_closed()

    # ------------------------------------------------------------------ encoding

    def _pack(self, message: object, carrier: Mapping[str, Any] | None) -> tuple[bytes, int]:
        body = self._codec.pack(message)
        if carrier is None and len(body) <= self._max_body and "opentelemetry.trace" not in _modules:
            return body, 1  # the common case: no carrier, and it fits whatever its id
        carrier_map = outgoing_carrier(carrier)
        packed_carrier = None if carrier_map is None else pack_value(carrier_map)
        check_request_size(body, packed_carrier, self._actor.max_frame_size)
        if packed_carrier is None:
            return body, 1
        return body + packed_carrier, 2

    def _gave_up(self, slot: CrossThreadSlot, message: object, timeout: float | None) -> RequestTimeout:
        """A cross-thread caller whose deadline passed, having claimed its slot: tell
        the actor to forget it, and say exactly whether it had been written."""
        frame_id = slot.written_frame_id()
        slot.timed_out = True
        self._actor.post(self._actor.gave_up, slot)
        return RequestTimeout(timeout or 0, message_type=_type_name(message), frame_id=frame_id)

    def _timeout(self, timeout: float | None) -> float | None:
        return self._default_timeout if timeout is None else check_timeout(timeout)

    # ------------------------------------------------------------------ async callers

    @overload
    async def asend(
        self, message: Request[ReplyT], timeout: float | None = None, carrier: Mapping[str, Any] | None = None
    ) -> ReplyT: ...

    @overload
    async def asend(
        self, message: object, timeout: float | None = None, carrier: Mapping[str, Any] | None = None
    ) -> Any: ...

    async def asend(
        self, message: object, timeout: float | None = None, carrier: Mapping[str, Any] | None = None
    ) -> Any:
        """Send a request and wait for its reply, from a trio task or an asyncio coroutine.

        It detects the running library and never blocks the loop it is awaited on. A
        coroutine on any thread works, including a loop that asgiref's
        ``async_to_sync`` starts in a worker thread, and so does a task of another
        trio run (it parks on its own run)::

            reply = await comms.asend(GetVariable(key="k"), timeout=5)

        Args:
            message: a message of the channel's codec, or ``None`` for an empty body.
                If its class derives from ``channel.Request[R]``, the reply is an
                ``R`` (to mypy too) or the call fails with ``MessageDecodeError``.
            timeout: seconds to wait for the reply (queueing and writing included);
                ``None`` uses the channel's default, ``math.inf`` waits forever.
            carrier: the request's ``context_carrier`` (W3C trace context). If
                ``None`` and OpenTelemetry has an active span, that span's context.

        Returns:
            The decoded reply, or ``None`` if the reply had no body.

        Raises:
            MessageEncodeError: ``message`` (or ``carrier``) cannot be encoded; nothing
                was sent.
            LocalProtocolError: the encoded request is over ``max_frame_size``.
            RequestTimeout: no reply within ``timeout`` (``.written`` says whether
                the request had been written).
            RemoteError: the peer answered with an error response; ``ReplyTooLarge``
                (a ``RemoteError`` with code ``FRAME_TOO_LARGE``) if the reply was
                over our ``max_frame_size``.
            MessageDecodeError: the reply's body is not a known message, or not the
                reply type the request declares.
            ChannelClosed: the channel closed before the reply came, or was closed.
            RuntimeError: awaited outside trio and asyncio.
        """
        actor = self._actor
        timeout = self._default_timeout if timeout is None else check_timeout(timeout)
        if threading.get_ident() == actor.thread_id and trio.lowlevel.in_trio_task():
            # A trio task of the actor's own run: the hot path, inline (one coroutine
            # less per call), everything on this thread.
            fields, field_count = self._pack(message, carrier)
            if actor.lifecycle.closing:
                raise actor.closed_error()
            slot = TrioSlot(fields, field_count, type(message), trio.lowlevel.current_task())
            actor.submit(slot)
            try:
                if timeout is None:
                    return await trio.lowlevel.wait_task_rescheduled(slot.abort)
                with trio.move_on_after(timeout):
                    return await trio.lowlevel.wait_task_rescheduled(slot.abort)
            except (trio.Cancelled, KeyboardInterrupt):  # what the abort delivers, having claimed the slot
                slot.timed_out = False
                actor.gave_up(slot)
                raise
            slot.timed_out = True  # the deadline's cancel claimed it
            actor.gave_up(slot)
            raise RequestTimeout(timeout, message_type=_type_name(message), frame_id=slot.frame_id or None)
        loop = _get_running_loop()
        if loop is None:
            if not trio.lowlevel.in_trio_task():
                raise RuntimeError("asend must be awaited in a trio task or an asyncio coroutine")
            return await self._asend_foreign_trio(message, timeout, carrier)
        # A coroutine on an asyncio loop: inline too (one coroutine less per call, which
        # its host loop pays). No asyncio.timeout (a context object, current_task, an
        # uncancel dance): a timer that fails the future.
        fields, field_count = self._pack(message, carrier)
        if actor.lifecycle.closing:
            raise actor.closed_error()
        loop_slot = AsyncioSlot(fields, field_count, type(message), loop)
        actor.post_from_loop(loop, actor.submit, loop_slot)
        future = loop_slot.future
        timer = None if timeout is None else loop.call_later(timeout, _expire, future)
        try:
            await future
        except _Expired:
            if loop_slot.try_claim():
                raise self._gave_up(loop_slot, message, timeout) from None
        except BaseException:
            if loop_slot.try_claim():
                loop_slot.timed_out = False
                actor.post(actor.gave_up, loop_slot)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        # Resolved, or the reply won the race against our deadline: it is stored
        # (or about to be, a few instructions away on the actor's thread).
        loop_slot.wait_resolved()
        return loop_slot.unwrap()

    async def _asend_foreign_trio(
        self, message: object, timeout: float | None, carrier: Mapping[str, Any] | None
    ) -> Any:
        # A task of another trio run (a trio host keeping the actor in its own thread
        # with comms_in_thread): it parks on its own run, no worker thread per call.
        actor = self._actor
        fields, field_count = self._pack(message, carrier)
        if actor.lifecycle.closing:
            raise actor.closed_error()
        slot = ForeignTrioSlot(
            fields, field_count, type(message), trio.lowlevel.current_task(), trio.lowlevel.current_trio_token()
        )
        actor.post(actor.submit, slot)
        try:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                await trio.lowlevel.wait_task_rescheduled(slot.abort)
                return slot.unwrap()
        except trio.Cancelled:
            slot.timed_out = False
            actor.post(actor.gave_up, slot)
            raise
        # The deadline passed and the abort claimed the slot.
        raise self._gave_up(slot, message, timeout)

    # ------------------------------------------------------------------ blocking callers

    @overload
    def send(
        self, message: Request[ReplyT], timeout: float | None = None, carrier: Mapping[str, Any] | None = None
    ) -> ReplyT: ...

    @overload
    def send(self, message: object, timeout: float | None = None, carrier: Mapping[str, Any] | None = None) -> Any: ...

    def send(self, message: object, timeout: float | None = None, carrier: Mapping[str, Any] | None = None) -> Any:
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
            Exception: everything :meth:`asend` raises.
        """
        actor = self._actor
        if threading.get_ident() == actor.thread_id:
            if _has_greenback_portal():
                import greenback

                return greenback.await_(self.asend(message, timeout, carrier))
            raise LoopThreadError(
                "send() blocks, and this thread runs the trio loop that must deliver its "
                "reply: it would deadlock. Use `await comms.asend(...)`, or call send() "
                "inside a greenback portal (`await greenback.ensure_portal()` first)."
            )
        timeout = self._timeout(timeout)
        fields, field_count = self._pack(message, carrier)
        if actor.lifecycle.closing:
            raise actor.closed_error()
        slot = ThreadSlot(fields, field_count, type(message))
        actor.post(actor.submit, slot)
        wait = -1 if timeout is None else min(timeout, threading.TIMEOUT_MAX)
        if not slot.wait_resolved(wait):
            if slot.try_claim():
                raise self._gave_up(slot, message, timeout)
            slot.wait_resolved()  # the reply won the race: it is being stored now
        return slot.unwrap()


class _Expired(Exception):
    """An asyncio caller's deadline passed (set on its future by its timer)."""


def _expire(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_exception(_Expired())


def _has_greenback_portal() -> bool:
    greenback = sys.modules.get("greenback")  # no import: no greenback, no portal
    if greenback is None:
        return False
    try:
        return bool(greenback.has_portal())
    except RuntimeError:  # not inside a task at all
        return False
