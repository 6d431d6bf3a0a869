"""The responder: serve a stream of requests with an async handler, concurrently.

One reader decodes requests and starts a handler task for each (at most
``max_concurrency`` at once, and none while more than ``max_unwritten`` bytes of
replies wait to be written; the reader stops reading meanwhile, which is the
backpressure a flooding peer feels, whether it floods or never reads). Handlers pack their own replies; one writer
sends every reply ready at that moment in one write, in completion order, so a slow
handler holds up nobody else. Reader and writer are the same
:class:`~actors._pump.FramePump` the requester's actor uses, with the same policy for
what ends a stream.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from channel import (
    DEFAULT_MAX_FRAME_SIZE,
    TAG_KEY,
    ErrorReply,
    MessageCodec,
    MessageDecodeError,
    OversizedFrame,
    RejectedFrame,
    RemoteProtocolError,
    RequestFrame,
)
from channel.lowlevel import FrameFields, pack_error_body, response_bytes

from ._arguments import serve_config
from ._context import RequestInfo, request_info
from ._errors import PeerNotReading
from ._options import ServeConfig
from ._pump import FramePump

__all__ = ["HANDLER_TIMEOUT", "Handler", "serve"]

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[Any]]
"""``async def handler(message) -> reply message or None``."""


HANDLER_TIMEOUT = "HANDLER_TIMEOUT"
"""The error code of a request whose handler ran past ``serve``'s ``handler_timeout``."""


