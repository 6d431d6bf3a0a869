"""The worker's side of a supervised process: its channel to the supervisor."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Unpack

import trio

from channel import MessageCodec

from ._arguments import check_codec
from ._comms import Comms
from ._errors import ChannelClosed
from ._open import run_comms
from ._options import CREDIT_ENV, ChannelConfig, CommsOptions, within_credit
from ._state import ChannelState
from ._thread_mode import ThreadedComms

__all__ = ["connect_to_supervisor", "supervisor_socket"]

log = logging.getLogger(__name__)


def supervisor_socket(fd: int = 0) -> socket.socket:
    """In the worker process: take the socket the supervisor passed on ``fd``.

    The worker keeps exactly one copy of it: on fd 0 (Airflow's convention) the
    socket moves to a new fd and fd 0 becomes ``/dev/null``, so nothing else reads
    it as stdin; on any other fd it is used where it is. For hosts that open the
    channel themselves, for example with :func:`~actors.comms_in_thread` from an
    asyncio program; :func:`connect_to_supervisor` calls it. Call it once.

    Raises:
        OSError: ``fd`` is not an open socket.
    """
    sock = socket.socket(fileno=os.dup(fd) if fd == 0 else fd)
    if fd == 0:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
    return sock


@asynccontextmanager
async def connect_to_supervisor(
    codec: MessageCodec, *, fd: int = 0, end_on_close: bool = True, thread: bool = False, **options: Unpack[CommsOptions]
) -> AsyncIterator[Comms]:
    """In the worker process: open the channel to the supervisor on ``fd``.

    ::

        async def main() -> None:
            async with actors.connect_to_supervisor(codec, timeout=10) as comms:
                while True:                       # the main loop sends the heartbeat
                    await comms.asend(Heartbeat())
                    await trio.sleep(0.5)

    When the channel closes (the supervisor died or closed its end), the block is
    cancelled and exits normally, so the worker's main returns and the process ends:
    a worker never outlives its supervisor by more than the time it takes to see EOF.
    That holds however the worker's code was waiting at that moment: a
    ``ChannelClosed`` raised out of the block (bare, or in an exception group with
    nothing but other ``ChannelClosed`` and ``trio.Cancelled``) ends it normally too.
    Pass ``end_on_close=False`` to handle ``ChannelClosed`` yourself instead.

    With ``thread=True`` the channel runs on a thread of its own with its own trio
    loop (:func:`~actors.comms_in_thread`): sync code that blocks the worker's loop
    then cannot stall the channel, and another thread can still use it (to report
    the blocked loop, say). The heartbeat still comes from the worker's main loop,
    so a blocked loop is still stuck.

    The socket is taken with :func:`supervisor_socket`: one copy of it. Under
    :func:`~actors.open_supervisor`, ``max_in_flight`` and ``max_unanswered`` are
    kept within what the supervisor holds at once (2,112 requests by default; a
    warning says when they are lowered), so bulk requests never leave the heartbeat
    unread in the socket.

    Args:
        codec: the message codec.
        fd: the socket's file descriptor (0 for Airflow's convention).
        end_on_close: cancel the block when the channel closes.
        thread: run the channel on its own thread (see above).
        **options: :class:`~actors.CommsOptions`, as for :func:`~actors.open_comms`
            (``timeout``, ``expect_hello``, ``max_in_flight``, ``heartbeat``, ...). Pass
            ``heartbeat=`` the supervisor's heartbeat class, so the heartbeat takes
            the priority lane past any bulk requests waiting here.
    """
    check_codec(codec, "connect_to_supervisor")
    config = ChannelConfig(**options)  # checked before the socket is taken
    credit = _supervisor_credit()
    if credit is not None:
        limited = within_credit(config, credit)
        if limited is not config:
            log.warning(
                "max_in_flight=%d, max_unanswered=%d lowered to %d, %d: the supervisor holds %d requests at once",
                config.max_in_flight, config.unanswered_limit, limited.max_in_flight, limited.unanswered_limit, credit,
            )
        config = limited
    sock = supervisor_socket(fd)
    opened: AbstractAsyncContextManager[Comms]
    if thread:
        opened = ThreadedComms._create(sock, codec, config)
    else:
        opened = run_comms(trio.SocketStream(trio.socket.from_stdlib_socket(sock)), codec, config)
    async with opened as comms:
        if not end_on_close:
            yield comms
            return
        try:
            async with trio.open_nursery() as nursery:

                async def end_when_closed() -> None:
                    await comms.wait_closed()  # from this run, whichever run the channel lives in
                    nursery.cancel_scope.cancel()

                nursery.start_soon(end_when_closed)
                try:
                    yield comms
                except BaseException as exc:
                    if not (comms.state.value in _CLOSED and _only_channel_closed(exc)):
                        raise
                nursery.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The block's own exception (sys.exit(3), Ctrl-C, an error), wrapped by
            # this nursery: out bare when alone, so the process exits with its code.
            if len(group.exceptions) != 1:
                raise
            body_error = group.exceptions[0]
            raise body_error from body_error.__cause__


_CLOSED = (ChannelState.CLOSING, ChannelState.CLOSED)


def _supervisor_credit() -> int | None:
    """The supervisor's credit (:data:`CREDIT_ENV`), if it set a valid one."""
    value = os.environ.get(CREDIT_ENV, "")
    return int(value) if value.isdigit() and int(value) >= 2 else None


def _only_channel_closed(error: BaseException) -> bool:
    """Whether ``error`` is a ChannelClosed, or a group of nothing but ChannelClosed
    and Cancelled with at least one ChannelClosed: the channel's end, seen by the
    worker's code wherever it was waiting."""
    if isinstance(error, ChannelClosed):
        return True
    if isinstance(error, BaseExceptionGroup):
        _, rest = error.split((ChannelClosed, trio.Cancelled))
        return rest is None and error.subgroup(ChannelClosed) is not None
    return False
