"""The errors of the wire layer.

Two families, kept apart on purpose:

- :class:`ProtocolError` means the *framing* is broken. After a
  :class:`RemoteProtocolError` the byte stream cannot be trusted any more, so the
  channel that saw it must close. :class:`LocalProtocolError` means our own code
  tried to put something illegal on the wire; nothing was written.
- :class:`MessageError` means one frame was well formed but its body could not be
  turned into (or made from) a message. The stream is still in sync, because the
  length prefix says where the next frame starts, so only the request or reply that
  body belongs to fails.

:class:`ErrorReply` is not a failure of this library: it is the error response a
peer sends, and what a handler raises to send one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._util import clip, short_repr

__all__ = [
    "ErrorReply",
    "FrameTooLarge",
    "LocalProtocolError",
    "MessageDecodeError",
    "MessageEncodeError",
    "MessageError",
    "ProtocolError",
    "RemoteProtocolError",
    "TruncatedFrame",
]


class ProtocolError(Exception):
    """Base class for framing errors: bytes that are not a valid trio-comms stream.

    Never raised directly; catch it to handle both :class:`LocalProtocolError` and
    :class:`RemoteProtocolError`.
    """


class LocalProtocolError(ProtocolError):
    """Raised when *we* try to send something the wire format cannot carry.

    For example a frame id that is negative or does not fit in 64 bits, a body that
    is not a map, or a frame larger than the channel's ``max_frame_size``. Nothing
    has been written when this is raised, so the channel is still usable.
    """


class RemoteProtocolError(ProtocolError):
    """Raised when the *peer* sent bytes that are not a valid frame.

    The message says what was wrong and :attr:`offset` says where: the byte offset
    of the frame's length prefix in the stream. The decoder that raised it is in a
    terminal state, and the channel reading that stream must close, because there is
    no way to find the next frame boundary in a stream that has lied once.
    """

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message if offset is None else f"{message} (frame at byte offset {offset})")
        self.offset = offset


class FrameTooLarge(RemoteProtocolError):
    """Raised when a length prefix announces a frame over ``max_frame_size``.

    It is raised as soon as the 4-byte prefix has arrived, before any of the body is
    buffered, so a hostile or corrupt prefix never causes a large allocation.
    :attr:`size` is the announced length and :attr:`max_frame_size` the limit.
    """

    def __init__(self, size: int, max_frame_size: int, *, offset: int) -> None:
        super().__init__(
            f"frame of {size} bytes exceeds max_frame_size={max_frame_size}", offset=offset
        )
        self.size = size
        self.max_frame_size = max_frame_size


class TruncatedFrame(RemoteProtocolError):
    """Raised when the stream ends in the middle of a frame.

    :attr:`received` bytes of the frame (prefix included) had arrived. An end of
    stream *between* frames is not an error: the decoder reports it as
    :data:`~channel.END_OF_STREAM`.
    """

    def __init__(self, received: int, *, offset: int) -> None:
        super().__init__(f"stream ended after {received} bytes of a frame", offset=offset)
        self.received = received


class MessageError(Exception):
    """Base class for errors turning a message into a body map or back.

    Never raised directly; catch it to handle both :class:`MessageEncodeError` and
    :class:`MessageDecodeError`.
    """


class MessageEncodeError(MessageError, TypeError):
    """Raised in the *sending* code when a message cannot be encoded.

    For example an object whose class the codec does not know, a field value that
    msgpack cannot carry, or a naive datetime. Encoding happens in the caller, before
    anything reaches the channel, so this never disturbs other callers.
    """


class MessageDecodeError(MessageError, ValueError):
    """Raised when a well-framed body does not decode into a known message.

    One error for every cause (unknown ``"type"``, missing ``"type"``, missing
    field, field of the wrong type), carrying data rather than only text:

    - :attr:`message_type`: the ``"type"`` tag of the body (``None`` when absent);
    - :attr:`path`: where in the body it failed, as ``$.field.sub[2]``
      (``$`` for the body as a whole);
    - :attr:`reason`: what was wrong there; when several fields are wrong, it goes
      on to name up to four more (``"...; also $.count: expected int"``) and
      counts the rest.

    On the requesting side only the caller whose reply it was sees it; a responder
    answers the request with an error response instead.
    """

    def __init__(self, message_type: str | None, path: str, reason: str) -> None:
        # A peer chose the tag, and the path may hold its keys: the text stays short.
        super().__init__(
            f"cannot decode {clip(message_type or 'message', 100)} at {clip(path, 200)}: {clip(reason, 600)}"
        )
        self.message_type = message_type
        self.path = path
        self.reason = reason


class ErrorReply(Exception):
    """An error response: a ``code`` string and an optional ``detail`` map.

    Raise it (or a subclass) in a responder's handler to answer that request with
    this code, for example ``raise ErrorReply("VARIABLE_NOT_FOUND", {"key": key})``.
    Codes follow Airflow's convention (``GENERIC_ERROR``, ``VARIABLE_NOT_FOUND``,
    ...) so an Airflow peer can read them. On the requesting side the caller gets
    ``actors.RemoteError``, a subclass, so a handler that relays another call's
    failure passes its code on unchanged.
    """

    def __init__(self, code: str, detail: Mapping[str, Any] | None = None) -> None:
        if not isinstance(code, str) or not code:
            raise TypeError(f"error code must be a non-empty str, not {short_repr(code)}")
        # The code and detail may come from a peer: the text stays short and a deeply
        # nested detail cannot make formatting it raise RecursionError.
        super().__init__(clip(code, 100) if detail is None else f"{clip(code, 100)}: {short_repr(dict(detail))}")
        self.code = code
        self.detail: dict[str, Any] | None = None if detail is None else dict(detail)
