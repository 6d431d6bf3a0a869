"""The responder's life: how it starts (task_status, handler check), what it logs,
how it drains when the peer's stream ends, and one stream-error policy with the actor.

Real socketpairs; autojump_clock where a deadline is involved.
"""

from __future__ import annotations

import errno
import functools
import logging
from typing import Any

import attrs
import pytest
import trio
import trio.testing

import actors
import channel

from .helpers import CODEC, TEST_TIMEOUT, Echo, Echoed, comms_and_peer, echo_handler, socket_stream_pair
from .test_responder import FakeRequester


async def test_serve_speaks_trios_start_protocol(stream_pair) -> None:
    ours, theirs = stream_pair
    requester = FakeRequester(theirs)
    async with trio.open_nursery() as nursery:
        await nursery.start(actors.serve, ours, CODEC, echo_handler)
        await requester.request(1, Echo(text="started"))
        assert (await requester.response()).body == {"text": "started", "type": "Echoed"}
        await theirs.send_eof()


def test_a_plain_def_handler_is_rejected_at_once() -> None:
    """Regression: a sync handler used to fail every request with "can't be used in 'await'"."""

    def sync_handler(message: Any) -> Any:
        return message

    async def main() -> None:
        ours, theirs = socket_stream_pair()
        with pytest.raises(TypeError, match=r"needs an async handler \(`async def handler"):
            await actors.serve(ours, CODEC, sync_handler)
        await theirs.aclose()
        await ours.aclose()

    trio.run(main)


async def test_async_callables_are_accepted_as_handlers(stream_pair) -> None:
    class Handler:
        async def __call__(self, message: Echo) -> Echoed:
            return Echoed(text=message.text.upper())

    async def prefixed(prefix: str, message: Echo) -> Echoed:
        return Echoed(text=prefix + message.text)

    for handler, expected in ((Handler(), "HI"), (functools.partial(prefixed, ">"), ">hi")):
        ours, theirs = socket_stream_pair()
        async with trio.open_nursery() as nursery:
            await nursery.start(actors.serve, ours, CODEC, handler)
            requester = FakeRequester(theirs)
            await requester.request(1, Echo(text="hi"))
            assert (await requester.response()).body == {"text": expected, "type": "Echoed"}
            await theirs.send_eof()
        await theirs.aclose()


async def test_handler_exceptions_are_logged_with_their_traceback(stream_pair, caplog: pytest.LogCaptureFixture) -> None:
    ours, theirs = stream_pair

    async def handler(message: Echo) -> Echoed:
        if message.text == "boom":
            raise ZeroDivisionError("boom in the handler")
        raise channel.ErrorReply("NOT_FOUND", {"key": message.text})

    caplog.set_level(logging.DEBUG, logger="actors")
    requester = FakeRequester(theirs)
    async with trio.open_nursery() as nursery:
        await nursery.start(actors.serve, ours, CODEC, handler)
        await requester.request(7, Echo(text="boom"))
        assert (await requester.response()).error["error"] == "GENERIC_ERROR"
        await requester.request(8, Echo(text="k"))
        assert (await requester.response()).error["error"] == "NOT_FOUND"
        await theirs.send_eof()
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1
    [failure] = failures
    assert failure.name.startswith("actors.") and "frame 7" in failure.getMessage()
    assert failure.exc_info is not None and failure.exc_info[0] is ZeroDivisionError
    # An ErrorReply is an answer, not a failure: debug only.
    assert any(r.levelno == logging.DEBUG and "NOT_FOUND" in r.getMessage() for r in caplog.records)
    # Open and close at debug, under the same package logger.
    messages = [r.getMessage() for r in caplog.records if r.name == "actors._responder"]
    assert any(m.startswith("serving") for m in messages) and any(m.startswith("stopped serving") for m in messages)


async def test_peer_eof_drains_running_handlers_then_cancels_the_rest(
    stream_pair, autojump_clock: trio.abc.Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """Regression: serve never returned while a handler hung after the peer's EOF."""
    ours, theirs = stream_pair
    cancelled: list[str] = []

    async def handler(message: Echo) -> Echoed:
        try:
            await trio.sleep(1 if message.text == "quick" else 1000)
        except trio.Cancelled:
            cancelled.append(message.text)
            raise
        return Echoed(text=message.text)

    requester = FakeRequester(theirs)
    returned_at = None
    async with trio.open_nursery() as nursery:

        async def run_serve() -> None:
            nonlocal returned_at
            await actors.serve(ours, CODEC, handler, drain_timeout=5)
            returned_at = trio.current_time()

        nursery.start_soon(run_serve)
        await requester.request(1, Echo(text="quick"))
        await requester.request(2, Echo(text="hangs"))
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        await theirs.send_eof()
        reply = await requester.response()  # the quick one finishes within the drain
        assert (reply.id, reply.body) == (1, {"text": "quick", "type": "Echoed"})
    assert returned_at is not None and returned_at - start == pytest.approx(5)
    assert cancelled == ["hangs"]
    assert any("cancelled 1 handlers" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)


@attrs.define
class FailingStream(trio.abc.Stream):
    """A stream whose receive fails with an OSError that is not a ConnectionError."""

    inner: trio.abc.Stream
    fail: trio.Event = attrs.field(factory=trio.Event)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        await self.fail.wait()
        raise OSError(errno.EIO, "input/output error")

    async def send_eof(self) -> None:  # pragma: no cover - not used
        raise NotImplementedError

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_both_ends_treat_a_stream_error_the_same_way() -> None:
    """Regression: an OSError that is not a ConnectionError escaped serve, while the
    actor turned it into ChannelClosed. Now both end the stream with it as the cause."""
    with trio.fail_after(TEST_TIMEOUT):
        ours, theirs = socket_stream_pair()
        failing = FailingStream(ours)
        failing.fail.set()
        await actors.serve(failing, CODEC, echo_handler)  # returns: the stream ended
        await theirs.aclose()

        ours, theirs = socket_stream_pair()
        failing = FailingStream(ours)
        async with actors.open_comms(failing, CODEC) as comms:
            failing.fail.set()
            await comms.state.wait_value(actors.ChannelState.CLOSED)
            assert isinstance(comms.close_cause, OSError) and comms.close_cause.errno == errno.EIO
        await theirs.aclose()


async def test_expect_hello_false_logs_an_unexpected_hello_once(caplog: pytest.LogCaptureFixture) -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, peer):
            await peer.reply(0, Echoed(text="StartTriggerer"))
            await peer.reply(0, Echoed(text="again"))
            async with trio.open_nursery() as nursery:

                async def call() -> None:
                    assert await comms.asend(Echo(text="x")) == Echoed(text="x")

                nursery.start_soon(call)
                await peer.echo(await peer.receive())
            hints = [r for r in caplog.records if "expect_hello=True" in r.getMessage()]
            assert len(hints) == 1 and hints[0].levelno == logging.WARNING
            assert comms.statistics().replies_unknown == 1  # the second id 0 is just unknown
