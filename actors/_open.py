"""``open_comms``: run a comms actor inside the current trio run and hand out its handle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Unpack

import trio

from channel import MessageCodec

from ._actor import CommsActor
from ._arguments import check_codec, check_stream
from ._comms import Comms
from ._errors import HelloTimeout, closed_error
from ._options import ChannelConfig, CommsOptions
from ._state import ChannelState

__all__ = ["open_comms", "run_comms"]


@asynccontextmanager
async def open_comms(stream: trio.abc.Stream, codec: MessageCodec, **options: Unpack[CommsOptions]) -> AsyncIterator[Comms]:
    """Run a comms actor on ``stream`` inside the current trio run.

    ::

        async with actors.open_comms(stream, codec, timeout=10) as comms:
            reply = await comms.asend(GetVariable(key="k"))

    The actor owns ``stream`` and closes it on exit. If the peer goes away, the
    actor does not raise into the host's nursery: pending and later calls raise
    ``ChannelClosed`` and ``comms.state`` becomes ``CLOSED``. A peer that makes no
    room for our waiting bytes for twice ``timeout`` (at least 10 s; 30 s without a
    timeout) has stopped reading: the channel closes with
    :class:`~actors.PeerNotReading` as the cause.

    Args:
        stream: any ``trio.abc.Stream`` (a ``SocketStream`` over a socketpair, a Unix
            or TCP socket, fd 0).
        codec: the message codec for requests and replies.
        **options: :class:`~actors.CommsOptions` (``timeout``, ``max_in_flight``,
            ``expect_hello``, ``heartbeat``, ...), all optional.

    Raises:
        TypeError: ``stream`` is not a ``trio.abc.Stream`` (a socket, say: the message
            says what to pass), or ``codec`` is not a codec (a ``channel.Codec`` or a ``channel.MessageCodec``).
        ValueError: an option is out of range.
        HelloTimeout: ``expect_hello`` and no hello came within ``hello_timeout``.
        ChannelClosed: ``expect_hello`` and the channel closed before the hello.
        RemoteError, channel.MessageDecodeError: the hello was an error or did not decode.
    """
    check_stream(stream, "open_comms")
    check_codec(codec, "open_comms")
    async with run_comms(stream, codec, ChannelConfig(**options)) as comms:
        yield comms


@asynccontextmanager
async def run_comms(stream: trio.abc.Stream, codec: MessageCodec, config: ChannelConfig) -> AsyncIterator[Comms]:
    """:func:`open_comms` with its options already checked (for the other openers)."""
    actor = CommsActor(
        stream,
        codec,
        max_in_flight=config.max_in_flight,
        max_unanswered=config.unanswered_limit,
        max_frame_size=config.max_frame_size,
        expect_hello=config.expect_hello,
        stall_timeout=config.stall_timeout,
        priority=config.priority,
    )
    # The actor never raises into this nursery. An exception from the hello wait or
    # from the host's own block (SystemExit, KeyboardInterrupt and a Cancelled from
    # an outer scope included) is kept out of it too, and re-raised after, so the
    # host sees its own exception rather than an ExceptionGroup wrapping it.
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        comms: Comms = Comms._create(actor, codec, config.default_timeout)
        try:
            if config.expect_hello:
                await _wait_hello(actor, config.hello_timeout)
            yield comms
        except BaseException as exc:
            error = exc
        finally:
            await comms.aclose()
    if error is not None:
        raise error


async def _wait_hello(actor: CommsActor, timeout: float) -> None:
    with trio.move_on_after(timeout):
        await actor.lifecycle.wait_open()
    if actor.lifecycle.state is ChannelState.AWAITING_HELLO:
        raise HelloTimeout(timeout)
    if actor.hello_error is not None:
        raise actor.hello_error
    if not actor.hello_arrived:
        assert actor.lifecycle.cause is not None
        raise closed_error(actor.lifecycle.cause)
