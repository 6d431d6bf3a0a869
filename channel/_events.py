"""What the frame decoder hands out besides frames: the events that say it has no
frame to give, a frame's fields as a tuple, and the two frames that fail alone.

Kept apart from the decoder (h11 keeps its events in ``_events.py``) so that a reader
of either finds one concept.
"""

from __future__ import annotations

import enum
from typing import Any, Final

import attrs

from ._errors import ErrorReply, MessageDecodeError
from ._frames import FRAME_TOO_LARGE

__all__ = ["END_OF_STREAM", "NEED_DATA", "DecoderEvent", "FrameFields", "OversizedFrame", "RejectedFrame"]


class DecoderEvent(enum.Enum):
    """What :meth:`FrameDecoder.next_frame` returns when it has no frame to give."""

    NEED_DATA = "NEED_DATA"
    """No whole frame is buffered yet: feed more bytes with ``receive_data``."""
    END_OF_STREAM = "END_OF_STREAM"
    """The stream ended cleanly, between two frames. Nothing more will come."""


NEED_DATA: Final = DecoderEvent.NEED_DATA
END_OF_STREAM: Final = DecoderEvent.END_OF_STREAM


FrameFields = tuple[int, dict[str, Any] | None, dict[str, Any] | None]
"""A frame as :meth:`FrameDecoder.next_fields` gives it: ``(id, body, carrier or error)``."""



@attrs.frozen(kw_only=True)
class OversizedFrame:
    """What :meth:`FrameDecoder.next_frame` returns for a frame over ``max_frame_size``
    whose id could be read: the frame is skipped, the stream stays in sync.

    Its body is never buffered: the decoder discards its bytes as they arrive. Only
    the request or reply with this :attr:`id` fails; a responder answers it with
    :meth:`error_reply`, a requester fails that one caller with the same code.
    """

    id: int
    """The skipped frame's id."""
    size: int
    """Its announced length in bytes."""
    max_frame_size: int
    """The decoder's limit it exceeded."""
    offset: int
    """The stream offset of its length prefix."""

    def error_reply(self, frame: str) -> ErrorReply:
        """The error that answers this frame: code :data:`FRAME_TOO_LARGE`, both sizes.

        Args:
            frame: which frame was too large, ``"request"`` or ``"response"``, for
                the detail.
        """
        return ErrorReply(
            FRAME_TOO_LARGE, {"frame": frame, "size": self.size, "max_frame_size": self.max_frame_size}
        )


@attrs.frozen(kw_only=True)
class RejectedFrame:
    """What :meth:`FrameDecoder.next_frame` returns for a whole, well-framed frame
    whose id could be read but whose contents are refused: it fails alone.

    The stream stays in sync (the length prefix said where the next frame starts),
    so only this frame's request or reply fails, as a body that does not decode
    does. A frame is refused when it nests deeper than ``max_depth``, holds more
    maps and arrays than :func:`max_containers` allows for its size, or carries a
    string that is not UTF-8 or a timestamp out of ``datetime``'s range.
    """

    id: int
    """The refused frame's id."""
    reason: str
    """Why it was refused, in a few words (never the peer's value itself)."""
    offset: int
    """The stream offset of its length prefix."""

    def decode_error(self) -> MessageDecodeError:
        """The error its caller gets, or that answers its request: a
        :class:`~channel.MessageDecodeError` at ``$`` with :attr:`reason`."""
        return MessageDecodeError(None, "$", self.reason)