class _Responder:
    def __init__(
        self,
        stream: trio.abc.Stream,
        codec: MessageCodec,
        handler: Handler,
        config: ServeConfig,
        *,
        on_priority: Callable[[], None] | None = None,
        on_priority_done: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.pump = FramePump(
            stream, RequestFrame, max_frame_size=config.max_frame_size, stall_timeout=config.stall_timeout
        )
        self._stream = stream
        self._decoder = self.pump.decoder
        self._max_unwritten = config.max_unwritten
        self._max_queued = config.max_queued
        self._max_queued_bytes = config.max_queued_bytes
        self._max_concurrency = config.max_concurrency
        self._priority = frozenset(codec.message_type(cls) for cls in config.priority_classes)
        self._on_priority = on_priority  # called as each priority request is read
        self._on_priority_done = on_priority_done  # and as its answer is queued (or its handler ends)
        self._handler_timeout = config.handler_deadline
        self._codec = codec
        self._handler = handler
        self._incarnation = config.incarnation
        self._handler_room = trio.Semaphore(config.max_concurrency)
        self._handlers: trio.Nursery | None = None
        # Requests read and waiting for a handler, oldest first, each with its size
        # on the wire; the reader stops reading while max_queued of them wait, or
        # max_queued_bytes, and the dispatcher starts them as room frees.
        self._queued: collections.deque[tuple[FrameFields, int]] = collections.deque()
        # Priority requests past max_concurrency of them running: started as each
        # running one ends, ahead of every other request (and counted in the same bounds).
        self._priority_queued: collections.deque[tuple[FrameFields, int]] = collections.deque()
        self._priority_running = 0
        self.queued_bytes = 0
        self._frame_end = 0  # the decoder's stream offset after the last frame read
        self._queue_changed = trio.lowlevel.ParkingLot()
        self._reading = True
        self.running = 0
        self.cancelled = 0

    def on_frame(self, event: FrameFields | OversizedFrame | RejectedFrame) -> None:
        end = self._decoder.consumed
        size = end - self._frame_end
        self._frame_end = end
        if type(event) is RejectedFrame:
            log.warning("request frame %d refused: %s", event.id, event.reason)
            self.pump.queue(response_bytes(event.id, None, pack_error_body(event.decode_error())))
            return
        if type(event) is OversizedFrame:
            self._frame_end = event.offset + 4 + event.size  # its bytes are skipped as they arrive
            log.warning("request frame %d of %d bytes is over max_frame_size=%d: answered FRAME_TOO_LARGE",
                        event.id, event.size, event.max_frame_size)
            self.pump.queue(response_bytes(event.id, None, pack_error_body(event.error_reply("request"))))
            return
        assert self._handlers is not None and type(event) is tuple
        body = event[1]
        if self._priority and body is not None and body.get(TAG_KEY) in self._priority:
            # The priority lane (a heartbeat): handled at once, ahead of every queued
            # request and outside max_concurrency, so busy never looks dead; at most
            # max_concurrency of them run, the rest wait at the head of the line.
            if self._on_priority is not None:
                self._on_priority()
            if self._priority_running < self._max_concurrency:
                self._start_priority(event)
            else:
                self._priority_queued.append((event, size))
                self.queued_bytes += size
            return
        self._queued.append((event, size))
        self.queued_bytes += size
        if self._queue_changed:
            self._queue_changed.unpark_all()

    def _start_priority(self, event: FrameFields) -> None:
        assert self._handlers is not None
        self._priority_running += 1
        self.running += 1
        self._handlers.start_soon(self.handle, *event, True)

    def _priority_done(self) -> None:
        self._priority_running -= 1
        if self._on_priority_done is not None:
            self._on_priority_done()
        if self._priority_queued:
            event, size = self._priority_queued.popleft()
            self.queued_bytes -= size
            self._start_priority(event)
            if self._queue_changed:  # the reader, waiting for room
                self._queue_changed.unpark_all()

    async def dispatch(self) -> None:
        """Start a handler for each queued request, oldest first, as room frees up;
        return once reading has ended and the queue is empty."""
        assert self._handlers is not None
        while True:
            while not self._queued:
                if not self._reading:
                    return
                await self._queue_changed.park()
            await self._handler_room.acquire()
            await self.pump.wait_unwritten_below(self._max_unwritten)
            event, size = self._queued.popleft()
            self.queued_bytes -= size
            if self._queue_changed:  # the reader, waiting for room in the queue
                self._queue_changed.unpark_all()
            self.running += 1
            self._handlers.start_soon(self.handle, *event, False)

    def reading_ended(self) -> None:
        self._reading = False
        self._queue_changed.unpark_all()

    async def handle(
        self, frame_id: int, body: dict[str, Any] | None, carrier: dict[str, Any] | None, priority: bool
    ) -> None:
        request_info.set(RequestInfo(frame_id=frame_id, carrier=carrier, incarnation=self._incarnation))
        try:
            try:
                message = self._codec.decode(body) if body is not None else None
            except MessageDecodeError as exc:
                log.warning("request frame %d did not decode: %s", frame_id, exc)
                self.pump.queue(response_bytes(frame_id, None, pack_error_body(exc)))
                return
            try:
                if self._handler_timeout is None:
                    reply = await self._handler(message)
                else:
                    reply = await self._run_with_deadline(message, self._handler_timeout)
                packed = None if reply is None else self._codec.pack(reply)
            except Exception as exc:
                if isinstance(exc, ErrorReply):
                    log.debug("handler answered frame %d with %s", frame_id, exc.code, exc_info=True)
                else:
                    log.exception("handler failed on frame %d (%s)", frame_id, type(message).__name__)
                self.pump.queue(response_bytes(frame_id, None, pack_error_body(exc)))
                return
            self.pump.queue(response_bytes(frame_id, packed))
        except trio.Cancelled:
            self.cancelled += 1
            raise
        finally:
            self.running -= 1
            if priority:
                self._priority_done()
            else:
                self._handler_room.release()

    async def _run_with_deadline(self, message: Any, timeout: float) -> Any:
        with trio.move_on_after(timeout) as scope:
            return await self._handler(message)
        assert scope.cancelled_caught
        log.warning("handler of %s ran past handler_timeout=%g s: cancelled, answered %s",
                    type(message).__name__, timeout, HANDLER_TIMEOUT)
        raise ErrorReply(HANDLER_TIMEOUT, {"type": type(message).__name__, "handler_timeout": timeout})

    async def room_to_read(self) -> None:
        """Wait until another request may be read: fewer than ``max_queued`` requests,
        and at most ``max_queued_bytes`` of them, wait for a handler (one always may),
        and the replies not yet written fit in ``max_unwritten`` bytes."""
        while (
            len(self._queued) + len(self._priority_queued) >= self._max_queued
            or (self.queued_bytes > self._max_queued_bytes)
        ):
            await self._queue_changed.park()
        await self.pump.wait_unwritten_below(self._max_unwritten)

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """:func:`serve`'s body, for options already checked (the supervisor's
        incarnation builds its own responder, to see heartbeats as they are read)."""
        try:
            if self.config.hello is not None:
                self.pump.queue(response_bytes(0, self._codec.pack(self.config.hello)))
            log.debug("serving %r", self._stream)
            error = await self.run(self.config.drain_timeout, task_status)
        finally:
            await trio.aclose_forcefully(self._stream)
            log.debug("stopped serving %r", self._stream)
        if error is not None:
            raise error

    async def run(
        self, drain_timeout: float, task_status: trio.TaskStatus[None]
    ) -> RemoteProtocolError | PeerNotReading | None:
        """Read, handle and write until the stream ends; return what to raise, if any."""
        pump = self.pump
        write_error: BaseException | None = None
        protocol_error: RemoteProtocolError | None = None
        with trio.CancelScope() as drain_scope:
            async with trio.open_nursery() as nursery:

                async def write() -> None:
                    nonlocal write_error
                    write_error = await pump.write_batches()
                    if write_error is not None:
                        # The peer cannot hear us: no reply can be delivered any more.
                        log.debug("responder stream failed on write: %r", write_error)
                        drain_scope.cancel()

                nursery.start_soon(write)
                async with trio.open_nursery() as handlers:
                    self._handlers = handlers
                    handlers.start_soon(self.dispatch)
                    task_status.started()
                    end = await pump.read_frames(self.on_frame, before_frame=self.room_to_read)
                    self.reading_ended()
                    if isinstance(end, RemoteProtocolError):
                        # Kept, not returned here: the cancel would replace a return.
                        log.debug("peer sent a bad frame, closing: %s", end)  # raised: the caller logs it
                        protocol_error = end
                        drain_scope.cancel()
                    else:
                        log.debug("peer's stream ended (%r): draining %d handlers", end, self.running)
                        # Stop reading; give running handlers, and the writing of their
                        # replies, drain_timeout in all; then cancel what is left.
                        drain_scope.deadline = trio.current_time() + drain_timeout
                pump.finish()
        if protocol_error is None and write_error is None and self.cancelled:
            log.warning("cancelled %d handlers still running %g s after the peer's end", self.cancelled, drain_timeout)
        if protocol_error is None and isinstance(write_error, PeerNotReading):
            log.debug("%s: stopped serving", write_error)  # raised: the caller logs it
            return write_error
        return protocol_error


async def serve(
    stream: trio.abc.Stream,
    codec: MessageCodec,
    handler: Handler,
    *,
    max_concurrency: int = 64,
    hello: Any = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    drain_timeout: float = 5.0,
    incarnation: int | None = None,
    max_unwritten: int = 4 * 2**20,
    stall_timeout: float = 30.0,
    max_queued: int = 1024,
    max_queued_bytes: int = 4 * 2**20,
    priority: type | tuple[type, ...] = (),
    handler_timeout: float | None = None,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Answer the requests on ``stream`` with ``handler`` until the peer closes its side.

    ::

        async def handler(message):
            if isinstance(message, GetVariable):
                return VariableResult(key=message.key, value=lookup(message.key))
            raise ErrorReply("UNKNOWN_REQUEST", {"type": type(message).__name__})

        await actors.serve(stream, codec, handler, hello=StartTriggerer())
        # or, to know it is serving: await nursery.start(actors.serve, stream, codec, handler)

    Requests are handled concurrently (at most ``max_concurrency`` at once, the rest
    queued in arrival order) and each reply is written as soon as its handler
    returns, in any order. Reading goes on while requests wait, up to ``max_queued``
    of them (the default is a requester's default ``max_in_flight``, so a
    well-behaved peer is never left with unread bytes); only past that, or while
    replies wait unwritten, does reading stop.

    - Requests of a ``priority`` type (a supervisor's heartbeat) skip the queue: each
      is handled as soon as it is read, outside ``max_concurrency``, so a busy
      responder never delays the one request that says its peer is alive. At most
      ``max_concurrency`` of them run at once; more wait, unstarted, at the head of
      the line.
    - Any request id is accepted, 0 included (Airflow's task SDK numbers from 0).
      Inside the handler, :func:`~actors.current_request` gives the frame id, trace
      carrier and incarnation.
    - A handler still running ``handler_timeout`` seconds after it started is
      cancelled and its request answered ``HANDLER_TIMEOUT`` (detail: the message
      type and the timeout); its place among the ``max_concurrency`` is free again.
      Without it (the default), a handler that never returns holds its place for
      ever: ``max_concurrency`` of them and only the priority lane is still served.
    - A handler that raises ``ErrorReply`` (or ``RemoteError``) answers with its code
      and detail; any other exception answers ``GENERIC_ERROR`` with a detail naming
      the exception, and is logged with its traceback. Either way only that request
      fails.
    - A request body that does not decode is answered ``GENERIC_ERROR`` with a
      detail giving the message type, field path and reason; never silence.
    - A request over ``max_frame_size`` whose id can be read is skipped unbuffered and
      answered ``FRAME_TOO_LARGE`` with both sizes in the detail.
    - Replies are backpressured: while more than ``max_unwritten`` bytes of them
      wait to be written, no handler starts and nothing is read, so a peer that
      floods requests and never reads costs bounded memory. If it makes no room
      for them for ``stall_timeout`` seconds, serve ends with :class:`~actors.PeerNotReading`.
    - When the peer's stream ends (it closed its side, or the stream failed), reading
      stops; running handlers get ``drain_timeout`` seconds to finish and have their
      replies written (if the peer still reads), then the rest are cancelled and
      ``serve`` returns.

    Logging goes to the ``actors._responder`` logger (configure ``"actors"`` for all).
    The responder owns ``stream`` and closes it when it returns or raises.

    Args:
        stream: any ``trio.abc.Stream``.
        codec: decodes requests and encodes replies.
        handler: ``async def handler(message) -> reply message or None``.
        max_concurrency: most handlers running at once.
        hello: a message sent first, unsolicited, as a response with id 0.
        max_frame_size: largest request frame accepted.
        drain_timeout: seconds running handlers get after the peer's end.
        incarnation: reported by :func:`~actors.current_request` (a supervisor sets it).
        max_unwritten: bytes of replies waiting to be written above which no more
            requests are read or handled.
        stall_timeout: seconds the peer may make no room for our waiting replies.
        max_queued: requests read and waiting for a handler, above which reading stops.
        max_queued_bytes: bytes (on the wire) of the requests waiting for a handler,
            above which reading stops; one request is always read, so at most this
            plus one ``max_frame_size`` wait.
        priority: message classes handled at once, ahead of the queue (see above).
        handler_timeout: seconds a handler may run (default ``None``: no limit).
        task_status: for ``nursery.start``: started once the responder is reading.

    Raises:
        RemoteProtocolError: the peer sent bytes that are not a frame (garbage, a
            zero-length frame, an oversized one whose id cannot be read, end of
            stream inside a frame); running handlers are cancelled and the stream closed.
        PeerNotReading: replies were waiting and none could be written for
            ``stall_timeout`` seconds; running handlers are cancelled and the stream closed.
        TypeError: ``codec`` is not a codec, or ``handler`` is not an ``async def``
            function (raised at once).
        MessageEncodeError: ``hello`` cannot be encoded (raised before anything is read).
        ValueError: ``max_concurrency`` or ``max_queued`` is not an int >= 1,
            ``drain_timeout`` is negative, ``max_unwritten`` or ``max_queued_bytes``
            negative, ``stall_timeout`` or ``handler_timeout`` not positive.
    """
    config = serve_config(
        "serve", codec, handler,
        max_concurrency=max_concurrency, hello=hello, max_frame_size=max_frame_size, drain_timeout=drain_timeout,
        incarnation=incarnation, max_unwritten=max_unwritten, stall_timeout=stall_timeout, max_queued=max_queued,
        max_queued_bytes=max_queued_bytes, priority=priority, handler_timeout=handler_timeout,
    )
    await _Responder(stream, codec, handler, config).serve(task_status)

