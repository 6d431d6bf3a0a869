"""The incremental frame decoder: bytes in any chunking -> frames, h11-style, no I/O.

Bytes go in with :meth:`FrameDecoder.receive_data` and frames (or an
:class:`OversizedFrame` to fail alone, or :data:`NEED_DATA` / :data:`END_OF_STREAM`)
come out of :meth:`FrameDecoder.next_frame`.
"""

from __future__ import annotations

from typing import Any, Final, Generic, Literal, NoReturn

import msgpack

from ._bounds import (
    CONTAINERS,
    DEFAULT_MAX_DEPTH,
    PLAIN_UNPACK_MAX,
    TooDeep,
    TooManyContainers,
    UnsupportedExt,
    budgeted_unpack,
    check_depth,
    max_containers,
    refuse_ext,
)
from ._errors import (
    FrameTooLarge,
    LocalProtocolError,
    RemoteProtocolError,
    TruncatedFrame,
)
from ._events import (
    END_OF_STREAM,
    NEED_DATA,
    DecoderEvent,
    FrameFields,
    OversizedFrame,
    RejectedFrame,
)
from ._frames import (
    _FIXARRAY,
    _LENGTH,
    _MAX_HEAD,
    _MAX_LENGTH,
    DEFAULT_MAX_FRAME_SIZE,
    FrameT,
    RequestFrame,
    ResponseFrame,
    _trusted,
    check_id,
)
from ._util import clip

__all__ = ["FrameDecoder"]

_unpackb: Final = msgpack.unpackb

# msgpack's unsigned int markers and the bytes that follow each.
_UINT_WIDTHS: Final = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}


_BAD_HEAD: Final = object()  # a head that cannot start a frame of this kind


