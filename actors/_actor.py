"""The comms actor: the only code that reads the stream and the only code that writes it.

One reader task and the pump's one write path (a writer task, and on a socket the
end of each trio scheduler pass), both on the actor's thread, own the stream through
a :class:`~actors._pump.FramePump`. Callers never touch it: they hand the actor a
reply slot holding their packed request. Frame ids are allocated only in
:meth:`CommsActor._next_batch`, the single code path that turns requests into bytes,
called only by that write path, so a reply can only ever reach the slot registered
under its id; there is no lock to get wrong.

Everything in this class runs on the actor's trio thread. Other threads reach it
only through :meth:`CommsActor.post`, which queues an operation in the actor's
:class:`~actors._inbox.Inbox`, drained on the trio loop once per batch.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from typing import Any

import trio

from channel import (
    MessageCodec,
    MessageDecodeError,
    OversizedFrame,
    RejectedFrame,
    RemoteProtocolError,
    ResponseFrame,
    read_error_body,
)
from channel.lowlevel import FrameFields, frame_head, reply_table, wrong_reply

from ._errors import PeerNotAnswering, PeerUnresponsive, RemoteError, ReplyTooLarge, closed_error
from ._inbox import Inbox
from ._pump import MAX_WRITE_BATCH, FramePump
from ._slots import ReplySlot, WakeBatch, flush_wakeups
from ._state import Lifecycle
from ._stats import CommsStatistics, Counters

__all__ = ["CommsActor"]

log = logging.getLogger(__name__)

_COMPACT_WAITING_AFTER = 64  # abandoned slots tolerated in the admission queue

class CommsActor:
    """Owns one stream: routes replies to slots, writes requests, enforces the limits.

    Not public: users get a :class:`~actors.Comms` from ``open_comms``.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        codec: MessageCodec,
        *,
        max_in_flight: int,
        max_unanswered: int,
        max_frame_size: int,
        expect_hello: bool,
        stall_timeout: float,
        priority: frozenset[type] = frozenset(),
    ) -> None:
        self._stream = stream
        self._pump = FramePump(
            stream, ResponseFrame, max_frame_size=max_frame_size, next_batch=self._next_batch,
            stall_timeout=stall_timeout,
        )
        self.codec = codec
        self._reply_types = reply_table(codec)
        self._priority = priority or None  # None: no lane, and one test per call fewer
        self.max_in_flight = max_in_flight
        self.max_unanswered = max_unanswered
        self.max_frame_size = max_frame_size
        self.lifecycle = Lifecycle(expect_hello=expect_hello)
        self.counters = Counters()
        self.hello: Any = None
        self.hello_error: BaseException | None = None
        self.hello_arrived = False
        self._hello_hinted = False
        self._cancel_scope = trio.CancelScope()
        self._closed_count_lock = threading.Lock()

        # A slot is in exactly one of these until it is resolved or forgotten.
        self._awaiting_admission: collections.deque[ReplySlot] = collections.deque()
        self._abandoned_since_compaction = 0  # a trigger for compaction, not a count
        self._admitted_unwritten: collections.deque[ReplySlot] = collections.deque()
        self._in_flight: dict[int, ReplySlot] = {}
        # Written requests whose caller gave up: id -> when it gave up. Bounded by
        # max_unanswered; their late replies are dropped and counted.
        self._abandoned_in_flight: dict[int, float] = {}
        self._admitted = 0  # slots in _admitted_unwritten and _in_flight
        self._next_id = 1  # id 0 is the peer's unsolicited hello
        self._wake: WakeBatch = {}

        self._inbox = Inbox(after_drain=self._flush_wakeups, undeliverable=self._undeliverable)
        # post, from a coroutine on an asyncio loop, batched with the rest of that
        # loop's iteration (see Inbox): the inbox's own method, with no frame between.
        self.post_from_loop = self._inbox.post_from_loop
        self.thread_id = -1

    @property
    def token(self) -> trio.lowlevel.TrioToken | None:
        """The token of the trio run hosting the actor, once it runs."""
        return self._inbox.token

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the reader and writer until the channel closes, then close the stream."""
        self._inbox.token = trio.lowlevel.current_trio_token()
        self.thread_id = threading.get_ident()
        log.debug("channel open on %r", self._stream)
        try:
            with self._cancel_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read)
                    nursery.start_soon(self._write)
                    task_status.started()
        finally:
            self.close(trio.ClosedResourceError("channel closed by its owner"))
            try:
                with trio.CancelScope(shield=True):
                    await trio.aclose_forcefully(self._stream)
            except Exception:
                # The stream is the host's code: its aclose() may raise. The channel
                # is closed whatever it does, and everyone waiting for that must hear.
                log.exception("closing the stream %r raised; the channel is closed regardless", self._stream)
            finally:
                self.lifecycle.finish_close()
            log.debug("channel closed: %r", self.lifecycle.cause)

    async def _read(self) -> None:
        try:
            cause = await self._pump.read_frames(self._on_frame, after_read=self._flush_wakeups)
        except Exception as exc:  # a bug of ours: keep the host alive, tell every caller
            log.exception("trio-comms reader failed")
            cause = exc
        self.close(cause)

    async def _write(self) -> None:
        await self.lifecycle.wait_open()
        try:
            cause = await self._pump.write_batches()
        except Exception as exc:  # a bug of ours: keep the host alive, tell every caller
            log.exception("trio-comms writer failed")
            cause = exc
        if cause is not None:
            self.close(cause)

    async def aclose(self) -> None:
        """Close the channel (if open) and wait until the stream is closed."""
        self.close(trio.ClosedResourceError("channel closed by aclose()"))
        await self.lifecycle.wait_closed()

    def close(self, cause: BaseException) -> None:
        """Fail every pending call with ``ChannelClosed`` from ``cause``; stop the tasks.

        Idempotent: the first cause is the one every caller sees.
        """
        if not self.lifecycle.begin_close(cause):
            return
        if isinstance(cause, (RemoteProtocolError, PeerUnresponsive)):
            log.warning("channel closing: %s: %s", type(cause).__name__, cause)
        else:
            log.debug("channel closing: %r", cause)
        self.counters.requests_unanswered += len(self._in_flight) + len(self._abandoned_in_flight)
        for slots in (self._in_flight.values(), self._admitted_unwritten, self._awaiting_admission):
            for slot in slots:
                self._fail_closed(slot)
        self._in_flight.clear()
        self._abandoned_in_flight.clear()
        self._admitted_unwritten.clear()
        self._awaiting_admission.clear()
        self._admitted = 0
        flush_wakeups(self._wake)
        self._cancel_scope.cancel()

    def _fail_closed(self, slot: ReplySlot) -> None:
        if slot.try_claim():
            assert self.lifecycle.cause is not None
            self._count_closed()
            slot.resolve(None, closed_error(self.lifecycle.cause), self._wake)

    def _count_closed(self) -> None:
        # Once the channel is closing, a call is refused on whatever thread it was
        # made (no post to an actor that is going away): the one count several
        # threads write, so it alone takes a lock. Never on the hot path.
        with self._closed_count_lock:
            self.counters.calls_closed += 1

    # ------------------------------------------------------------------ callers

    def closed_error(self) -> BaseException:
        """The ``ChannelClosed`` a new call gets once the channel is closing (and count
        it). Any thread: a call made after the close is refused where it was made."""
        assert self.lifecycle.cause is not None
        self._count_closed()
        return closed_error(self.lifecycle.cause)

    def submit(self, slot: ReplySlot) -> None:
        """Accept a caller's slot (actor thread). Fails it at once if the channel is closed.

        A request made while nothing is in flight is written at once if its slot is
        ``eager`` (see :class:`~actors._slots.ReplySlot`), so the peer starts on it
        while the other callers of this scheduler pass still run; otherwise it goes
        out with the rest of the pass.
        """
        if self.lifecycle.closing:
            self._fail_closed(slot)
        elif slot.gave_up():
            pass  # a thread caller timed out before its request even reached us
        elif self._priority is not None and slot.request_class in self._priority:
            # The priority lane (the heartbeat): outside max_in_flight, ahead of every
            # queued request, at the head of the next write.
            self._admitted_unwritten.appendleft(slot)
            self._pump.data_ready()
        elif self._admitted < self.max_in_flight:
            self._admitted += 1
            self._admitted_unwritten.append(slot)
            if slot.eager and not self._in_flight:
                self._pump.write_now()
            else:
                self._pump.data_ready()
        else:
            slot.waiting = True
            self._awaiting_admission.append(slot)

    def gave_up(self, slot: ReplySlot) -> None:
        """A caller gave up its call (``slot.timed_out``: its deadline passed, else it
        was cancelled) and has claimed its slot: count why, and forget the slot.
        Actor thread.

        A slot not yet written is skipped when its turn comes, so its request is never
        written. A written one leaves ``max_in_flight`` for the bounded table of
        abandoned requests, whose late replies are dropped; when that table would hold
        more than ``max_unanswered``, the peer is not answering and the channel closes
        with :class:`PeerUnresponsive`.
        """
        if slot.timed_out:
            self.counters.calls_timed_out += 1
        else:
            self.counters.calls_cancelled += 1
        if slot.waiting:
            self._abandoned_since_compaction += 1
            if self._abandoned_since_compaction > _COMPACT_WAITING_AFTER and (
                self._abandoned_since_compaction * 2 > len(self._awaiting_admission)
            ):
                # Keep a stalled channel's queue from growing with callers that left.
                self._awaiting_admission = collections.deque(s for s in self._awaiting_admission if not s.gave_up())
                self._abandoned_since_compaction = 0
            return
        frame_id = slot.frame_id
        if not frame_id or self._in_flight.get(frame_id) is not slot:
            return  # not written yet (the writer will skip it), or already answered
        del self._in_flight[frame_id]
        self._release(slot)
        now = trio.current_time()
        self._abandoned_in_flight[frame_id] = now
        if len(self._abandoned_in_flight) > self.max_unanswered:
            oldest = next(iter(self._abandoned_in_flight.values()))
            self.close(PeerNotAnswering(len(self._abandoned_in_flight), now - oldest, self.max_unanswered))
            return
        if self._awaiting_admission:
            self._admit_waiting()

    def _release(self, slot: ReplySlot) -> None:
        """A slot leaves ``max_in_flight`` (answered, given up, skipped): one less
        admitted, unless it took the priority lane, which never counted."""
        if self._priority is None or slot.request_class not in self._priority:
            self._admitted -= 1

    def post(self, operation: Callable[[ReplySlot], None], slot: ReplySlot) -> None:
        """Run ``operation(slot)`` on the actor's thread, soon (see :class:`~actors._inbox.Inbox`).

        Callable from any thread. If the actor's trio run is over, the channel closed
        with it, and the slot fails with ``ChannelClosed`` at once.
        """
        self._inbox.post(operation, slot)

    def _undeliverable(self, slot: ReplySlot) -> None:
        """A slot posted after the actor's trio run ended (on the poster's thread)."""
        if slot.try_claim():
            self._count_closed()
            cause = self.lifecycle.cause or trio.ClosedResourceError("the actor's trio run has finished")
            wake: WakeBatch = {}
            slot.resolve(None, closed_error(cause), wake)
            flush_wakeups(wake)

    def _flush_wakeups(self) -> None:
        if self._wake:
            flush_wakeups(self._wake)

    def _admit_waiting(self) -> None:
        waiting = self._awaiting_admission
        while waiting and self._admitted < self.max_in_flight:
            slot = waiting.popleft()
            if slot.gave_up():
                continue
            self._admitted += 1
            slot.waiting = False
            self._admitted_unwritten.append(slot)
            self._pump.data_ready()

    # ------------------------------------------------------------------ writer

    def _next_batch(self) -> bytes | None:
        """The one place requests become bytes: ids in order, whole frames, one batch.

        Called only by the pump's writer, on the actor's thread.
        """
        unwritten = self._admitted_unwritten
        if not unwritten:
            return None
        in_flight = self._in_flight
        parts: list[bytes] = []
        size = 0
        # Slots whose callers gave up before being written are skipped (and their
        # room under max_in_flight given to waiters), until a frame is written.
        while unwritten and not parts:
            frame_id = self._next_id
            skipped = False
            while unwritten and size < MAX_WRITE_BATCH:
                slot = unwritten.popleft()
                # The id goes on the slot before the take, so a caller who loses the
                # take to us can read it (see CrossThreadSlot.written_frame_id).
                slot.frame_id = frame_id
                if not slot.try_take():
                    slot.frame_id = 0
                    self._release(slot)
                    skipped = True
                    continue
                in_flight[frame_id] = slot
                head = frame_head(frame_id, len(slot.fields), slot.field_count)
                parts.append(head)
                parts.append(slot.fields)
                size += len(head) + len(slot.fields)
                frame_id += 1
            self.counters.requests_sent += frame_id - self._next_id
            self._next_id = frame_id
            if skipped:
                self._admit_waiting()
        if not parts:
            return None
        return b"".join(parts)

    # ------------------------------------------------------------------ reader

    def _on_frame(self, event: FrameFields | OversizedFrame | RejectedFrame) -> None:
        if self.lifecycle.awaiting_hello:
            self._take_hello(event)
            return
        frame_id = event[0] if isinstance(event, tuple) else event.id
        slot = self._in_flight.pop(frame_id, None)
        if slot is None:
            if self._abandoned_in_flight.pop(frame_id, None) is not None:
                self.counters.replies_late += 1
            elif frame_id == 0 and not self._hello_hinted:
                self._hello_hinted = True
                log.warning(
                    "the peer sent a hello (an unsolicited response with id 0) that nobody "
                    "expected; open the channel with expect_hello=True to receive it as comms.hello"
                )
            else:
                self.counters.replies_unknown += 1
            return
        if self._priority is None or slot.request_class not in self._priority:  # _release, inlined
            self._admitted -= 1
        if slot.try_claim():
            self.counters.replies_routed += 1
            try:
                value, error = self._reply_outcome(event, slot.request_class)
            except Exception as exc:
                # Unforeseen (a bug of ours): the reader dies with it and closes the
                # channel, but this caller, claimed already, must not wait forever.
                self.close(exc)
                self._count_closed()
                slot.resolve(None, closed_error(exc), self._wake)
                flush_wakeups(self._wake)
                raise
            slot.resolve(value, error, self._wake)
        else:
            self.counters.replies_late += 1
        if self._awaiting_admission:
            self._admit_waiting()

    def _reply_outcome(
        self, event: FrameFields | OversizedFrame | RejectedFrame, request_class: type | None
    ) -> tuple[Any, BaseException | None]:
        if type(event) is OversizedFrame:
            self.counters.replies_too_large += 1
            reply = event.error_reply("response")
            return None, ReplyTooLarge(reply.code, reply.detail, frame_id=event.id)
        if type(event) is RejectedFrame:
            self.counters.replies_undecodable += 1
            return None, event.decode_error()
        assert type(event) is tuple
        frame_id, body, error = event
        try:
            if error is not None:
                code, detail = read_error_body(error)
                self.counters.replies_remote_error += 1
                return None, RemoteError(code, detail, frame_id=frame_id)
            value = None if body is None else self.codec.decode(body)
            if self._reply_types is not None and request_class is not None:
                expected = self._reply_types.get(request_class)
                if expected is not None and not isinstance(value, expected):
                    raise wrong_reply(self.codec, request_class, expected, value)
            return value, None
        except MessageDecodeError as exc:
            self.counters.replies_undecodable += 1
            return None, exc

    def _take_hello(self, event: FrameFields | OversizedFrame | RejectedFrame) -> None:
        frame_id = event[0] if isinstance(event, tuple) else event.id
        if frame_id != 0:
            raise RemoteProtocolError(f"expected the peer's hello (a response with id 0), got id {frame_id}")
        self.hello, self.hello_error = self._reply_outcome(event, None)
        self.hello_arrived = True
        self.lifecycle.hello_received()

    # ------------------------------------------------------------------ statistics

    def statistics(self) -> CommsStatistics:
        abandoned = len(self._abandoned_in_flight)
        queued = sum(
            not slot.gave_up() for queue in (self._admitted_unwritten, self._awaiting_admission) for slot in queue
        )
        return self.counters.snapshot(
            in_flight=len(self._in_flight) + abandoned,
            in_flight_abandoned=abandoned,
            queued=queued,
            bytes_sent=self._pump.bytes_sent,
            bytes_received=self._pump.bytes_received,
        )
