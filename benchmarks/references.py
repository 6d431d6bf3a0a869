"""The designs people use today, written small and faithful, for side-by-side runs.

Both use the same codec and framing as trio-comms, so the comparison is of the
designs, not of the encoders.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import threading
from typing import Any

from channel import NEED_DATA, Codec, FrameDecoder, ResponseFrame, frame_head

_LENGTH = struct.Struct(">I")


class LockSerialized:
    """Airflow's task SDK CommsDecoder: one request in flight under a threading.Lock,
    write then blocking read."""

    def __init__(self, sock: socket.socket, codec: Codec) -> None:
        sock.setblocking(True)
        self._sock = sock
        self._codec = codec
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._decoder = FrameDecoder(ResponseFrame)

    def send(self, message: object) -> Any:
        body = self._codec.pack(message)
        with self._lock:
            frame_id = next(self._ids)
            self._sock.sendall(frame_head(frame_id, len(body), 1) + body)
            while (frame := self._decoder.next_frame()) is NEED_DATA:
                self._decoder.receive_data(self._sock.recv(1 << 16))
        assert isinstance(frame, ResponseFrame) and frame.id == frame_id
        return self._codec.decode(frame.body)


class PendingFutures:
    """Airflow 3.2+'s TriggerCommsDecoder: one reader task resolving a dict of futures
    by id, writers calling StreamWriter.write, threads bridged with
    run_coroutine_threadsafe."""

    def __init__(self, sock: socket.socket, codec: Codec) -> None:
        self._sock = sock
        self._codec = codec
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[ResponseFrame]] = {}

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._reader, self._writer = await asyncio.open_connection(sock=self._sock)
        self._reader_task = asyncio.ensure_future(self._read_loop())

    async def _read_loop(self) -> None:
        decoder = FrameDecoder(ResponseFrame)
        while True:
            (length,) = _LENGTH.unpack(await self._reader.readexactly(4))
            decoder.receive_data(_LENGTH.pack(length) + await self._reader.readexactly(length))
            frame = decoder.next_frame()
            assert isinstance(frame, ResponseFrame)
            future = self._pending.pop(frame.id, None)
            if future is not None and not future.done():
                future.set_result(frame)

    async def asend(self, message: object) -> Any:
        body = self._codec.pack(message)
        frame_id = next(self._ids)
        future = self.loop.create_future()
        self._pending[frame_id] = future
        self._writer.write(frame_head(frame_id, len(body), 1) + body)
        frame = await future
        return self._codec.decode(frame.body)

    def send(self, message: object) -> Any:
        return asyncio.run_coroutine_threadsafe(self.asend(message), self.loop).result()

    async def aclose(self) -> None:
        self._reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, asyncio.IncompleteReadError):
            await self._reader_task
        self._writer.close()
