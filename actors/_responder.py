"""The responder: serve a stream of requests with an async handler, concurrently.

One reader decodes requests and starts a handler task for each (at most
``max_concurrency`` at once; the reader stops reading while that many run, which is
the backpressure a flooding peer feels). Handlers pack their own replies; one writer
sends every reply ready at that moment in one write, in completion order, so a slow
handler holds up nobody else.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import trio

from channel import (
    DEFAULT_MAX_FRAME_SIZE,
    END_OF_STREAM,
    GENERIC_ERROR,
    NEED_DATA,
    Codec,
    FrameDecoder,
    MessageDecodeError,
    MessageEncodeError,
    RemoteProtocolError,
    RequestFrame,
    error_body,
    frame_head,
    pack_value,
)

from ._stream_io import StreamIO

__all__ = ["serve"]

log = logging.getLogger("trio_comms")

Handler = Callable[[Any], Awaitable[Any]]


def _decode_error_body(error: MessageDecodeError) -> dict[str, Any]:
    return {
        "type": "ErrorResponse",
        "error": GENERIC_ERROR,
        "detail": {
            "error_type": "MessageDecodeError",
            "message_type": error.message_type,
            "path": error.path,
            "reason": error.reason,
        },
    }


def _reply_frame(frame_id: int, body: bytes | None, error: bytes | None) -> bytes:
    if error is not None:
        fields = (body or b"\xc0") + error
        return frame_head(frame_id, len(fields), 2) + fields
    if body is None:
        return frame_head(frame_id, 0, 0)
    return frame_head(frame_id, len(body), 1) + body


class _Responder:
    def __init__(self, stream: trio.abc.Stream, codec: Codec, handler: Handler, max_concurrency: int, max_frame_size: int) -> None:
        self._io = StreamIO(stream)
        self._codec = codec
        self._handler = handler
        self._decoder = FrameDecoder(RequestFrame, max_frame_size=max_frame_size)
        self._slots = trio.Semaphore(max_concurrency)
        self._replies: collections.deque[bytes] = collections.deque()
        self._writer_lot = trio.lowlevel.ParkingLot()
        self._reading_done = False

    def queue_reply(self, data: bytes) -> None:
        self._replies.append(data)
        self._writer_lot.unpark_all()

    async def handle(self, frame: RequestFrame) -> None:
        try:
            try:
                message = self._codec.decode(frame.body) if frame.body is not None else None
            except MessageDecodeError as exc:
                self.queue_reply(_reply_frame(frame.id, None, pack_value(_decode_error_body(exc))))
                return
            try:
                reply = await self._handler(message)
                body = None if reply is None else self._codec.pack(reply)
            except Exception as exc:
                self.queue_reply(_reply_frame(frame.id, None, _pack_error(exc)))
                return
            self.queue_reply(_reply_frame(frame.id, body, None))
        finally:
            self._slots.release()

    async def read_loop(self, handlers: trio.Nursery) -> None:
        decoder = self._decoder
        while True:
            try:
                data = await self._io.receive_some()
            except (trio.BrokenResourceError, ConnectionError):
                return  # the peer reset the connection: as good as gone
            decoder.receive_data(data)
            while True:
                frame = decoder.next_frame()
                if frame is NEED_DATA:
                    break
                if frame is END_OF_STREAM:
                    return
                await self._slots.acquire()
                handlers.start_soon(self.handle, frame)

    async def write_loop(self) -> None:
        replies = self._replies
        while True:
            if not replies:
                if self._reading_done:
                    return
                await self._writer_lot.park()
                continue
            data = b"".join(replies)
            replies.clear()
            try:
                await self._io.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
                return  # the peer is gone; reading will see its end of stream

    def finish_writing(self) -> None:
        self._reading_done = True
        self._writer_lot.unpark_all()


def _pack_error(exc: Exception) -> bytes:
    try:
        return pack_value(error_body(exc))
    except MessageEncodeError:
        # An ErrorReply whose detail msgpack cannot carry: keep the code, say why.
        code = getattr(exc, "code", GENERIC_ERROR)
        return pack_value(
            {"type": "ErrorResponse", "error": code, "detail": {"error_type": type(exc).__qualname__, "message": str(exc)}}
        )


async def serve(
    stream: trio.abc.Stream,
    codec: Codec,
    handler: Handler,
    *,
    max_concurrency: int = 64,
    hello: Any = None,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
) -> None:
    """Answer the requests on ``stream`` with ``handler`` until the peer closes its side.

    ::

        async def handler(message):
            if isinstance(message, GetVariable):
                return VariableResult(key=message.key, value=lookup(message.key))
            raise ErrorReply("UNKNOWN_REQUEST", {"type": type(message).__name__})

        await actors.serve(stream, codec, handler, hello=StartTriggerer())

    Requests are handled concurrently (at most ``max_concurrency`` at once) and each
    reply is written as soon as its handler returns, in any order. Any request id is
    accepted, 0 included (Airflow's task SDK numbers from 0).

    - A handler that raises ``ErrorReply`` (or ``RemoteError``) answers with its code
      and detail; any other exception answers ``GENERIC_ERROR`` with a detail naming
      the exception. Either way only that request fails.
    - A request body that does not decode is answered ``GENERIC_ERROR`` with a
      detail giving the message type, field path and reason; never silence.
    - When the peer closes its side, running handlers finish and their replies are
      written (if the peer still reads), then ``serve`` returns.

    The responder owns ``stream`` and closes it when it returns or raises.

    Args:
        stream: any ``trio.abc.Stream``.
        codec: decodes requests and encodes replies.
        handler: ``async def handler(message) -> reply message or None``.
        max_concurrency: most handlers running at once.
        hello: a message sent first, unsolicited, as a response with id 0.
        max_frame_size: largest request frame accepted.

    Raises:
        RemoteProtocolError: the peer sent bytes that are not a frame (garbage, a
            zero-length or oversized frame, end of stream inside a frame); running
            handlers are cancelled and the stream closed.
        MessageEncodeError: ``hello`` cannot be encoded (raised before anything is read).
        ValueError: ``max_concurrency`` is not an int >= 1.
    """
    if type(max_concurrency) is not int or max_concurrency < 1:
        raise ValueError(f"max_concurrency must be an int >= 1, not {max_concurrency!r}")
    responder = _Responder(stream, codec, handler, max_concurrency, max_frame_size)
    protocol_error: RemoteProtocolError | None = None
    try:
        if hello is not None:
            responder.queue_reply(_reply_frame(0, codec.pack(hello), None))
        async with trio.open_nursery() as writer:
            writer.start_soon(responder.write_loop)
            async with trio.open_nursery() as handlers:
                try:
                    await responder.read_loop(handlers)
                except RemoteProtocolError as exc:
                    # Raised after the nurseries, bare, not inside an ExceptionGroup.
                    protocol_error = exc
                    writer.cancel_scope.cancel()
            responder.finish_writing()
    finally:
        await trio.aclose_forcefully(stream)
    if protocol_error is not None:
        raise protocol_error
