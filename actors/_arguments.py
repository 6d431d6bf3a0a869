"""What a user passes to an opener, checked once at the boundary.

``mypy --strict`` cannot catch everything a caller gets wrong (a stdlib socket
where a trio stream belongs passes as ``Any``; a string is a ``Sequence[str]``), and
a wrong argument that slips past the opener fails far away from the call, as an
``AttributeError`` in the reader or ``FileNotFoundError: 'p'``. Each check here
raises ``TypeError`` at the call with what to pass instead.
"""

from __future__ import annotations

import inspect
import socket
from collections.abc import Sequence
from typing import Any

import trio

from channel import Codec

from ._options import ServeConfig

__all__ = ["check_codec", "check_command", "check_socket", "check_stream", "serve_config"]


def check_stream(stream: object, opener: str) -> None:
    """Raises ``TypeError`` unless ``stream`` is a ``trio.abc.Stream``."""
    if isinstance(stream, trio.abc.Stream):
        return
    if isinstance(stream, (socket.socket, trio.socket.SocketType)):
        raise TypeError(
            f"{opener} takes a trio stream, not a socket ({type(stream).__name__}): pass "
            "trio.SocketStream(trio.socket.from_stdlib_socket(sock)) for a stdlib socket, "
            "trio.SocketStream(sock) for a trio socket, or use actors.comms_in_thread(sock, ...)"
        )
    raise TypeError(f"{opener} takes a trio.abc.Stream, not {type(stream).__name__}")


def check_socket(sock: object, opener: str) -> None:
    """Raises ``TypeError`` unless ``sock`` is a stdlib stream socket."""
    if isinstance(sock, socket.socket) and sock.type == socket.SOCK_STREAM:
        return
    if isinstance(sock, trio.socket.SocketType):
        raise TypeError(
            f"{opener} takes a stdlib socket.socket (it runs its own trio loop), not a trio socket: "
            "pass the stdlib socket it was made from, or use actors.open_comms(trio.SocketStream(sock), ...) "
            "inside your trio run"
        )
    if isinstance(sock, trio.abc.Stream):
        raise TypeError(
            f"{opener} takes a stdlib socket.socket, not a trio stream: use actors.open_comms(stream, ...) "
            "inside your trio run"
        )
    if isinstance(sock, socket.socket):
        raise TypeError(f"{opener} takes a connected stream socket (SOCK_STREAM), not {sock!r}")
    raise TypeError(f"{opener} takes a connected stdlib socket.socket, not {type(sock).__name__}")


def check_codec(codec: object, opener: str) -> None:
    """Raises ``TypeError`` unless ``codec`` is a ``channel.Codec`` or has every method
    of ``channel.MessageCodec``."""
    if isinstance(codec, Codec):
        return
    missing = [name for name in _CODEC_METHODS if not callable(getattr(codec, name, None))]
    if missing:
        raise TypeError(
            f"{opener} takes a codec: a channel.Codec (build one with channel.Codec([...])) or an object "
            f"with the methods of channel.MessageCodec, not {type(codec).__name__} (no {', '.join(missing)})"
        )


_CODEC_METHODS = ("pack", "decode", "reply_type", "message_type")


def check_command(command: object) -> list[str]:
    """The worker's argv as a list. Raises ``TypeError`` for a string or a non-string part."""
    if isinstance(command, (str, bytes)):
        raise TypeError(
            f"open_supervisor takes the worker's argv as a sequence of strings, not one string ({command!r}): "
            "pass for example [sys.executable, '-m', 'worker'], or shlex.split(command)"
        )
    if not isinstance(command, Sequence) or not command:
        raise TypeError(f"open_supervisor takes the worker's argv as a non-empty sequence of strings, not {command!r}")
    for part in command:
        if not isinstance(part, str):
            raise TypeError(f"every part of open_supervisor's command must be a str, not {part!r}")
    return list(command)


def serve_config(opener: str, codec: object, handler: object, **options: Any) -> ServeConfig:
    """:func:`~actors.serve`'s arguments, checked, as its config: for ``serve`` and
    for ``serve_listeners`` (which checks once, before it accepts anyone).

    Raises:
        TypeError: ``codec`` is not a codec, ``handler`` is not an ``async def``
            function, or an option is not one of ``serve``'s.
        ValueError: an option is out of its range (as ``serve`` says).
    """
    check_codec(codec, opener)
    if not _is_async_callable(handler):
        raise TypeError(
            f"{opener}() needs an async handler (`async def handler(message): ...`), not {handler!r}"
        )
    return ServeConfig(**options)


def _is_async_callable(handler: object) -> bool:
    while hasattr(handler, "func"):  # functools.partial
        handler = handler.func
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(
        getattr(handler, "__call__", None)  # noqa: B004 - an object with an async __call__
    )
