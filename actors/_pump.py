"""The frame pump: the one read loop and the one batched write queue of a stream.

Both ends of a channel use it: the requester's actor and the responder. The reader
feeds every received chunk to a sans-IO :class:`~channel.FrameDecoder` and hands
each frame (or :class:`~channel.OversizedFrame` / :class:`~channel.RejectedFrame`) to its owner before it reads again.

Writes take whole batches from the owner's ``next_batch`` and are made by one code
path, :meth:`FramePump._send_ready`, always on the owner's trio thread:

- on the socket fast path, at the end of each trio scheduler pass (an instrument's
  ``before_io_wait`` hook), so every request made ready during the pass leaves in
  one write without waking a writer task; or at once from an owner's task
  (:meth:`FramePump.write_now`, when the peer is idle). The writer task only
  finishes a batch the socket took in part, and until it has, nothing else is
  written, so frames never interleave;
- on any other stream, the writer task writes each batch with ``send_all``.

One policy for what ends a stream, on both ends:

- the peer closed its side between frames: ``EOFError``;
- the peer sent bytes that are not frames: the decoder's ``RemoteProtocolError``;
- the stream failed (``trio.BrokenResourceError``, ``trio.ClosedResourceError``,
  any ``OSError``): that error;
- bytes were waiting and none could be written for ``stall_timeout``:
  :class:`~actors.PeerNotReading`.

The loops *return* that cause instead of raising it, so each owner decides what
the end means (the actor closes the channel with it; the responder drains and
returns, or raises a protocol error). Anything else escaping is a bug and raises.
"""

from __future__ import annotations

import collections
import contextlib
import math
from collections.abc import Awaitable, Callable
from typing import Any, Generic

import trio

from channel import END_OF_STREAM, NEED_DATA, FrameDecoder, OversizedFrame, RejectedFrame, RemoteProtocolError
from channel._frames import FrameT
from channel.lowlevel import FrameFields

from ._errors import PeerNotReading
from ._stream_io import StreamIO

__all__ = ["STREAM_ERRORS", "FramePump"]

STREAM_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)
"""What a failing stream raises; the pump returns these as the cause of its end."""

MAX_WRITE_BATCH = 1024 * 1024
"""Bytes joined into one write, at most (a batch always holds at least one frame)."""


