"""Frames: the length-prefixed msgpack arrays on the wire, and their incremental decoder.

A frame is a 4-byte unsigned big-endian length ``N`` followed by ``N`` bytes of
msgpack holding one array:

- request:  ``[id, body]`` or ``[id, body, context_carrier]``
- response: ``[id]``, ``[id, body]`` or ``[id, body, error]``

Trailing empty fields are omitted when encoding, exactly as Apache Airflow's
supervisor comms (msgspec with ``array_like=True, omit_defaults=True``) writes them,
so either side can be an Airflow process.

This module does no I/O: :func:`encode_frame` and the builders turn frames into
bytes; the incremental decoder that turns bytes back into frames is in ``_decoder.py``.
"""

from __future__ import annotations

import struct
import threading
from typing import Any, Final, TypeVar

import attrs
import msgpack

from ._errors import (
    LocalProtocolError,
    MessageEncodeError,
)

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "FRAME_TOO_LARGE",
    "PACKED_NIL",
    "RequestFrame",
    "ResponseFrame",
    "check_request_size",
    "encode_frame",
    "frame_head",
    "max_request_body",
    "pack_value",
    "response_bytes",
]

DEFAULT_MAX_FRAME_SIZE: Final = 16 * 2**20
"""The default limit on a frame's length prefix: 16 MiB."""

FRAME_TOO_LARGE: Final = "FRAME_TOO_LARGE"
"""The error code that answers a frame over the receiver's ``max_frame_size``."""

PACKED_NIL: Final = b"\xc0"
"""msgpack's nil: the packed form of an empty body."""

_LENGTH = struct.Struct(">I")
_MAX_LENGTH: Final = 2**32 - 1
_MAX_ID: Final = 2**64 - 1
_FIXARRAY: Final = 0x90
# The longest head a frame can have after its length prefix: a fixarray byte and
# an id of up to 1 + 8 bytes (msgpack uint64).
_MAX_HEAD: Final = 10


def check_id(frame_id: object) -> str | None:
    # bool is an int subclass, but msgpack sends it as true/false: not an id.
    if type(frame_id) is not int:
        return f"frame id must be an unsigned int, not {type(frame_id).__name__}"
    if not 0 <= frame_id <= _MAX_ID:
        return f"frame id {frame_id} is outside 0..2**64-1"
    return None


def _check_map(name: str, value: object) -> str | None:
    if value is None or type(value) is dict:
        return None
    return f"frame {name} must be a map or nil, not {type(value).__name__}"


def _raise_if(reason: str | None) -> None:
    if reason is not None:
        raise LocalProtocolError(reason)


@attrs.frozen(kw_only=True)
class RequestFrame:
    """A request: ``[id, body]`` or ``[id, body, context_carrier]`` on the wire.

    Raises:
        LocalProtocolError: ``id`` is not an int in 0..2**64-1, or ``body`` or
            ``context_carrier`` is neither a dict nor ``None``.
    """

    id: int
    """Chosen by the requester; the response carries it back."""
    body: dict[str, Any] | None
    """The message as a map with a ``"type"`` key, or ``None``."""
    context_carrier: dict[str, Any] | None = None
    """Tracing context (for example OpenTelemetry's carrier); omitted when ``None``."""

    def __attrs_post_init__(self) -> None:
        _raise_if(
            check_id(self.id)
            or _check_map("body", self.body)
            or _check_map("context_carrier", self.context_carrier)
        )

    def _fields(self) -> tuple[object, ...]:
        if self.context_carrier is None:
            return (self.body,)
        return (self.body, self.context_carrier)


@attrs.frozen(kw_only=True)
class ResponseFrame:
    """A response: ``[id]``, ``[id, body]`` or ``[id, body, error]`` on the wire.

    Raises:
        LocalProtocolError: ``id`` is not an int in 0..2**64-1, or ``body`` or
            ``error`` is neither a dict nor ``None``.
    """

    id: int
    """The id of the request this answers (0 for an unsolicited hello)."""
    body: dict[str, Any] | None = None
    """The reply message as a map with a ``"type"`` key, or ``None``."""
    error: dict[str, Any] | None = None
    """An error map ``{"type": "ErrorResponse", "error": code, "detail": ...}``, or ``None``."""

    def __attrs_post_init__(self) -> None:
        _raise_if(
            check_id(self.id) or _check_map("body", self.body) or _check_map("error", self.error)
        )

    def _fields(self) -> tuple[object, ...]:
        if self.error is not None:
            return (self.body, self.error)
        if self.body is not None:
            return (self.body,)
        return ()


Frame = RequestFrame | ResponseFrame
FrameT = TypeVar("FrameT", RequestFrame, ResponseFrame)


_new_object = object.__new__
_set_field = object.__setattr__


def _trusted(
    frame_type: type[FrameT], frame_id: int, body: dict[str, Any] | None, third: dict[str, Any] | None
) -> FrameT:
    """A frame from fields the decoder has already checked (no re-validation);
    ``third`` is a request's context carrier or a response's error."""
    frame: FrameT = _new_object(frame_type)
    _set_field(frame, "id", frame_id)
    _set_field(frame, "body", body)
    _set_field(frame, "context_carrier" if frame_type is RequestFrame else "error", third)
    return frame


