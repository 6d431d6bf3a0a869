"""The frame pump: the one read loop and the one batched write queue of a stream.

Both ends of a channel use it: the requester's actor and the responder. The reader
feeds every received chunk to a sans-IO :class:`~channel.FrameDecoder` and hands
each frame (or :class:`~channel.OversizedFrame`) to its owner before it reads again.
The writer sends, in one write, everything its owner has ready at that moment, and
parks when nothing is. One policy for what ends a stream, on both ends:

- the peer closed its side between frames: ``EOFError``;
- the peer sent bytes that are not frames: the decoder's ``RemoteProtocolError``;
- the stream failed (``trio.BrokenResourceError``, ``trio.ClosedResourceError``,
  any ``OSError``): that error.

The loops *return* that cause instead of raising it, so each owner decides what
the end means (the actor closes the channel with it; the responder drains and
returns, or raises a protocol error). Anything else escaping is a bug and raises.
"""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from typing import Generic

import trio

from channel import (
    END_OF_STREAM,
    NEED_DATA,
    FrameDecoder,
    FrameFields,
    OversizedFrame,
    RemoteProtocolError,
)
from channel._frames import FrameT

from ._stream_io import StreamIO

__all__ = ["STREAM_ERRORS", "FramePump"]

STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
"""What a failing stream raises; the pump returns these as the cause of its end."""

MAX_WRITE_BATCH = 1024 * 1024
"""Bytes joined into one write, at most (a batch always holds at least one frame)."""


class FramePump(Generic[FrameT]):
    """One reader and one batched writer over a stream, with one error policy.

    ::

        pump = FramePump(stream, ResponseFrame, max_frame_size=2**24)
        nursery.start_soon(pump.read_frames, on_frame)
        nursery.start_soon(pump.write_batches, pump.take_queued)
        pump.queue(frame_bytes)          # from the owner's tasks, same thread
    """

    def __init__(self, stream: trio.abc.Stream, frame_type: type[FrameT], *, max_frame_size: int) -> None:
        self.io = StreamIO(stream)
        self.decoder: FrameDecoder[FrameT] = FrameDecoder(frame_type, max_frame_size=max_frame_size)
        self.bytes_sent = 0
        self.bytes_received = 0
        self._queued: collections.deque[bytes] = collections.deque()
        self._writer: trio.lowlevel.Task | None = None
        self._writer_parked = False
        self._finishing = False

    # ------------------------------------------------------------------ reading

    async def read_frames(
        self,
        on_frame: Callable[[FrameFields | OversizedFrame], None],
        *,
        after_read: Callable[[], None] | None = None,
        before_frame: Callable[[], Awaitable[None]] | None = None,
    ) -> BaseException:
        """Read and decode until the stream ends; return why it ended (see the module).

        Every frame of one read is handed to ``on_frame``, as the decoder's
        :meth:`~channel.FrameDecoder.next_fields` tuple (or an ``OversizedFrame``),
        before the next read, then
        ``after_read`` runs once. ``before_frame``, if given, is awaited before each
        frame: the responder waits there for room among its handlers, which is the
        backpressure a flooding peer feels. ``on_frame`` may raise
        ``RemoteProtocolError`` to end the stream as a protocol error.
        """
        decoder = self.decoder
        next_fields = decoder.next_fields
        try:
            while True:
                data = await self.io.receive_some()
                self.bytes_received += len(data)
                decoder.receive_data(data)
                while True:
                    event = next_fields()
                    if event is NEED_DATA:
                        break
                    if event is END_OF_STREAM:
                        return EOFError("peer closed the stream")
                    if before_frame is not None:
                        await before_frame()
                    on_frame(event)
                if after_read is not None:
                    after_read()
        except (*STREAM_ERRORS, RemoteProtocolError) as exc:
            return exc

    # ------------------------------------------------------------------ writing

    def queue(self, data: bytes) -> None:
        """Queue whole frames for the writer (owner's thread) and wake it."""
        self._queued.append(data)
        self.wake_writer()

    def take_queued(self) -> bytes | None:
        """The default batch: everything :meth:`queue` has been given, joined."""
        queued = self._queued
        if not queued:
            return None
        if len(queued) == 1:
            return queued.popleft()
        data = b"".join(queued)
        queued.clear()
        return data

    def wake_writer(self) -> None:
        """Wake the writer if it is parked waiting for something to write."""
        if self._writer_parked:
            self._writer_parked = False
            assert self._writer is not None
            trio.lowlevel.reschedule(self._writer)

    def finish(self) -> None:
        """Let the writer return once nothing is left to write."""
        self._finishing = True
        self.wake_writer()

    async def write_batches(self, next_batch: Callable[[], bytes | None]) -> BaseException | None:
        """Write each batch ``next_batch`` returns; park while it returns ``None``.

        Returns ``None`` after :meth:`finish` once nothing is left, or the stream's
        error if a write failed.
        """
        self._writer = trio.lowlevel.current_task()
        try:
            while True:
                data = next_batch()
                if data is None:
                    if self._finishing:
                        return None
                    await self._park()
                    continue
                await self.io.send_all(data)
                self.bytes_sent += len(data)
        except STREAM_ERRORS as exc:
            return exc

    async def _park(self) -> None:
        self._writer_parked = True

        def abort(_: object) -> trio.lowlevel.Abort:
            self._writer_parked = False
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)
