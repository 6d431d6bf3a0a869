"""The actor on its own trio loop in a background thread, for hosts on asyncio or threads."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio

from channel import Codec

from ._handle import Comms, open_comms

__all__ = ["comms_in_thread"]


@contextmanager
def comms_in_thread(sock: socket.socket, codec: Codec, **options: Any) -> Iterator[Comms]:
    """Run a comms actor on ``sock`` in a daemon thread with its own trio loop.

    For hosts that are not trio programs: ``comms.send(...)`` works from any of the
    host's threads and ``await comms.asend(...)`` from any asyncio loop. Because the
    actor has a loop of its own, a host thread or loop that blocks cannot stall the
    channel: replies keep being routed to everyone else. ::

        with actors.comms_in_thread(sock, codec, timeout=10) as comms:
            reply = comms.send(GetVariable(key="k"))

    The actor owns ``sock`` and closes it. Leaving the block closes the channel
    (pending calls raise ``ChannelClosed``) and joins the thread.

    Args:
        sock: a connected stream socket (a socketpair end, a Unix or TCP socket).
        codec: the message codec.
        **options: as for :func:`open_comms` (``timeout``, ``max_in_flight``,
            ``max_frame_size``, ``expect_hello``).

    Raises:
        Whatever :func:`open_comms` raises on entry (bad options, no hello).
    """
    started = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
        try:
            async with open_comms(stream, codec, **options) as comms:
                box["comms"] = comms
                box["token"] = trio.lowlevel.current_trio_token()
                box["stop"] = stop = trio.Event()
                started.set()
                await stop.wait()
        except BaseException as exc:
            if started.is_set():
                raise
            box["error"] = exc
            started.set()

    thread = threading.Thread(target=trio.run, args=(main,), name="trio-comms", daemon=True)
    thread.start()
    started.wait()
    if "error" in box:
        thread.join()
        raise box["error"]
    try:
        yield box["comms"]
    finally:
        try:
            box["token"].run_sync_soon(box["stop"].set)
        except trio.RunFinishedError:
            pass
        thread.join()
