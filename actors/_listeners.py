"""Serving every connection a listener accepts: a peer's fault ends its connection alone."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import trio

from channel import MessageCodec, RemoteProtocolError

from ._arguments import serve_config
from ._errors import PeerNotReading
from ._responder import Handler, serve

__all__ = ["serve_listeners"]

log = logging.getLogger(__name__)


async def serve_listeners(
    listeners: Sequence[trio.abc.Listener[Any]],
    codec: MessageCodec,
    handler: Handler,
    *,
    task_status: trio.TaskStatus[list[trio.abc.Listener[Any]]] = trio.TASK_STATUS_IGNORED,
    **serve_options: Any,
) -> None:
    """Accept connections on ``listeners`` for ever and :func:`~actors.serve` each one.

    ::

        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        async with trio.open_nursery() as nursery:
            await nursery.start(actors.serve_listeners, listeners, codec, handler)

    ``serve`` raises a peer's fault (:class:`~channel.RemoteProtocolError`: garbage,
    a frame cut off by the peer's death; :class:`~actors.PeerNotReading`), because a
    supervisor must see it. Here it ends only that peer's connection, with one
    warning on the ``actors._listeners`` logger naming the peer; every other
    connection goes on. ``trio.serve_listeners`` alone would let it end the server.

    Args:
        listeners: from ``trio.open_tcp_listeners``, ``trio.open_unix_listener`` (3.12+
            only on some platforms) or your own.
        codec, handler: as for :func:`~actors.serve`.
        task_status: for ``nursery.start``: started with the listeners once accepting.
        **serve_options: :func:`~actors.serve`'s keyword options, for each connection
            (``max_concurrency``, ``hello``, ``handler_timeout``, ...).

    Raises:
        TypeError, ValueError: ``codec``, ``handler`` or an option is one ``serve``
            would refuse (raised at once, before anything is accepted).
        Whatever ``trio.serve_listeners`` raises (an accept error it does not retry),
        and a bug in ``handler`` that escapes ``serve`` (none should: a handler's
        exception answers its request).
    """
    serve_config("serve_listeners", codec, handler, **serve_options)  # not at the first connection

    async def serve_one(stream: trio.abc.Stream) -> None:
        peer = _peer_of(stream)
        try:
            await serve(stream, codec, handler, **serve_options)
        except (RemoteProtocolError, PeerNotReading) as exc:
            log.warning("connection from %s ended: %s: %s", peer, type(exc).__name__, exc)

    await trio.serve_listeners(serve_one, list(listeners), task_status=task_status)


def _peer_of(stream: trio.abc.Stream) -> str:
    """``host:port`` of a TCP peer, the socket's name otherwise, or the stream's repr."""
    sock = getattr(stream, "socket", None)
    try:
        name = sock.getpeername() if sock is not None else None
    except OSError:
        name = None
    if isinstance(name, tuple) and len(name) >= 2:
        return f"{name[0]}:{name[1]}"
    return repr(name) if name else repr(stream)
