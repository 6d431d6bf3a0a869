"""Error bodies: the ``error`` field of a response frame.

On the wire an error is the map ``{"type": "ErrorResponse", "error": <code>,
"detail": <map or nil>}``, the shape Apache Airflow's ``ErrorResponse`` has, so an
Airflow peer reads our errors and we read its.
"""

from __future__ import annotations

from typing import Any, Final

from ._errors import ErrorReply, MessageDecodeError, MessageEncodeError
from ._frames import pack_value
from ._util import clip, short_repr

__all__ = ["ERROR_RESPONSE_TYPE", "GENERIC_ERROR", "error_body", "pack_error_body", "read_error_body"]

ERROR_RESPONSE_TYPE: Final = "ErrorResponse"
GENERIC_ERROR: Final = "GENERIC_ERROR"
"""Airflow's code for an error that has no more specific one."""


def error_body(error: BaseException) -> dict[str, Any]:
    """The error map that answers a request which failed with ``error``.

    An :class:`~channel.ErrorReply` keeps its own code and detail. A
    :class:`~channel.MessageDecodeError` (the request did not decode) becomes
    :data:`GENERIC_ERROR` with its message type, field path and reason. Any other
    exception becomes :data:`GENERIC_ERROR` with a detail naming the exception's
    type and message, so the requester learns what went wrong without the
    responder's traceback crossing the process boundary.
    """
    if isinstance(error, ErrorReply):
        code, detail = error.code, error.detail
    elif isinstance(error, MessageDecodeError):
        code = GENERIC_ERROR
        # Its parts may echo a peer's tag and keys: bounded, so an answer never grows
        # with what the peer sent.
        detail = {
            "error_type": "MessageDecodeError",
            "message_type": None if error.message_type is None else clip(error.message_type, 100),
            "path": clip(error.path, 200),
            "reason": clip(error.reason, 300),
        }
    else:
        code = GENERIC_ERROR
        detail = {"error_type": type(error).__qualname__, "message": clip(str(error), 1000)}
    return {"type": ERROR_RESPONSE_TYPE, "error": code, "detail": detail}


def pack_error_body(error: BaseException) -> bytes:
    """:func:`error_body`, packed. Never fails for a detail msgpack cannot carry:
    the code is kept and the detail replaced by the exception's type and message.
    """
    try:
        return pack_value(error_body(error))
    except MessageEncodeError:
        code = error.code if isinstance(error, ErrorReply) else GENERIC_ERROR
        detail = {"error_type": type(error).__qualname__, "message": clip(str(error), 1000)}
        return pack_value({"type": ERROR_RESPONSE_TYPE, "error": code, "detail": detail})


def read_error_body(error: object) -> tuple[str, dict[str, Any] | None]:
    """Read an error map back into ``(code, detail)``.

    A missing ``"type"`` is tolerated; a code that is an int (an enum's value) is
    turned into its string.

    Raises:
        MessageDecodeError: ``error`` is not a map, its ``"type"`` is something other
            than ``"ErrorResponse"``, its ``"error"`` code is missing or not a
            string, or its ``"detail"`` is neither a map nor nil.
    """
    if type(error) is not dict:
        raise MessageDecodeError(ERROR_RESPONSE_TYPE, "$", f"error is a {type(error).__name__}, not a map")
    tag = error.get("type", ERROR_RESPONSE_TYPE)
    if tag != ERROR_RESPONSE_TYPE:
        raise MessageDecodeError(ERROR_RESPONSE_TYPE, "$.type", f"expected {ERROR_RESPONSE_TYPE!r}, got {short_repr(tag)}")
    code = error.get("error")
    if type(code) is int:
        code = str(code)
    if type(code) is not str or not code:
        raise MessageDecodeError(ERROR_RESPONSE_TYPE, "$.error", f"error code must be a non-empty str, got {short_repr(code)}")
    detail = error.get("detail")
    if detail is not None and type(detail) is not dict:
        raise MessageDecodeError(
            ERROR_RESPONSE_TYPE, "$.detail", f"detail must be a map or nil, got {type(detail).__name__}"
        )
    return code, detail

