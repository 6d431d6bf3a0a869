"""serve_listeners: one peer's fault ends its connection alone (docs/serving.rst).

Real loopback TCP. The code before it (``trio.serve_listeners`` + ``serve``) let a
client killed mid-frame end the whole server with TruncatedFrame.
"""

from __future__ import annotations

import logging

import pytest
import trio

import actors
from tests.actors.helpers import CODEC, TEST_TIMEOUT, Echo, Echoed, echo_handler


@pytest.mark.parametrize("fault", [b"\x00\x00\x01", b"\x00\x00\x00\x00", b"\x00\x00\x00\x05\x93\x01"])
async def test_a_faulty_client_ends_only_its_connection(fault: bytes, caplog: pytest.LogCaptureFixture) -> None:
    """Truncated prefix, zero-length frame, truncated body: each ends that connection,
    one warning; a client connected before it and one after are served."""
    with trio.fail_after(TEST_TIMEOUT):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        async with trio.open_nursery() as nursery:
            started = await nursery.start(actors.serve_listeners, listeners, CODEC, echo_handler)
            port = started[0].socket.getsockname()[1]
            before = await trio.open_tcp_stream("127.0.0.1", port)
            async with actors.open_comms(before, CODEC, timeout=10) as early:
                assert await early.asend(Echo(text="before")) == Echoed(text="before")
                broken = await trio.open_tcp_stream("127.0.0.1", port)
                await broken.send_all(fault)
                if fault != b"\x00\x00\x00\x00":
                    await broken.send_eof()
                assert await broken.receive_some() == b""  # the server closed it
                await broken.aclose()
                after = await trio.open_tcp_stream("127.0.0.1", port)
                async with actors.open_comms(after, CODEC, timeout=10) as late:
                    assert await late.asend(Echo(text="after")) == Echoed(text="after")
                assert await early.asend(Echo(text="still")) == Echoed(text="still")
            nursery.cancel_scope.cancel()
    faults = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(faults) == 1, [r.getMessage() for r in faults]
    assert faults[0].name == "actors._listeners" and "connection from 127.0.0.1:" in faults[0].getMessage()


async def test_serve_options_reach_each_connection() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        async with trio.open_nursery() as nursery:
            started = await nursery.start(
                lambda task_status: actors.serve_listeners(
                    listeners, CODEC, echo_handler, hello=Echoed(text="hi"), task_status=task_status
                )
            )
            port = started[0].socket.getsockname()[1]
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            async with actors.open_comms(stream, CODEC, expect_hello=True) as comms:
                assert comms.hello == Echoed(text="hi")
            nursery.cancel_scope.cancel()