class FrameDecoder(Generic[FrameT]):
    """Turns bytes, in any chunking, into frames. Sans-IO, in the style of h11.

    Feed it with :meth:`receive_data` (``b""`` means end of stream) and take frames
    out with :meth:`next_frame` until it says :data:`NEED_DATA` or
    :data:`END_OF_STREAM`::

        decoder = FrameDecoder(ResponseFrame)
        decoder.receive_data(chunk)
        while not isinstance(event := decoder.next_frame(), DecoderEvent):
            route(event)          # a ResponseFrame, or an OversizedFrame to fail

    Guarantees:

    - a length prefix over ``max_frame_size`` never causes its body to be buffered.
      If the frame's head (an array of the right length and an unsigned id, at most
      10 bytes) can be read, the decoder returns an :class:`OversizedFrame` and
      discards that frame's bytes as they arrive, so only that frame's request or
      reply fails; otherwise it raises :class:`~channel.FrameTooLarge`;
    - once every whole frame has been taken out, at most one partial frame
      (``4 + max_frame_size`` bytes, or the 14 bytes of an oversized frame's prefix
      and head if ``max_frame_size`` is under 10) stays buffered;
    - frames are parsed in place, so many frames in one chunk cost no copy each;
    - after any error the decoder is failed for good and raises that same error
      again on every later :meth:`next_frame`, like an h11 connection in ERROR;
    - decoding is total and bounded: any bytes give frames, events or the errors
      listed under :meth:`next_frame`, never another exception. A frame's body,
      carrier or error nests at most ``max_depth`` levels, and a frame holds at
      most :func:`max_containers` maps and arrays for its size, and holds no
      msgpack extension type but the timestamp, so it decodes to at most 42 times
      its size in Python objects; a well-framed frame over any of these bounds, or
      with a string that is not UTF-8 or a timestamp out of range, comes out as a
      :class:`RejectedFrame` that fails alone.

    Args:
        frame_type: :class:`RequestFrame` to decode requests (a responder),
            :class:`ResponseFrame` to decode responses (a requester).
        max_frame_size: the largest length prefix accepted, in bytes.
        max_depth: how deep a body, carrier or error may nest (the map itself is
            level 1); deeper frames are rejected alone.

    Raises:
        ValueError: ``max_frame_size`` is not a positive int, ``max_depth`` is not
            an int in 1..512, or ``frame_type`` is neither frame class.
    """

    def __init__(
        self,
        frame_type: type[FrameT],
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        max_depth: int = DEFAULT_MAX_DEPTH,
    ) -> None:
        if frame_type is RequestFrame:
            self._arities: tuple[int, ...] = (2, 3)
        elif frame_type is ResponseFrame:
            self._arities = (1, 2, 3)
        else:
            raise ValueError(f"frame_type must be RequestFrame or ResponseFrame, not {frame_type!r}")
        if type(max_frame_size) is not int or not 0 < max_frame_size <= _MAX_LENGTH:
            raise ValueError(f"max_frame_size must be an int in 1..2**32-1, not {max_frame_size!r}")
        if type(max_depth) is not int or not 1 <= max_depth <= 512:
            raise ValueError(f"max_depth must be an int in 1..512, not {max_depth!r}")
        self._frame_type: type[FrameT] = frame_type
        self._max_frame_size = max_frame_size
        # The fast path's bound on a frame: plainly unpacked and within the limit.
        self._plain_max = min(PLAIN_UNPACK_MAX, max_frame_size)
        self._max_depth = max_depth
        self._buffer = bytearray()
        self._pos = 0  # start of the first unparsed frame in _buffer
        self._consumed = 0  # stream offset of _buffer[0]
        self._skipping = 0  # bytes of an oversized frame still to discard on arrival
        self._skip_offset = 0  # stream offset of that frame, for TruncatedFrame
        self._skip_length = 0  # and its announced length
        self._eof = False
        self._error: RemoteProtocolError | None = None

    @property
    def max_frame_size(self) -> int:
        """The largest frame length this decoder accepts."""
        return self._max_frame_size

    @property
    def buffered_size(self) -> int:
        """How many received bytes are not yet part of a returned frame."""
        return len(self._buffer) - self._pos

    @property
    def consumed(self) -> int:
        """How many bytes of the stream are behind the last frame or event returned
        (taken out as frames, or skipped): the difference between two reads of it
        is what the frames in between took on the wire."""
        return self._consumed + self._pos

    @property
    def failed(self) -> RemoteProtocolError | None:
        """The error that failed this decoder, or ``None`` while it is healthy."""
        return self._error

    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Add bytes received from the peer; ``b""`` says the stream has ended.

        Bytes received after a failure are dropped: a failed decoder buffers nothing.
        So are the bytes of an oversized frame being skipped.

        Raises:
            RuntimeError: more data after the end of stream was already reported.
        """
        if self._error is not None:
            return
        if not data:
            self._eof = True
            return
        if self._eof:
            raise RuntimeError("received data after the end of stream")
        if self._pos:
            # Compact once per chunk, not once per frame.
            del self._buffer[: self._pos]
            self._consumed += self._pos
            self._pos = 0
        if self._skipping:
            dropped = min(self._skipping, len(data))
            self._skipping -= dropped
            self._consumed += dropped
            if dropped == len(data):
                return
            data = memoryview(data)[dropped:]
        self._buffer += data

    def next_frame(
        self,
    ) -> FrameT | OversizedFrame | RejectedFrame | Literal[DecoderEvent.NEED_DATA, DecoderEvent.END_OF_STREAM]:
        """Return the next whole frame, an :class:`OversizedFrame` or
        :class:`RejectedFrame`, or an event.

        Returns:
            A frame; an :class:`OversizedFrame` (a frame over ``max_frame_size``
            whose id was read; its bytes are being skipped); a
            :class:`RejectedFrame` (a whole frame whose id was read but whose
            contents are refused, see the class); :data:`NEED_DATA`; or
            :data:`END_OF_STREAM` once the stream has ended between two frames.

        Raises:
            FrameTooLarge: a length prefix is over ``max_frame_size`` and what follows
                it is not the head of a frame, so its id cannot be read.
            TruncatedFrame: the stream ended inside a frame.
            RemoteProtocolError: a zero-length frame; bytes that are not one msgpack
                value; a value that is not an array, or an array of the wrong
                length; an id that is not an unsigned 64-bit int; a body, carrier or
                error that is neither a map nor nil. The same error again on every
                call after any of these.
        """
        event = self.next_fields()
        if type(event) is tuple:
            return _trusted(self._frame_type, *event)
        return event  # type: ignore[return-value]

    def next_fields(
        self,
    ) -> FrameFields | OversizedFrame | RejectedFrame | Literal[DecoderEvent.NEED_DATA, DecoderEvent.END_OF_STREAM]:
        """As :meth:`next_frame`, with a frame as the tuple of its checked fields.

        A request comes as ``(id, body, context_carrier)``, a response as
        ``(id, body, error)``, absent fields as ``None``: the same checks, no
        object per frame. For a pump that routes every frame at once; everything
        else reads better with :meth:`next_frame`.

        Raises:
            Exactly what :meth:`next_frame` raises.
        """
        # The fast path: a whole, well-formed frame is buffered. Anything else (an
        # error to report, a frame to skip, too few bytes) takes the careful path,
        # which re-reads the same bytes and says exactly what is wrong.
        if self._error is None and not self._skipping:
            buffer, pos = self._buffer, self._pos
            start = pos + 4
            if len(buffer) >= start:
                (length,) = _LENGTH.unpack_from(buffer, pos)
                end = start + length
                if 0 < length <= self._plain_max and end <= len(buffer):
                    try:
                        value = _unpackb(buffer[start:end], timestamp=3, strict_map_key=False, ext_hook=refuse_ext)
                    except Exception:  # garbage: the careful path names it
                        value = None
                    if type(value) is list and len(value) in self._arities:
                        frame_id = value[0]
                        second = value[1] if len(value) > 1 else None
                        third = value[2] if len(value) > 2 else None
                        if (
                            type(frame_id) is int  # msgpack ints are under 2**64
                            and frame_id >= 0
                            and (second is None or type(second) is dict)
                            and (third is None or type(third) is dict)
                        ):
                            self._pos = end
                            # Inline, as this runs per frame: only a body (or carrier,
                            # error) with a map or array inside needs the depth walk.
                            nested = False
                            if second is not None:
                                for item in second.values():
                                    if type(item) in CONTAINERS:
                                        nested = True
                                        break
                            if third is not None and not nested:
                                for item in third.values():
                                    if type(item) in CONTAINERS:
                                        nested = True
                                        break
                            if nested:
                                try:
                                    check_depth(second, self._max_depth)
                                    check_depth(third, self._max_depth)
                                except TooDeep:
                                    return self._too_deep(frame_id, pos)
                            return (frame_id, second, third)
            elif not self._eof:
                return NEED_DATA  # under 4 bytes: what the careful path says too
        return self._next_checked()

    def _next_checked(
        self,
    ) -> FrameFields | OversizedFrame | RejectedFrame | Literal[DecoderEvent.NEED_DATA, DecoderEvent.END_OF_STREAM]:
        if self._error is not None:
            raise self._error
        if self._skipping:
            if self._eof:
                self._fail(TruncatedFrame(self._skipping_received(), offset=self._skip_offset))
            return NEED_DATA
        buffer, pos = self._buffer, self._pos
        available = len(buffer) - pos
        if available >= 4:
            (length,) = _LENGTH.unpack_from(buffer, pos)
            if length > self._max_frame_size:
                return self._oversized(length, available)
            if length == 0:
                self._fail(RemoteProtocolError("zero-length frame", offset=self._consumed + pos))
            end = pos + 4 + length
            if end <= len(buffer):
                event = self._parse(pos + 4, end)  # or raises
                self._pos = end
                return event
        if not self._eof:
            return NEED_DATA
        if available:
            self._fail(TruncatedFrame(available, offset=self._consumed + pos))
        return END_OF_STREAM

    def _oversized(
        self, length: int, available: int
    ) -> OversizedFrame | Literal[DecoderEvent.NEED_DATA]:
        pos = self._pos
        offset = self._consumed + pos
        head = bytes(self._buffer[pos + 4 : pos + 4 + min(length, _MAX_HEAD)])
        frame_id = self._read_head(head)
        if frame_id is None:
            if len(head) < min(length, _MAX_HEAD) and not self._eof:
                return NEED_DATA  # at most 10 bytes of it wait here
            self._fail(FrameTooLarge(length, self._max_frame_size, offset=offset))
        if frame_id is _BAD_HEAD:
            self._fail(FrameTooLarge(length, self._max_frame_size, offset=offset))
        assert isinstance(frame_id, int)
        # Drop what is buffered of it now and the rest as it arrives.
        buffered = min(available - 4, length)
        self._pos = pos + 4 + buffered
        self._skipping = length - buffered
        self._skip_offset = offset
        self._skip_length = length
        return OversizedFrame(id=frame_id, size=length, max_frame_size=self._max_frame_size, offset=offset)

    def _skipping_received(self) -> int:
        return 4 + self._skip_length - self._skipping

    def _read_head(self, head: bytes) -> int | object | None:
        """The id in a frame's head; ``None`` if more bytes are needed, or _BAD_HEAD."""
        if not head:
            return None
        if head[0] - _FIXARRAY not in self._arities:
            return _BAD_HEAD
        if len(head) < 2:
            return None
        marker = head[1]
        if marker < 0x80:
            return marker
        width = _UINT_WIDTHS.get(marker)
        if width is None:
            return _BAD_HEAD
        if len(head) < 2 + width:
            return None
        return int.from_bytes(head[2 : 2 + width], "big")

    def _parse(self, start: int, end: int) -> FrameFields | RejectedFrame:
        """Decode a whole frame the fast path did not take: a large one (under a
        container budget), one to refuse alone, or one to raise the precise error for."""
        offset = self._consumed + start - 4
        length = end - start
        budget = max_containers(length)
        with memoryview(self._buffer) as view, view[start:end] as payload:
            try:
                value = budgeted_unpack(payload, budget, timestamp=3, strict_map_key=False)
            except TooManyContainers:
                return self._refuse(payload, offset, f"more than {budget} maps and arrays in a frame of {length} bytes")
            except msgpack.StackError:
                return self._refuse(payload, offset, f"nested deeper than max_depth={self._max_depth}")
            except UnsupportedExt as exc:
                return self._refuse(payload, offset, f"msgpack extension type {exc.code} is not supported")
            except Exception as exc:  # msgpack raises a zoo of types for garbage
                # Framed well but for one value (a string that is not UTF-8, a
                # timestamp out of range)? Then it fails alone, like a bad body.
                # Never format the exception's repr: ExtraData's holds the value.
                why = f"{type(exc).__name__}: {clip(str(exc), 200)}"
                try:
                    lenient = budgeted_unpack(
                        payload, budget, timestamp=0, strict_map_key=False, unicode_errors="surrogateescape"
                    )
                except Exception:
                    lenient = None
                frame_id = self._id_of(lenient)
                if frame_id is None:
                    self._fail(RemoteProtocolError(f"frame is not one msgpack value: {why}", offset=offset))
                return RejectedFrame(id=frame_id, reason=f"a value in the frame does not decode: {why}", offset=offset)
        if type(value) is not list:
            self._fail(
                RemoteProtocolError(f"frame is a msgpack {type(value).__name__}, not an array", offset=offset)
            )
        if len(value) not in self._arities:
            kind = "request" if self._frame_type is RequestFrame else "response"
            self._fail(
                RemoteProtocolError(
                    f"{kind} frame has {len(value)} elements, expected one of {self._arities}",
                    offset=offset,
                )
            )
        frame_id = value[0]
        body = value[1] if len(value) > 1 else None
        third = value[2] if len(value) > 2 else None
        try:
            if self._frame_type is RequestFrame:
                RequestFrame(id=frame_id, body=body, context_carrier=third)
            else:
                ResponseFrame(id=frame_id, body=body, error=third)
        except LocalProtocolError as exc:
            if check_id(frame_id) is not None:  # no id to answer: the stream is bad
                self._fail(RemoteProtocolError(str(exc), offset=offset))
            # A body, carrier or error that is not a map (or nil) under a readable id:
            # that frame fails alone, as a map that is not a known message does.
            return RejectedFrame(id=frame_id, reason=str(exc), offset=offset)
        try:
            check_depth(body, self._max_depth)
            check_depth(third, self._max_depth)
        except TooDeep:
            return RejectedFrame(id=frame_id, reason=f"nested deeper than max_depth={self._max_depth}", offset=offset)
        return (frame_id, body, third)

    def _id_of(self, value: Any) -> int | None:
        """The id of an unpacked frame of the right shape, else ``None``."""
        if type(value) is not list or len(value) not in self._arities:
            return None
        frame_id = value[0]
        if type(frame_id) is not int or not 0 <= frame_id < 2**64:
            return None
        return frame_id

    def _refuse(self, payload: memoryview, offset: int, reason: str) -> RejectedFrame:
        """Refuse a whole frame alone if its head names its id; else the stream is bad."""
        frame_id = self._read_head(bytes(payload[:_MAX_HEAD]))
        if not isinstance(frame_id, int):
            self._fail(RemoteProtocolError(f"frame without a readable id: {reason}", offset=offset))
        return RejectedFrame(id=frame_id, reason=reason, offset=offset)

    def _too_deep(self, frame_id: int, pos: int) -> RejectedFrame:
        return RejectedFrame(
            id=frame_id, reason=f"nested deeper than max_depth={self._max_depth}", offset=self._consumed + pos
        )

    def _fail(self, error: RemoteProtocolError) -> NoReturn:
        self._error = error
        self._buffer = bytearray()
        self._pos = 0
        raise error
