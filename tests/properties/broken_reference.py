"""A deliberately broken requester, modelled on Apache Airflow 3.1.8's TriggerCommsDecoder.

DO NOT USE. It exists so the property tests can prove they catch the bug this project
was founded on. Its design, reduced to the parts that matter:

- one socket shared by every caller, and one shared frame buffer (the StreamReader);
- an ``asyncio.Lock`` around "write the request, then read the next frame", which
  excludes nothing across threads and event loops, and which a cancelled caller
  leaves after writing but before reading, stranding its reply in the stream;
- sync callers in threads use asgiref's ``async_to_sync``, which runs the coroutine
  on a new event loop when the thread has none;
- the frame id is checked on read: a mismatch raises
  ``RuntimeError("Response read out of order! ...")``;
- no per-call deadline of its own: a timeout here is what Airflow's trigger timeout
  does, cancelling the coroutine wherever it is (``asyncio.wait_for``).
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from typing import Any

from asgiref.sync import async_to_sync

from actors import RemoteError
from channel import NEED_DATA, Codec, FrameDecoder, RequestFrame, ResponseFrame, encode_frame, read_error_body


class LockedComms:
    def __init__(self, sock: socket.socket, codec: Codec) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._codec = codec
        self._lock = asyncio.Lock()
        self._ids = itertools.count(1)
        self._decoder = FrameDecoder(ResponseFrame)

    async def asend(self, message: object, timeout: float | None = None) -> Any:
        if timeout is None:
            return await self._asend(message)
        return await asyncio.wait_for(self._asend(message), timeout)

    async def _asend(self, message: object) -> Any:
        loop = asyncio.get_running_loop()
        frame_id = next(self._ids)
        data = encode_frame(RequestFrame(id=frame_id, body=self._codec.encode(message)))
        async with self._lock:
            await loop.sock_sendall(self._sock, data)
            frame = await self._read_frame(loop)
        if frame.id != frame_id:
            raise RuntimeError(f"Response read out of order! Got frame.id={frame.id}, expect_id={frame_id}")
        if frame.error is not None:
            code, detail = read_error_body(frame.error)
            raise RemoteError(code, detail, frame_id=frame.id)
        return None if frame.body is None else self._codec.decode(frame.body)

    async def _read_frame(self, loop: asyncio.AbstractEventLoop) -> ResponseFrame:
        while (frame := self._decoder.next_frame()) is NEED_DATA:
            data = await loop.sock_recv(self._sock, 65536)
            if not data:
                raise EOFError("peer closed")
            self._decoder.receive_data(data)
        assert isinstance(frame, ResponseFrame)
        return frame

    def send(self, message: object, timeout: float | None = None) -> Any:
        return async_to_sync(self.asend)(message, timeout)