def pack_value(value: object) -> bytes:
    """Pack one value (a body, carrier or error map) into msgpack bytes.

    Timezone-aware datetimes become msgpack Timestamp extensions, as msgspec (and so
    Airflow) writes them.

    Raises:
        MessageEncodeError: msgpack cannot carry ``value`` (an unknown object type,
            an int over 64 bits, a naive datetime, a cycle, ...).
    """
    try:
        packed: bytes = _packers.packer.pack(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise MessageEncodeError(f"cannot pack {type(value).__name__}: {exc}") from exc
    return packed


class _Packers(threading.local):
    """One msgpack Packer per thread: ``msgpack.packb`` builds a new one per call,
    which costs more than packing a small body. A Packer is not thread-safe, and
    callers pack on their own threads; it resets itself after a failed pack."""

    def __init__(self) -> None:
        self.packer = msgpack.Packer(datetime=True)


_packers = _Packers()


def frame_head(frame_id: int, packed_fields: int, field_count: int) -> bytes:
    """The bytes that go before a frame's already-packed fields.

    A frame is ``frame_head(...)`` followed by its packed body (and carrier or error),
    so a body packed once by its caller is never packed again: the writer sends the
    head and the body side by side. The id takes msgpack's shortest form, as msgpack
    and msgspec write it.

    Args:
        frame_id: the frame's id.
        packed_fields: total length of the packed fields that follow the id.
        field_count: how many fields follow the id (0, 1 or 2).

    Raises:
        LocalProtocolError: the id is not an int in 0..2**64-1, or the frame would be
            longer than a 4-byte length prefix can say.
    """
    if type(frame_id) is int and 0 <= frame_id <= _MAX_ID:
        # One struct per id width, found by the id's bit length: the head is a single
        # pack and no loop (this runs per request).
        extra, head_struct, marker = _HEAD_BY_BITS[frame_id.bit_length()]
        length = extra + packed_fields
        if length > _MAX_LENGTH:
            raise LocalProtocolError(f"frame of {length} bytes does not fit a 4-byte length prefix")
        array = _FIXARRAY | (1 + field_count)
        if marker is None:
            return head_struct.pack(length, array, frame_id)
        return head_struct.pack(length, array, marker, frame_id)
    _raise_if(check_id(frame_id))
    raise AssertionError("unreachable: every valid id has a width")


# (largest id, bytes after the prefix before the fields, struct, msgpack uint marker)
_HEADS: Final = (
    (0x7F, 2, struct.Struct(">IBB"), None),
    (0xFF, 3, struct.Struct(">IBBB"), 0xCC),
    (0xFFFF, 4, struct.Struct(">IBBH"), 0xCD),
    (0xFFFF_FFFF, 6, struct.Struct(">IBBI"), 0xCE),
    (_MAX_ID, 10, struct.Struct(">IBBQ"), 0xCF),
)
# By an id's bit length (0..64), its row of _HEADS without the largest id.
_HEAD_BY_BITS: Final = tuple(
    next((extra, head, marker) for limit, extra, head, marker in _HEADS if (1 << bits) - 1 <= limit)
    for bits in range(65)
)


def response_bytes(frame_id: int, packed_body: bytes | None = None, packed_error: bytes | None = None) -> bytes:
    """A whole response frame: ``[id]``, ``[id, body]`` or ``[id, body, error]``.

    Trailing empty fields are omitted as :func:`encode_frame` omits them; a response
    with an error and no body carries nil in the body's place.

    Raises:
        LocalProtocolError: as :func:`frame_head`.
    """
    if packed_error is not None:
        fields = (packed_body or PACKED_NIL) + packed_error
        return frame_head(frame_id, len(fields), 2) + fields
    if packed_body is None:
        return frame_head(frame_id, 0, 0)
    return frame_head(frame_id, len(packed_body), 1) + packed_body


def check_request_size(packed_body: bytes, packed_carrier: bytes | None, max_frame_size: int) -> None:
    """Check, before any id is chosen, that a request fits ``max_frame_size``.

    It counts the longest head an id can need, so a request that passes fits
    whatever id the writer gives it.

    Raises:
        LocalProtocolError: the request would be longer than ``max_frame_size``.
    """
    size = _MAX_HEAD + len(packed_body) + (0 if packed_carrier is None else len(packed_carrier))
    if size > max_frame_size:
        raise LocalProtocolError(
            f"request of up to {size} bytes does not fit max_frame_size={max_frame_size}"
        )


def max_request_body(max_frame_size: int) -> int:
    """The largest packed body a request without a carrier can have within
    ``max_frame_size``, whatever its id: a cheap first check before
    :func:`check_request_size`."""
    return max_frame_size - _MAX_HEAD


def encode_frame(frame: Frame, *, max_frame_size: int | None = None) -> bytes:
    """Encode a frame into its bytes on the wire (length prefix included).

    ::

        >>> encode_frame(ResponseFrame(id=0, body={"type": "StartTriggerer"}))
        b'\\x00\\x00\\x00\\x17\\x92\\x00\\x81\\xa4type\\xaeStartTriggerer'

    Raises:
        MessageEncodeError: a field holds a value msgpack cannot carry.
        LocalProtocolError: the frame is longer than ``max_frame_size`` (when given)
            or than a 4-byte prefix can say.
    """
    fields = frame._fields()
    packed = b"".join(pack_value(field) for field in fields)
    data = frame_head(frame.id, len(packed), len(fields)) + packed
    if max_frame_size is not None and len(data) - 4 > max_frame_size:
        raise LocalProtocolError(
            f"frame of {len(data) - 4} bytes exceeds max_frame_size={max_frame_size}"
        )
    return data
