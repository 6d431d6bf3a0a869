"""The errors a caller of the channel sees.

The wire layer's errors (``channel.ProtocolError`` and its kin) are re-exported from
``actors`` beside these. The four here answer "why did my call fail?":

- :class:`ChannelClosed`: the channel is gone; ``__cause__`` says why.
- :class:`RemoteError`: the peer answered this request with an error response.
- :class:`RequestTimeout`: this call's deadline passed.
- :class:`LoopThreadError`: a blocking ``send`` was called where it would deadlock.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from channel import ErrorReply

__all__ = ["ChannelClosed", "LoopThreadError", "RemoteError", "RequestTimeout"]


class ChannelClosed(Exception):
    """Raised by every pending and every later call once the channel has closed.

    ``__cause__`` (also :attr:`cause`) says why:

    - ``EOFError``: the peer closed its end of the stream;
    - ``trio.BrokenResourceError`` or ``OSError``: the socket failed;
    - ``channel.RemoteProtocolError``: the peer sent bytes that are not a frame;
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


class RequestTimeout(TimeoutError):
    """Raised in a caller whose deadline passed before its reply arrived.

    Only that caller is affected. If the request was already written, its reply is
    dropped when it arrives (counted in ``statistics().replies_late``); if not, it
    is never written. :attr:`timeout` is the deadline the call had, in seconds.
    """

    def __init__(self, timeout: float) -> None:
        super().__init__(f"no reply within {timeout:g} s")
        self.timeout = timeout


class LoopThreadError(RuntimeError):
    """Raised by ``send`` when it is called on the thread that runs the channel's actor.

    A blocking call there would stop the very loop that must deliver its reply, so
    it raises at once instead of deadlocking. From async code use
    ``await comms.asend(...)``; from sync code on that thread, run it inside a
    greenback portal (``await greenback.ensure_portal()`` in the calling task).
    """
