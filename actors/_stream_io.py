"""Reading and writing a stream with as few scheduler passes as the stream allows.

For a ``trio.SocketStream`` the syscalls are made here, on its fd: a read waits for
the socket to be readable and then reads into one reused buffer (one scheduler
pass, where SocketStream takes two), and a write writes until the socket is full
before it waits (none, where SocketStream takes one); :meth:`StreamIO.send_nowait`
writes without waiting at all, for the pump's end-of-pass writes. The caller keeps
fairness: a reader yields once per read, in that wait. This fast path is POSIX: it
needs ``os.readv``/``os.write`` on a socket fd, which Windows does not offer, so
there (and for every other stream) the stream's own ``send_all`` and
``receive_some`` are used. ``trio.SocketStream`` is
final, so no subclass with overrides can reach the fast path.

Errors are the stream's own (``OSError`` from the fd, or whatever the stream
raises); the stream still belongs to its owner, who closes it.
"""

from __future__ import annotations

import array
import fcntl
import math
import os
import sys
import termios

import trio

__all__ = ["StreamIO"]

RECEIVE_SIZE = 256 * 1024


class StreamIO:
    """The one reader's and the one writer's view of a stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._fd = -1
        self._received = bytearray()
        if isinstance(stream, trio.SocketStream) and type(stream) is trio.SocketStream and sys.platform != "win32":
            self._fd = stream.socket.fileno()
            self._received = bytearray(RECEIVE_SIZE)  # reused: no allocation per read

    async def send_all(self, data: bytes | memoryview, *, stall_timeout: float = math.inf) -> None:
        """Write all of ``data``, waiting only while the socket is full.

        Raises:
            trio.TooSlowError: nothing could be written for ``stall_timeout`` seconds
                (on the fast path: the socket stayed full that long; on other
                streams, whose progress is not visible, ``send_all`` took that long).
        """
        if self._fd < 0:
            with trio.fail_after(stall_timeout):
                await self._stream.send_all(data)
            return
        with memoryview(data) as view:
            while view:
                try:
                    written = os.write(self._fd, view)
                except BlockingIOError:
                    with trio.fail_after(stall_timeout):  # each wait: any progress resets it
                        await trio.lowlevel.wait_writable(self._fd)
                    continue
                view = view[written:]

    def unread_bytes(self) -> int:
        """Bytes waiting unread in the socket (``FIONREAD``); 0 off the fast path or
        once the socket is closed."""
        if self._fd < 0:
            return 0
        count = array.array("i", [0])
        try:
            fcntl.ioctl(self._fd, termios.FIONREAD, count, True)
        except OSError:
            return 0
        return count[0]

    @property
    def writes_now(self) -> bool:
        """True if :meth:`send_nowait` can write (the fd fast path)."""
        return self._fd >= 0

    def send_nowait(self, data: bytes) -> int:
        """Write what the socket takes now, without waiting; how many bytes it took.

        Only on the fast path (see :attr:`writes_now`).

        Raises:
            OSError: the socket failed.
        """
        try:
            return os.write(self._fd, data)
        except BlockingIOError:
            return 0

    async def receive_some(self) -> bytes | bytearray | memoryview:
        """The next bytes from the stream; ``b""`` at end of stream.

        On the fast path the bytes are a view of a buffer this object reuses: they
        are valid until the next call (the decoder copies what it keeps).
        """
        if self._fd < 0:
            return await self._stream.receive_some(RECEIVE_SIZE)
        while True:
            await trio.lowlevel.wait_readable(self._fd)
            try:
                # Into one preallocated buffer: a fresh 256 KiB bytes per read would
                # cost an mmap, an mremap and a munmap each time.
                received = os.readv(self._fd, (self._received,))
            except BlockingIOError:
                continue
            return memoryview(self._received)[:received]
