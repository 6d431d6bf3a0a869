"""The errors a caller of the channel sees.

The wire layer's errors (``channel.ProtocolError`` and its kin) are re-exported from
``actors`` beside these. The four here answer "why did my call fail?":

- :class:`ChannelClosed`: the channel is gone; ``__cause__`` says why.
- :class:`RemoteError`: the peer answered this request with an error response.
- :class:`RequestTimeout`: this call's deadline passed.
- :class:`LoopThreadError`: a blocking ``send`` was called where it would deadlock.

:class:`PeerUnresponsive` is never raised to a caller directly: it is the cause of
the ``ChannelClosed`` that every call sees once the peer has left too many requests
unanswered (:class:`PeerNotAnswering`) or stopped reading (:class:`PeerNotReading`). :class:`ReplyTooLarge` is the :class:`RemoteError` of a call whose reply
was over our ``max_frame_size``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channel import ErrorReply

__all__ = [
    "ChannelClosed",
    "LoopThreadError",
    "PeerNotAnswering",
    "PeerNotReading",
    "PeerUnresponsive",
    "RemoteError",
    "ReplyTooLarge",
    "RequestTimeout",
    "HelloTimeout",
]


class ChannelClosed(Exception):
    """Raised by every pending and every later call once the channel has closed.

    ``__cause__`` (also :attr:`cause`) says why:

    - ``EOFError``: the peer closed its end of the stream;
    - ``trio.BrokenResourceError`` or ``OSError``: the socket failed;
    - ``channel.RemoteProtocolError``: the peer sent bytes that are not a frame;
    - :class:`PeerUnresponsive`: the peer stopped taking part, either
      :class:`PeerNotAnswering` (more than ``max_unanswered`` requests whose callers
      gave up are still unanswered) or :class:`PeerNotReading` (no byte of a
      waiting request could be written for the channel's stall bound);
    - ``trio.ClosedResourceError``: our own code closed it (``aclose()``, or leaving
      ``open_comms`` / ``comms_in_thread``).

    Each failing call gets its own instance; they share the cause.
    """

    @property
    def cause(self) -> BaseException | None:
        """Why the channel closed (the same object as ``__cause__``)."""
        return self.__cause__


def closed_error(cause: BaseException) -> ChannelClosed:
    """A fresh :class:`ChannelClosed` for one caller, chained to ``cause``."""
    error = ChannelClosed(f"channel closed: {type(cause).__name__}: {cause}")
    error.__cause__ = cause
    return error


class RemoteError(ErrorReply):
    """Raised in a caller when the peer answered its request with an error response.

    Carries the response's :attr:`code` (a string such as ``"GENERIC_ERROR"``),
    :attr:`detail` (a dict or ``None``) and :attr:`frame_id`. Only that caller sees
    it; the channel stays open. It is a ``channel.ErrorReply``, so a responder's
    handler that lets it propagate answers its own request with the same code.
    """

    def __init__(self, code: str, detail: Mapping[str, Any] | None = None, *, frame_id: int | None = None) -> None:
        super().__init__(code, detail)
        self.frame_id = frame_id


class ReplyTooLarge(RemoteError):
    """Raised in a caller whose reply was over this channel's ``max_frame_size``.

    The reply's bytes were skipped as they arrived, never buffered, and only this
    caller fails; the channel stays open. Its :attr:`code` is
    ``"FRAME_TOO_LARGE"`` (``channel.FRAME_TOO_LARGE``), the code a responder
    answers a request over *its* limit with, and :attr:`detail` gives
    ``{"frame": "response", "size": ..., "max_frame_size": ...}``.
    """


class RequestTimeout(TimeoutError):
    """Raised in a caller whose deadline passed before its reply arrived.

    Only that caller is affected. It says which of two things happened:

    - :attr:`written` is True: the request was written as frame :attr:`frame_id`
      and no reply came in time. Its reply is dropped when it arrives (counted in
      ``statistics().replies_late``), and until then the request counts towards
      ``max_unanswered``, not ``max_in_flight``.
    - :attr:`written` is False (:attr:`frame_id` is ``None``): the request was still
      queued, behind ``max_in_flight`` or the writer, and it will never be written.

    :attr:`timeout` is the deadline the call had, in seconds; :attr:`message_type`
    the request's ``"type"`` tag.
    """

    def __init__(self, timeout: float, *, message_type: str, frame_id: int | None) -> None:
        if frame_id is None:
            text = f"{message_type} still queued after {timeout:g} s; it was never written"
        else:
            text = f"no reply to {message_type} (frame {frame_id}) within {timeout:g} s"
        super().__init__(text)
        self.timeout = timeout
        self.message_type = message_type
        self.frame_id = frame_id

    @property
    def written(self) -> bool:
        """Whether the request reached the stream before the deadline."""
        return self.frame_id is not None


class HelloTimeout(RequestTimeout):
    """Raised on entering a channel opened with ``expect_hello=True`` when the
    peer's hello did not come within ``hello_timeout``. The channel is closed."""

    def __init__(self, timeout: float) -> None:
        TimeoutError.__init__(self, f"no hello from the peer within {timeout:g} s")
        self.timeout = timeout
        self.message_type = "hello"
        self.frame_id = None


class PeerUnresponsive(Exception):
    """Why a channel closed when its peer stopped taking part: never raised to a
    caller directly, it is the cause of the ``ChannelClosed`` every call then sees.

    Catch it to handle both kinds: :class:`PeerNotAnswering` (written requests
    stay unanswered) and :class:`PeerNotReading` (nothing more can be written).
    """


class PeerNotAnswering(PeerUnresponsive):
    """Why a channel closed when its peer stopped answering.

    A call whose caller gave up (deadline or cancel) after its request was written
    stops counting against ``max_in_flight``, but its id is remembered so its late
    reply can be dropped. When more than ``max_unanswered`` such ids are waiting, the
    peer is not answering: the channel closes with this as the cause of every
    ``ChannelClosed``, rather than staying open while every call times out.

    :attr:`unanswered` is how many requests were waiting, :attr:`oldest_age` how
    many seconds ago the oldest of them was given up by its caller (it was written
    at least that long ago), :attr:`max_unanswered` the limit.
    """

    def __init__(self, unanswered: int, oldest_age: float, max_unanswered: int) -> None:
        super().__init__(
            f"peer left {unanswered} requests unanswered (max_unanswered={max_unanswered}); "
            f"the oldest was given up {oldest_age:.3g} s ago"
        )
        self.unanswered = unanswered
        self.oldest_age = oldest_age
        self.max_unanswered = max_unanswered


class PeerNotReading(PeerUnresponsive):
    """Why a channel (or ``serve``) ended when its peer stopped reading.

    Raised when bytes were waiting to be written and none of them could be written for
    :attr:`stalled_for` seconds (the socket stayed full: the peer read nothing, or
    too little to make room; the kernel wakes a writer only once a good part of the
    socket's buffer is free, so a trickle of reads counts as not reading): a peer that never reads
    would otherwise hold the writer, and everything queued behind it, forever.
    :attr:`unwritten` is how many bytes were still waiting.
    """

    def __init__(self, unwritten: int, stalled_for: float) -> None:
        super().__init__(f"peer stopped reading: {unwritten} bytes unwritten after {stalled_for:g} s without progress")
        self.unwritten = unwritten
        self.stalled_for = stalled_for


class LoopThreadError(RuntimeError):
    """Raised by ``send`` when it is called on the thread that runs the channel's actor.

    A blocking call there would stop the very loop that must deliver its reply, so
    it raises at once instead of deadlocking. From async code use
    ``await comms.asend(...)``; from sync code on that thread, run it inside a
    greenback portal (``await greenback.ensure_portal()`` in the calling task).
    """
