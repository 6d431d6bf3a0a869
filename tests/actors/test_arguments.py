"""Wrong arguments are refused at the call (docs/callers.rst): each opener checks what
it is given once, with a ``TypeError`` that says what to pass instead, rather than
failing later and far away (a bare ``AssertionError`` in a thread, an
``AttributeError`` in the reader, ``FileNotFoundError: 'p'``)."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import trio

import actors

from .helpers import CODEC, Echo


async def test_open_comms_refuses_a_stdlib_socket() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs, pytest.raises(TypeError, match=r"trio stream, not a socket .*from_stdlib_socket"):
        async with actors.open_comms(ours, CODEC):  # type: ignore[arg-type]
            pass


async def test_open_comms_refuses_a_trio_socket() -> None:
    ours, theirs = trio.socket.socketpair()
    with ours, theirs, pytest.raises(TypeError, match=r"trio.SocketStream\(sock\) for a trio socket"):
        async with actors.open_comms(ours, CODEC):  # type: ignore[arg-type]
            pass


async def test_open_comms_refuses_something_that_is_not_a_codec(stream_pair) -> None:
    ours, _ = stream_pair
    with pytest.raises(TypeError, match=r"takes a codec: a channel.Codec .* not list \(no pack, decode, reply_type, message_type\)"):
        async with actors.open_comms(ours, [Echo]):  # type: ignore[arg-type]
            pass


def test_comms_in_thread_refuses_a_trio_socket_before_any_thread_starts() -> None:
    ours, theirs = trio.socket.socketpair()
    with ours, theirs, pytest.raises(TypeError, match=r"stdlib socket.socket .* not a trio socket"):
        actors.comms_in_thread(ours, CODEC)  # type: ignore[arg-type]


def test_comms_in_thread_refuses_a_datagram_socket() -> None:
    ours, theirs = socket.socketpair(type=socket.SOCK_DGRAM)
    with ours, theirs, pytest.raises(TypeError, match=r"stream socket \(SOCK_STREAM\)"):
        actors.comms_in_thread(ours, CODEC)


@pytest.mark.parametrize(
    ("command", "match"),
    [
        ("python -m worker", r"argv as a sequence of strings, not one string .*shlex.split"),
        ([], r"non-empty sequence"),
        (["python", 3], r"must be a str, not 3"),
    ],
)
async def test_open_supervisor_refuses_a_command_that_is_not_an_argv(command: Any, match: str) -> None:
    async def handler(message: object) -> None:
        return None

    with pytest.raises(TypeError, match=match):
        async with actors.open_supervisor(command, CODEC, handler):
            pass


async def test_serve_refuses_something_that_is_not_a_codec(stream_pair) -> None:
    ours, _ = stream_pair

    async def handler(message: Any) -> Any:
        return message

    with trio.fail_after(10), pytest.raises(TypeError, match=r"serve takes a codec: .* not list \(no pack, decode"):
        await actors.serve(ours, [Echo], handler)  # type: ignore[arg-type]


async def test_serve_listeners_refuses_bad_arguments_before_it_accepts_anyone() -> None:
    """Once, at the call: not at each connection, where a sync handler's TypeError
    would escape ``serve`` and end the whole server on its first client."""

    async def handler(message: Any) -> Any:
        return message

    def sync_handler(message: Any) -> Any:
        return message

    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    try:
        with trio.fail_after(10), pytest.raises(TypeError, match=r"serve_listeners takes a codec"):
            await actors.serve_listeners(listeners, [Echo], handler)  # type: ignore[arg-type]
        with trio.fail_after(10), pytest.raises(TypeError, match=r"serve_listeners\(\) needs an async handler"):
            await actors.serve_listeners(listeners, CODEC, sync_handler)
        with trio.fail_after(10), pytest.raises(ValueError, match="max_concurrency"):
            await actors.serve_listeners(listeners, CODEC, handler, max_concurrency=0)
        with trio.fail_after(10), pytest.raises(TypeError, match="no_such_option"):
            await actors.serve_listeners(listeners, CODEC, handler, no_such_option=1)
    finally:
        for listener in listeners:
            await listener.aclose()
