"""The comms actor: the only code that reads the stream and the only code that writes it.

One reader task and one writer task, both inside the actor's own nursery, own the
stream. Callers never touch it: they hand the actor a reply slot holding their
packed request. Only the actor allocates frame ids, so a reply can only ever reach
the slot registered under its id; there is no lock to get wrong.

Everything in this class runs on the actor's trio thread. Other threads reach it
only through :meth:`CommsActor.post`, which queues an operation and schedules one
drain of the queue on the trio loop per batch, not one per call.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

import trio
from trio_util import AsyncValue

from channel import (
    END_OF_STREAM,
    NEED_DATA,
    Codec,
    FrameDecoder,
    MessageDecodeError,
    RemoteProtocolError,
    ResponseFrame,
    frame_head,
    read_error_body,
)

from ._errors import RemoteError, closed_error
from ._slots import ReplySlot, WakeBatch, flush_wakeups
from ._stats import ChannelState, CommsStatistics
from ._stream_io import StreamIO

__all__ = ["CommsActor"]

log = logging.getLogger("trio_comms")

_MAX_WRITE_BATCH = 1024 * 1024  # bytes joined into one send_all
_COMPACT_WAITING_AFTER = 64  # abandoned slots tolerated in the waiting queue


class CommsActor:
    """Owns one stream: routes replies to slots, writes requests, enforces the limits.

    Not public: users get a :class:`~actors.Comms` from ``open_comms``.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        codec: Codec,
        *,
        max_in_flight: int,
        max_frame_size: int,
        expect_hello: bool,
    ) -> None:
        self._stream = stream
        self._io = StreamIO(stream)
        self._codec = codec
        self._decoder = FrameDecoder(ResponseFrame, max_frame_size=max_frame_size)
        self.max_in_flight = max_in_flight
        self.max_frame_size = max_frame_size
        self.state: AsyncValue[ChannelState] = AsyncValue(ChannelState.OPEN)
        self.cause: BaseException | None = None
        self.hello: Any = None
        self.hello_error: BaseException | None = None
        self.hello_pending = expect_hello
        self.hello_received = trio.Event()
        if not expect_hello:
            self.hello_received.set()
        self._closed = trio.Event()
        self._cancel_scope = trio.CancelScope()

        self._waiting: collections.deque[ReplySlot] = collections.deque()
        self._abandoned_since_compaction = 0  # a trigger for compaction, not a count
        self._pending: collections.deque[ReplySlot] = collections.deque()
        self._in_flight: dict[int, ReplySlot] = {}
        self._admitted = 0  # slots in _pending and _in_flight
        self._next_id = 1  # id 0 is the peer's unsolicited hello
        self._writer_task: trio.lowlevel.Task | None = None
        self._writer_parked = False
        self._wake: WakeBatch = {}

        self._inbox: collections.deque[tuple[Callable[[ReplySlot], None], ReplySlot]] = collections.deque()
        self._drain_scheduled = False
        self.token: trio.lowlevel.TrioToken | None = None
        self.thread_id = -1

        self.requests_sent = 0
        self.replies_routed = 0
        self.replies_late = 0
        self.replies_unknown = 0
        self.requests_unanswered = 0
        self.replies_remote_error = 0
        self.replies_undecodable = 0
        self.calls_timed_out = 0
        self.calls_cancelled = 0
        self.calls_closed = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the reader and writer until the channel closes, then close the stream."""
        self.token = trio.lowlevel.current_trio_token()
        self.thread_id = threading.get_ident()
        try:
            with self._cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read_loop)
                    nursery.start_soon(self._write_loop)
                    task_status.started()
        finally:
            self.close(trio.ClosedResourceError("channel closed by its owner"))
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)
            self.state.value = ChannelState.CLOSED
            self._closed.set()

    async def aclose(self) -> None:
        """Close the channel (if open) and wait until the stream is closed."""
        self.close(trio.ClosedResourceError("channel closed by aclose()"))
        await self._closed.wait()

    def close(self, cause: BaseException) -> None:
        """Fail every pending call with ``ChannelClosed`` from ``cause``; stop the tasks.

        Idempotent: the first cause is the one every caller sees.
        """
        if self.cause is not None:
            return
        self.cause = cause
        if self.state.value is ChannelState.OPEN:
            self.state.value = ChannelState.CLOSING
        self.requests_unanswered += len(self._in_flight)
        for slots in (self._in_flight.values(), self._pending, self._waiting):
            for slot in slots:
                self._fail_closed(slot)
        self._in_flight.clear()
        self._pending.clear()
        self._waiting.clear()
        self._admitted = 0
        self.hello_received.set()  # a host waiting for the hello sees the close
        flush_wakeups(self._wake)
        self._cancel_scope.cancel()

    def _fail_closed(self, slot: ReplySlot) -> None:
        if slot.try_claim():
            assert self.cause is not None
            self.calls_closed += 1
            slot.resolve(None, closed_error(self.cause), self._wake)

    # ------------------------------------------------------------------ callers

    def submit(self, slot: ReplySlot) -> None:
        """Accept a caller's slot (actor thread). Fails it at once if the channel is closed."""
        if self.cause is not None:
            self._fail_closed(slot)
        elif slot.gave_up():
            pass  # a thread caller timed out before its request even reached us
        elif self._admitted < self.max_in_flight:
            self._admitted += 1
            self._pending.append(slot)
            self._wake_writer()
        else:
            slot.waiting = True
            self._waiting.append(slot)

    def abandon(self, slot: ReplySlot) -> None:
        """Forget a slot whose caller has claimed it (gave up). Actor thread.

        A slot not yet written is skipped when its turn comes, so its request is never
        written; a written one stays in flight until its reply arrives and is dropped.
        """
        if slot.waiting:
            self._abandoned_since_compaction += 1
            if self._abandoned_since_compaction > _COMPACT_WAITING_AFTER and (
                self._abandoned_since_compaction * 2 > len(self._waiting)
            ):
                # Keep a stalled channel's queue from growing with callers that left.
                self._waiting = collections.deque(s for s in self._waiting if not s.gave_up())
                self._abandoned_since_compaction = 0

    def abandon_timed_out(self, slot: ReplySlot) -> None:
        self.calls_timed_out += 1
        self.abandon(slot)

    def abandon_cancelled(self, slot: ReplySlot) -> None:
        self.calls_cancelled += 1
        self.abandon(slot)

    def post(self, operation: Callable[[ReplySlot], None], slot: ReplySlot) -> None:
        """Run ``operation(slot)`` on the actor's thread, soon. Callable from any thread.

        Operations are queued and drained in batches: a thread only pokes the trio
        loop (a write to its wakeup socket) when no drain is already scheduled.
        """
        self._inbox.append((operation, slot))
        if self._drain_scheduled:
            return
        # Set before scheduling, cleared by the drain before it reads the queue: an
        # operation appended after the drain started either is seen by that drain or
        # finds the flag cleared and schedules another.
        self._drain_scheduled = True
        assert self.token is not None
        try:
            self.token.run_sync_soon(self._drain_inbox, idempotent=True)
        except trio.RunFinishedError:
            # The trio run hosting the actor is over, so the channel closed with it.
            self._drain_scheduled = False
            if slot.try_claim():
                cause = self.cause or trio.ClosedResourceError("the actor's trio run has finished")
                wake: WakeBatch = {}
                slot.resolve(None, closed_error(cause), wake)
                flush_wakeups(wake)

    def _drain_inbox(self) -> None:
        self._drain_scheduled = False
        inbox = self._inbox
        while inbox:
            operation, slot = inbox.popleft()
            operation(slot)
        if self._wake:
            flush_wakeups(self._wake)

    def _admit_waiting(self) -> None:
        while self._waiting and self._admitted < self.max_in_flight:
            slot = self._waiting.popleft()
            if slot.gave_up():
                continue
            self._admitted += 1
            slot.waiting = False
            self._pending.append(slot)
            self._wake_writer()

    # ------------------------------------------------------------------ writer

    def _wake_writer(self) -> None:
        if self._writer_parked:
            self._writer_parked = False
            assert self._writer_task is not None
            trio.lowlevel.reschedule(self._writer_task)

    async def _park_writer(self) -> None:
        self._writer_parked = True

        def abort(_: Any) -> trio.lowlevel.Abort:
            self._writer_parked = False
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    async def _write_loop(self) -> None:
        self._writer_task = trio.lowlevel.current_task()
        await self.hello_received.wait()
        pending = self._pending
        try:
            while True:
                if not pending:
                    await self._park_writer()
                    continue
                parts: list[bytes] = []
                size = 0
                skipped = False
                # Drain everything queued now into one write (bounded in bytes).
                while pending and size < _MAX_WRITE_BATCH:
                    slot = pending.popleft()
                    if slot.gave_up():
                        self._admitted -= 1
                        skipped = True
                        continue
                    frame_id = self._next_id
                    self._next_id += 1
                    self._in_flight[frame_id] = slot
                    head = frame_head(frame_id, len(slot.body), 1)
                    parts.append(head)
                    parts.append(slot.body)
                    size += len(head) + len(slot.body)
                if skipped:
                    self._admit_waiting()
                if parts:
                    self.requests_sent += len(parts) // 2
                    await self._io.send_all(b"".join(parts))
                    self.bytes_sent += size
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            self.close(exc)
        except Exception as exc:  # a bug of ours: keep the host alive, tell every caller
            log.exception("trio-comms writer failed")
            self.close(exc)

    # ------------------------------------------------------------------ reader

    async def _read_loop(self) -> None:
        decoder = self._decoder
        try:
            while True:
                data = await self._io.receive_some()
                self.bytes_received += len(data)
                decoder.receive_data(data)
                # Parse every frame of this read before yielding to anyone.
                while True:
                    frame = decoder.next_frame()
                    if frame is NEED_DATA:
                        break
                    if frame is END_OF_STREAM:
                        self.close(EOFError("peer closed the stream"))
                        return
                    self._route(frame)
                if self._wake:
                    flush_wakeups(self._wake)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError, RemoteProtocolError) as exc:
            self.close(exc)
        except Exception as exc:  # a bug of ours: keep the host alive, tell every caller
            log.exception("trio-comms reader failed")
            self.close(exc)

    def _route(self, frame: ResponseFrame) -> None:
        if self.hello_pending:
            self._take_hello(frame)
            return
        slot = self._in_flight.pop(frame.id, None)
        if slot is None:
            self.replies_unknown += 1
            return
        self._admitted -= 1
        if slot.try_claim():
            self.replies_routed += 1
            value, error = self._reply_outcome(frame)
            slot.resolve(value, error, self._wake)
        else:
            self.replies_late += 1
        if self._waiting:
            self._admit_waiting()

    def _reply_outcome(self, frame: ResponseFrame) -> tuple[Any, BaseException | None]:
        try:
            if frame.error is not None:
                code, detail = read_error_body(frame.error)
                self.replies_remote_error += 1
                return None, RemoteError(code, detail, frame_id=frame.id)
            if frame.body is None:
                return None, None
            return self._codec.decode(frame.body), None
        except MessageDecodeError as exc:
            self.replies_undecodable += 1
            return None, exc

    def _take_hello(self, frame: ResponseFrame) -> None:
        if frame.id != 0:
            raise RemoteProtocolError(f"expected the peer's hello (a response with id 0), got id {frame.id}")
        self.hello_pending = False
        self.hello, self.hello_error = self._reply_outcome(frame)
        self.hello_received.set()

    # ------------------------------------------------------------------ statistics

    def statistics(self) -> CommsStatistics:
        return CommsStatistics(
            requests_sent=self.requests_sent,
            replies_routed=self.replies_routed,
            replies_late=self.replies_late,
            replies_unknown=self.replies_unknown,
            requests_unanswered=self.requests_unanswered,
            replies_remote_error=self.replies_remote_error,
            replies_undecodable=self.replies_undecodable,
            calls_timed_out=self.calls_timed_out,
            calls_cancelled=self.calls_cancelled,
            calls_closed=self.calls_closed,
            in_flight=len(self._in_flight),
            queued=self._admitted - len(self._in_flight) + sum(not slot.gave_up() for slot in self._waiting),
            bytes_sent=self.bytes_sent,
            bytes_received=self.bytes_received,
        )

