"""``open_comms``: run a comms actor inside the current trio run and hand out its handle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from channel import DEFAULT_MAX_FRAME_SIZE, Codec

from ._actor import CommsActor
from ._comms import Comms
from ._errors import HelloTimeout, closed_error
from ._options import check_limits, check_timeout, stall_timeout_for
from ._state import ChannelState

__all__ = ["open_comms"]


@asynccontextmanager
async def open_comms(
    stream: trio.abc.Stream,
    codec: Codec,
    *,
    timeout: float | None = None,
    max_in_flight: int = 1024,
    max_unanswered: int | None = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    expect_hello: bool = False,
    hello_timeout: float = 10.0,
    heartbeat: type | tuple[type, ...] = (),
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
        max_in_flight: most requests written and not yet answered whose callers
            still wait; later callers wait their turn (their deadlines still apply).
        max_unanswered: most written requests whose callers gave up while their
            replies are still due (default: ``max_in_flight``). One more, and the
            peer counts as unresponsive: the channel closes with
            :class:`~actors.PeerNotAnswering` as the cause. Likewise a peer that
            reads none of our waiting bytes for twice ``timeout`` (at least 10 s;
            30 s without a timeout) has stopped reading: the channel closes with
            :class:`~actors.PeerNotReading`.
        max_frame_size: largest frame accepted from the peer (a larger reply fails
            only its caller), and largest request sent.
        expect_hello: the peer's first frame is an unsolicited response with id 0
            (Airflow's ``StartTriggerer``); wait for it and keep its message as
            ``comms.hello`` before any request is sent. Without it, a hello from
            the peer is logged once with a hint and otherwise ignored.
        hello_timeout: seconds to wait for that hello.
        heartbeat: request classes that take the priority lane: admitted ahead of
            every waiting request, outside ``max_in_flight``, at the head of the
            next write, so a channel full of bulk requests never delays the
            heartbeat a supervisor judges liveness by (its ``serve`` lets it jump
            its own queue too).

    Raises:
        ValueError: an option is out of range.
        HelloTimeout: ``expect_hello`` and no hello came within ``hello_timeout``.
        ChannelClosed: ``expect_hello`` and the channel closed before the hello.
        RemoteError, MessageDecodeError: the hello was an error or did not decode.
    """
    default_timeout = check_timeout(timeout)
    max_unanswered = check_limits(max_in_flight, max_unanswered, hello_timeout)
    actor = CommsActor(
        stream,
        codec,
        max_in_flight=max_in_flight,
        max_unanswered=max_unanswered,
        max_frame_size=max_frame_size,
        expect_hello=expect_hello,
        stall_timeout=stall_timeout_for(default_timeout),
        priority=frozenset(heartbeat if isinstance(heartbeat, tuple) else (heartbeat,)),
    )
    # The actor never raises into this nursery. An exception from the hello wait or
    # from the host's own block is kept out of it too, and re-raised after, so the
    # host sees its own exception rather than an ExceptionGroup wrapping it.
    error: Exception | None = None
    async with trio.open_nursery() as nursery:
        await nursery.start(actor.run)
        comms: Comms = Comms._create(actor, codec, default_timeout)
        try:
            if expect_hello:
                await _wait_hello(actor, hello_timeout)
            yield comms
        except Exception as exc:
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
