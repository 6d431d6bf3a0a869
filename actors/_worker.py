"""The worker's side of a supervised process: its channel to the supervisor."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from channel import Codec

from ._errors import ChannelClosed
from ._handle import Comms
from ._open import open_comms
from ._state import ChannelState

__all__ = ["connect_to_supervisor"]


@asynccontextmanager
async def connect_to_supervisor(
    codec: Codec, *, fd: int = 0, end_on_close: bool = True, **open_comms_options: Any
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

    The socket is used where it is: the worker keeps one copy of it (for fd 0,
    moved off fd 0, which becomes ``/dev/null``).

    Args:
        codec: the message codec.
        fd: the socket's file descriptor (0 for Airflow's convention).
        end_on_close: cancel the block when the channel closes.
        **open_comms_options: as :func:`~actors.open_comms` (``timeout``,
            ``expect_hello``, ``max_in_flight``, ...).
    """
    sock = socket.socket(fileno=os.dup(fd) if fd == 0 else fd)
    if fd == 0:
        # fd 0 was the socket: now only the channel reads it, and stdin is /dev/null.
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
    async with open_comms(stream, codec, **open_comms_options) as comms:
        if not end_on_close:
            yield comms
            return
        async with trio.open_nursery() as nursery:

            async def end_when_closed() -> None:
                await comms.state.wait_value(lambda state: state in (ChannelState.CLOSING, ChannelState.CLOSED))
                nursery.cancel_scope.cancel()

            nursery.start_soon(end_when_closed)
            try:
                yield comms
            except BaseException as exc:
                if not (comms.state.value in _CLOSED and _only_channel_closed(exc)):
                    raise
            nursery.cancel_scope.cancel()


_CLOSED = (ChannelState.CLOSING, ChannelState.CLOSED)


def _only_channel_closed(error: BaseException) -> bool:
    """Whether ``error`` is a ChannelClosed, or a group of nothing but ChannelClosed
    and Cancelled with at least one ChannelClosed: the channel's end, seen by the
    worker's code wherever it was waiting."""
    if isinstance(error, ChannelClosed):
        return True
    if isinstance(error, BaseExceptionGroup):
        leaves = list(_leaves(error))
        return any(isinstance(leaf, ChannelClosed) for leaf in leaves) and all(
            isinstance(leaf, (ChannelClosed, trio.Cancelled)) for leaf in leaves
        )
    return False


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error