class FramePump(Generic[FrameT]):
    """One reader and one batched writer over a stream, with one error policy.

    ::

        pump = FramePump(stream, RequestFrame, max_frame_size=2**24)
        nursery.start_soon(pump.read_frames, on_frame)
        nursery.start_soon(pump.write_batches)
        pump.queue(frame_bytes)          # from the owner's tasks, same thread

    The owner may instead give ``next_batch``, a function returning its next
    whole frames as one ``bytes`` (or ``None``); every write takes its bytes from it.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        frame_type: type[FrameT],
        *,
        max_frame_size: int,
        next_batch: Callable[[], bytes | None] | None = None,
        stall_timeout: float = math.inf,
    ) -> None:
        self.io = StreamIO(stream)
        self._stall_timeout = stall_timeout
        self._bytes_queued = 0  # given to queue(), for unwritten_bytes
        self._drained = trio.lowlevel.ParkingLot()  # tasks waiting in wait_unwritten_below
        self._next_batch = self.take_queued if next_batch is None else next_batch
        self._pass_end_writes = self.io.writes_now
        self.decoder: FrameDecoder[FrameT] = FrameDecoder(frame_type, max_frame_size=max_frame_size)
        self.bytes_sent = 0
        self.bytes_received = 0
        self.bytes_handed = 0  # received, and every frame in them handed to the owner
        self._handed = trio.lowlevel.ParkingLot()  # tasks waiting in read_what_waits
        self._queued: collections.deque[bytes] = collections.deque()
        self._writer: trio.lowlevel.Task | None = None
        self._writer_parked = False
        self._finishing = False
        self._writing = False  # write_batches is running: writes may go out
        self._dirty = False  # something was made ready since the last write
        self._unsent: memoryview | None = None  # a batch the socket took in part
        self._write_error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None

    # ------------------------------------------------------------------ reading

    async def read_frames(
        self,
        on_frame: Callable[[FrameFields | OversizedFrame | RejectedFrame], None],
        *,
        after_read: Callable[[], None] | None = None,
        before_frame: Callable[[], Awaitable[None]] | None = None,
    ) -> BaseException:
        """Read and decode until the stream ends; return why it ended (see the module).

        Every frame of one read is handed to ``on_frame``, as the decoder's
        :meth:`~channel.FrameDecoder.next_fields` tuple (or an ``OversizedFrame`` or
        ``RejectedFrame``, which fail alone),
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
                self.bytes_handed = self.bytes_received
                if self._handed:
                    self._handed.unpark_all()
                if after_read is not None:
                    after_read()
        except (*STREAM_ERRORS, RemoteProtocolError) as exc:
            return exc

    async def read_what_waits(self, progress_timeout: float) -> None:
        """Wait until every byte that had reached us by now (in the socket, or read
        and not yet decoded) has been read and its frames handed to the owner: a read
        barrier, for a decision that must be made on what the peer sent (the
        supervisor's stuck decision). Only bytes already there count, so it ends;
        it gives up after ``progress_timeout`` seconds in which reading made no
        progress (the reader itself is held up)."""
        mark = self.bytes_received + self.io.unread_bytes()
        while self.bytes_handed < mark:
            before = self.bytes_handed
            with trio.move_on_after(progress_timeout):
                while self.bytes_handed < mark:
                    await self._handed.park()
            if self.bytes_handed == before:
                return

    # ------------------------------------------------------------------ writing

    def queue(self, data: bytes) -> None:
        """Queue whole frames for the writer (owner's thread); see :meth:`data_ready`."""
        self._queued.append(data)
        self._bytes_queued += len(data)
        self.data_ready()

    @property
    def unwritten_bytes(self) -> int:
        """Bytes given to :meth:`queue` and not yet written (owners that use it)."""
        return self._bytes_queued - self.bytes_sent

    async def wait_unwritten_below(self, limit: int) -> None:
        """Wait until at most ``limit`` queued bytes are unwritten: the backpressure
        an owner that queues (the responder's replies) puts on its own reading."""
        while self.unwritten_bytes > limit and self._write_error is None and self._writing:
            await self._drained.park()

    def _sent(self, count: int) -> None:
        self.bytes_sent += count
        if self._drained:
            self._drained.unpark_all()

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

    def data_ready(self) -> None:
        """The owner has frames to write (owner's thread).

        On the socket fast path they are written at the end of this scheduler pass,
        together with everything else made ready in it; otherwise the writer task
        wakes to write them.
        """
        if self._pass_end_writes:
            self._dirty = True
        else:
            self.wake_writer()

    def write_now(self) -> None:
        """Write what is ready at once, from the owner's task, instead of at the end
        of the pass (the peer is idle: let it start). As :meth:`data_ready` when the
        fast path is not in use."""
        if self._pass_end_writes and self._writing:
            self._send_ready()
        else:
            self.data_ready()

    def write_at_pass_end(self, timeout: float) -> None:
        """Called once per scheduler pass, before trio polls for I/O (as an
        instrument's ``before_io_wait``, whose ``timeout`` it ignores): write
        everything made ready during the pass, in one write if it fits."""
        if not self._dirty:
            return
        if self._unsent is not None or self._write_error is not None:
            return  # the writer task, already awake, writes everything once it is done
        try:
            self._send_ready()
        except BaseException as exc:  # a bug: never let trio disable the hook silently
            self._write_error = exc
            self.wake_writer()
        if self._unsent is not None or self._write_error is not None:
            # This pass woke the writer task to finish; trio has already chosen how
            # long it may sleep in this poll, so make the poll return at once.
            assert self._token is not None
            self._token.run_sync_soon(_nothing)

    def _send_ready(self) -> None:
        """The one place the fast path writes: on the owner's thread, without waiting,
        each batch whole and in order. A batch the socket takes only in part is left
        to the writer task, and nothing else is written until it is done."""
        self._dirty = False
        next_batch = self._next_batch
        while self._unsent is None and self._write_error is None:
            data = next_batch()
            if data is None:
                return
            try:
                sent = self.io.send_nowait(data)
            except STREAM_ERRORS as exc:
                self._write_error = exc
                self.wake_writer()
                return
            self._sent(sent)
            if sent < len(data):
                self._unsent = memoryview(data)[sent:]
                self.wake_writer()

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

    async def write_batches(self) -> BaseException | None:
        """Write each batch the owner's ``next_batch`` returns, until :meth:`finish`.

        On the socket fast path, batches are written by :meth:`_send_ready` at the
        end of each scheduler pass (an instrument's ``before_io_wait``) or by an
        owner's :meth:`write_now`; this task only finishes a batch the socket took
        in part, waiting until it is writable. Otherwise this task writes every batch.

        Returns ``None`` after :meth:`finish` once nothing is left, the stream's
        error if a write failed, or :class:`~actors.PeerNotReading` if the peer read
        none of a waiting batch for ``stall_timeout`` seconds.
        """
        self._writer = trio.lowlevel.current_task()
        self._token = trio.lowlevel.current_trio_token()
        self._writing = True
        instrument = _PassEndWrites(self) if self._pass_end_writes else None
        if instrument is not None:
            trio.lowlevel.add_instrument(instrument)
        try:
            while True:
                if self._write_error is not None:
                    return self._write_error
                if self._unsent is None:
                    if self._pass_end_writes:
                        self._send_ready()  # leaves what the socket did not take
                    else:
                        data = self._next_batch()
                        if data is not None:
                            self._unsent = memoryview(data)
                    if self._write_error is not None:
                        continue
                unsent = self._unsent
                if unsent is not None:
                    try:
                        await self.io.send_all(unsent, stall_timeout=self._stall_timeout)
                    except trio.TooSlowError:
                        self._write_error = PeerNotReading(
                            len(unsent) + sum(map(len, self._queued)), self._stall_timeout
                        )
                        continue
                    self._unsent = None
                    self._sent(len(unsent))
                    continue
                if self._finishing:
                    return None
                await self._park()
        except STREAM_ERRORS as exc:
            return exc
        finally:
            self._writing = False
            self._drained.unpark_all()
            if instrument is not None:
                with contextlib.suppress(KeyError):  # trio drops an instrument that raised
                    trio.lowlevel.remove_instrument(instrument)

    async def _park(self) -> None:
        self._writer_parked = True

        def abort(_: object) -> trio.lowlevel.Abort:
            self._writer_parked = False
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)


class _PassEndWrites(trio.abc.Instrument):
    """The end-of-pass hook: trio calls ``before_io_wait`` once per scheduler pass,
    on its thread, after every task that was runnable has run."""

    def __init__(self, pump: FramePump[Any]) -> None:
        # The pump's method itself, with no frame between: trio calls it every pass.
        self.before_io_wait = pump.write_at_pass_end  # type: ignore[method-assign]


def _nothing() -> None:
    """Scheduled only to wake trio's I/O poll."""
