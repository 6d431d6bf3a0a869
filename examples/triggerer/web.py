"""``/health`` and ``/metrics`` over HTTP: h11 on ``trio.serve_tcp``, no hand-parsed HTTP."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable

import h11
import trio

log = logging.getLogger(__name__)

Route = Callable[[], Awaitable[tuple[int, str, bytes]]]  # -> (status, content type, body)

MAX_REQUEST = 64 * 1024
MAX_CONNECTIONS = 256
"""Connections served at once; one more is closed as soon as it is accepted, so idle
clients cannot take every fd the job needs for its runner and store."""


async def _handle(stream: trio.SocketStream, routes: dict[str, Route]) -> None:
    connection = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST)
    try:
        with trio.move_on_after(10):  # a client that never finishes its request is dropped
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await stream.receive_some(MAX_REQUEST))
                    continue
                if isinstance(event, h11.Request):
                    break
                if isinstance(event, h11.ConnectionClosed):
                    return
            path = event.target.decode("ascii", "replace").split("?", 1)[0]
            route = routes.get(path) if event.method == b"GET" else None
            if route is None:
                status, content_type, body = 404, "application/json", json.dumps({"error": "not found"}).encode()
            else:
                status, content_type, body = await route()
            headers = [("content-type", content_type), ("content-length", str(len(body))), ("connection", "close")]
            await stream.send_all(connection.send(h11.Response(status_code=status, headers=headers)) or b"")
            await stream.send_all(connection.send(h11.Data(data=body)) or b"")
            await stream.send_all(connection.send(h11.EndOfMessage()) or b"")
    except (h11.RemoteProtocolError, trio.BrokenResourceError) as exc:
        log.debug("http client error: %r", exc)


async def serve_http(
    host: str, port: int, routes: dict[str, Route], *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve ``routes`` (GET only) on ``host:port``; reports the bound port through ``task_status``."""

    room = trio.CapacityLimiter(MAX_CONNECTIONS)

    async def handler(stream: trio.SocketStream) -> None:
        try:
            room.acquire_nowait()
        except trio.WouldBlock:
            log.debug("http: %d connections open, refusing one more", MAX_CONNECTIONS)
            await trio.aclose_forcefully(stream)
            return
        try:
            await _handle(stream, routes)
        finally:
            room.release()  # before the close, so a client that saw it can connect again
            await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, handler, port, host=host))
        task_status.started(listeners[0].socket.getsockname()[1])
