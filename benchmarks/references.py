"""The designs people use today, each written as the fastest honest version of itself.

No reference goes through trio-comms' own decoder: each reads frames the way its design
would (``readexactly`` of the prefix then the payload, or ``recv`` into a buffer) and
unpacks them with msgpack directly. Each comes in two flavours:

- *untyped*: raw msgpack maps in and out, the minimum work per request;
- *typed*: the same ``Codec`` as trio-comms (attrs messages via cattrs), so the
  comparison with trio-comms is of the designs, not of the encoders.

The designs:

- :class:`LockSerialized` is Airflow's task SDK ``CommsDecoder``: one request in
  flight under a ``threading.Lock``, write then blocking read.
- :class:`PendingFutures` is Airflow 3.2+'s ``TriggerCommsDecoder``: one reader task
  resolving a dict of futures by id, each coroutine writing its own frame with
  ``StreamWriter.write``, threads bridged with ``run_coroutine_threadsafe``.
- :class:`ParkedTasks` is the same design on trio, with nothing else: one reader task
  rescheduling a dict of parked tasks by id, each task writing its own frame on the
  socket's fd. It has no limits, deadlines, cancellation or checks, so it is what
  any trio design with a reader task costs at the least: the bound for trio-comms'
  trio tasks, as ``PendingFutures`` untyped is for asyncio designs.
- :class:`HandOver` is the single-owner design for threads with nothing else: each
  thread hands its request to one trio thread that owns the socket (``run_sync_soon``)
  and blocks on a lock the reader releases. It bounds trio-comms' threads as
  ``ParkedTasks`` bounds its tasks: what the hand-overs cost, without a second writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import socket
import struct
import threading
from typing import Any

import msgpack
import outcome
import trio

from channel import Codec

_LENGTH = struct.Struct(">I")


class Flavour:
    """How a reference turns a message into a body and a body into a reply."""

    def __init__(self, codec: Codec | None) -> None:
        self.codec = codec

    def frame(self, frame_id: int, message: Any) -> bytes:
        if self.codec is None:
            payload = msgpack.packb([frame_id, message])  # message is already a map
        else:  # a 2-element array: the id, then the body the codec packed
            payload = b"\x92" + msgpack.packb(frame_id) + self.codec.pack(message)
        return _LENGTH.pack(len(payload)) + payload

    def reply(self, body: Any) -> Any:
        return body if self.codec is None else self.codec.decode(body)


class LockSerialized:
    """Airflow's task SDK CommsDecoder: write then blocking read, under a threading.Lock."""

    def __init__(self, sock: socket.socket, codec: Codec | None) -> None:
        sock.setblocking(True)
        self._sock = sock
        self._flavour = Flavour(codec)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def _read_exactly(self, size: int) -> bytearray:
        buffer = bytearray(size)
        view = memoryview(buffer)
        while view:
            received = self._sock.recv_into(view)
            if not received:
                raise EOFError("peer closed")
            view = view[received:]
        return buffer

    def send(self, message: Any) -> Any:
        with self._lock:
            frame_id = next(self._ids)
            self._sock.sendall(self._flavour.frame(frame_id, message))
            (length,) = _LENGTH.unpack(self._read_exactly(4))
            reply_id, body = msgpack.unpackb(self._read_exactly(length))
        assert reply_id == frame_id
        return self._flavour.reply(body)


class PendingFutures:
    """Airflow 3.2+'s TriggerCommsDecoder: a reader task, a dict of futures by id."""

    def __init__(self, sock: socket.socket, codec: Codec | None) -> None:
        self._sock = sock
        self._flavour = Flavour(codec)
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._reader, self._writer = await asyncio.open_connection(sock=self._sock)
        self._reader_task = asyncio.ensure_future(self._read_loop())

    async def _read_loop(self) -> None:
        reader, pending = self._reader, self._pending
        while True:
            (length,) = _LENGTH.unpack(await reader.readexactly(4))
            frame_id, body = msgpack.unpackb(await reader.readexactly(length))
            future = pending.pop(frame_id, None)
            if future is not None and not future.done():
                future.set_result(body)

    async def asend(self, message: Any) -> Any:
        frame_id = next(self._ids)
        future = self.loop.create_future()
        self._pending[frame_id] = future
        self._writer.write(self._flavour.frame(frame_id, message))
        return self._flavour.reply(await future)

    def send(self, message: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(self.asend(message), self.loop).result()

    async def aclose(self) -> None:
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, asyncio.IncompleteReadError):
            await self._reader_task
        self._writer.close()


