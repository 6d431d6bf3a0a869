"""The actor on its own trio loop in a background thread, for hosts on asyncio or threads."""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Unpack, final

import trio

from channel import MessageCodec
from channel._util import NoPublicConstructor

from ._arguments import check_codec, check_socket
from ._comms import Comms
from ._cross_loop import CrossLoopEvent
from ._open import run_comms
from ._options import ChannelConfig, CommsOptions

__all__ = ["ThreadedComms", "comms_in_thread"]


@final
class ThreadedComms(metaclass=NoPublicConstructor):
    """What :func:`comms_in_thread` returns: enter it with ``with`` or ``async with``."""

    def __init__(self, sock: socket.socket, codec: MessageCodec, config: ChannelConfig) -> None:
        self._sock = sock
        self._codec = codec
        self._config = config
        self._started = CrossLoopEvent()  # the channel is open, or failed to open
        self._finished = CrossLoopEvent()  # the actor's trio run is over
        self._comms: Comms | None = None
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="trio-comms", daemon=True)
        self._entered = False

    def _run(self) -> None:
        try:
            trio.run(self._main)
        finally:
            self._finished.set()
            self._started.set()  # never leave an entering host waiting

    async def _main(self) -> None:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(self._sock))
        try:
            async with run_comms(stream, self._codec, self._config) as comms:
                self._comms = comms
                self._token = trio.lowlevel.current_trio_token()
                self._stop = trio.Event()
                self._started.set()
                await self._stop.wait()
        except BaseException as exc:
            if self._comms is not None:
                raise
            self._error = exc

    def _begin(self) -> None:
        if self._entered:
            raise RuntimeError("comms_in_thread(...) can be entered only once")
        self._entered = True
        self._thread.start()

    def _opened(self) -> Comms:
        if self._comms is None:
            self._thread.join()
            assert self._error is not None
            raise self._error
        return self._comms

    def _request_stop(self) -> None:
        assert self._token is not None and self._stop is not None
        with contextlib.suppress(trio.RunFinishedError):
            self._token.run_sync_soon(self._stop.set)

    # ------------------------------------------------------------------ blocking host

    def __enter__(self) -> Comms:
        self._begin()
        self._started.wait_blocking()
        return self._opened()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._request_stop()
        self._thread.join()

    # ------------------------------------------------------------------ async host

    async def __aenter__(self) -> Comms:
        # Starting a thread is the only blocking step (well under a millisecond); the
        # actor's start and the hello wait happen on its thread while this loop runs.
        self._begin()
        await self._started.wait()
        return self._opened()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._request_stop()
        await self._finished.wait()
        self._thread.join()  # the run is over: the thread is returning


def comms_in_thread(sock: socket.socket, codec: MessageCodec, **options: Unpack[CommsOptions]) -> ThreadedComms:
    """Run a comms actor on ``sock`` in a daemon thread with its own trio loop.

    For hosts that are not trio programs, or trio programs whose own loop might
    block: ``comms.send(...)`` works from any of the host's threads and
    ``await comms.asend(...)`` from any asyncio loop or trio run. Because the actor
    has a loop of its own, a host thread or loop that blocks cannot stall the
    channel: replies keep being routed to everyone else. ::

        with actors.comms_in_thread(sock, codec, timeout=10) as comms:      # threads
            reply = comms.send(GetVariable(key="k"))

        async with actors.comms_in_thread(sock, codec) as comms:            # asyncio or trio
            reply = await comms.asend(GetVariable(key="k"))

    ``async with`` never blocks the host's loop while the actor starts, waits for
    the hello, or shuts down. The actor owns ``sock`` and closes it. Leaving the
    block closes the channel (pending calls raise ``ChannelClosed``) and ends the
    thread.

    Args:
        sock: a connected stream socket (a socketpair end, a Unix or TCP socket).
        codec: the message codec.
        **options: :class:`~actors.CommsOptions`, as for :func:`~actors.open_comms`.

    Raises:
        TypeError: ``sock`` is not a connected stdlib stream socket (a trio socket or
            stream, say: the message says what to pass), or ``codec`` is not a
            codec (``channel.MessageCodec``); raised here, before any thread starts.
        ValueError: an option is out of range (raised here, before any thread starts).
        Exception: on entering, whatever :func:`~actors.open_comms` raises on entry (no
            hello, a hello that is an error).
    """
    check_socket(sock, "comms_in_thread")  # checked here, before any thread starts
    check_codec(codec, "comms_in_thread")
    config = ChannelConfig(**options)
    result: ThreadedComms = ThreadedComms._create(sock, codec, config)
    return result