class ParkedTasks:
    """A reader task and a dict of parked trio tasks by id; each task writes its own frame.

    Writes go straight to the socket's fd; what the socket does not take waits in one
    buffer for a writer task (and later frames queue behind it, so frames never
    interleave). Reads go into one reused buffer; frames are cut by their length
    prefix and unpacked with ``msgpack.unpackb``. Start :meth:`run` in a nursery
    (``await nursery.start(comms.run)``), call :meth:`asend` from the tasks of that run.
    """

    def __init__(self, sock: socket.socket, codec: Codec | None) -> None:
        sock.setblocking(False)
        self._fd = sock.fileno()
        self._flavour = Flavour(codec)
        self._ids = itertools.count(1)
        self._parked: dict[int, trio.lowlevel.Task] = {}
        self._unsent = bytearray()
        self._writer: trio.lowlevel.Task | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read and route replies; finish writes the socket took in part. Until cancelled."""
        await self.run_for(None, task_status=task_status)

    async def run_for(
        self, waiters: dict[int, list[Any]] | None, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """:meth:`run`, or with ``waiters``: each reply goes to ``waiters[id]`` (a list of
        ``[request, held lock]``) as ``[body, lock]``, and its lock is released."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._write_rest)
            task_status.started()
            await self._read_loop(waiters)

    async def _read_loop(self, waiters: dict[int, list[Any]] | None) -> None:
        fd, parked = self._fd, self._parked
        chunk = bytearray(256 * 1024)
        buffer = bytearray()
        while True:
            await trio.lowlevel.wait_readable(fd)
            received = os.readv(fd, (chunk,))
            if not received:
                raise EOFError("peer closed")
            buffer += memoryview(chunk)[:received]
            pos, size = 0, len(buffer)
            while size - pos >= 4:
                end = pos + 4 + int.from_bytes(buffer[pos : pos + 4], "big")
                if end > size:
                    break
                frame_id, body = msgpack.unpackb(buffer[pos + 4 : end])
                pos = end
                if waiters is None:
                    trio.lowlevel.reschedule(parked.pop(frame_id), outcome.Value(body))
                else:
                    waiter = waiters.pop(frame_id)
                    waiter[0] = body
                    waiter[1].release()
            del buffer[:pos]

    async def _write_rest(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._writer = trio.lowlevel.current_task()
        task_status.started()
        while True:
            await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.SUCCEEDED)
            while self._unsent:
                await trio.lowlevel.wait_writable(self._fd)
                del self._unsent[: os.write(self._fd, self._unsent)]

    def write(self, data: bytes) -> None:
        """Write whole frames now, or after what waits (on the trio thread)."""
        if self._unsent:
            self._unsent += data
        else:
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:
                written = 0
            if written < len(data):
                self._unsent += data[written:]
                assert self._writer is not None
                trio.lowlevel.reschedule(self._writer)

    async def asend(self, message: Any) -> Any:
        frame_id = next(self._ids)
        self.write(self._flavour.frame(frame_id, message))
        self._parked[frame_id] = trio.lowlevel.current_task()
        body = await trio.lowlevel.wait_task_rescheduled(lambda _: trio.lowlevel.Abort.SUCCEEDED)
        return self._flavour.reply(body)


class HandOver:
    """Threads hand requests to one trio thread that alone reads and writes the socket.

    ``send`` (any thread but the trio one) passes the packed request and a held lock to
    the trio thread with ``TrioToken.run_sync_soon``; there it gets its id and is
    written at once, and the reader releases the lock with the reply stored beside it.
    Use as a context manager: the trio thread runs while the block does.
    """

    def __init__(self, sock: socket.socket, codec: Codec | None) -> None:
        self._sock = sock
        self._flavour = Flavour(codec)
        self._ids = itertools.count(1)  # used on the trio thread only
        self._started = threading.Event()
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.CancelScope | None = None

    def __enter__(self) -> HandOver:
        self._thread.start()
        self._started.wait()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._token is not None and self._stop is not None
        self._token.run_sync_soon(self._stop.cancel)
        self._thread.join()

    async def _main(self) -> None:
        self._owner = ParkedTasks(self._sock, None)
        self._waiting: dict[int, list[Any]] = {}
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as self._stop:
            async with trio.open_nursery() as nursery:
                await nursery.start(self._owner.run_for, self._waiting)
                self._started.set()

    def _submit(self, waiter: list[Any]) -> None:
        frame_id = next(self._ids)
        self._waiting[frame_id] = waiter
        self._owner.write(self._flavour.frame(frame_id, waiter[0]))

    def send(self, message: Any) -> Any:
        done = threading.Lock()
        done.acquire()
        waiter = [message, done]
        assert self._token is not None
        self._token.run_sync_soon(self._submit, waiter)
        done.acquire()
        return self._flavour.reply(waiter[0])
