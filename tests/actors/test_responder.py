"""The responder (docs/serving.rst): concurrent handlers, replies in completion order,
errors answered per request, protocol errors and EOF."""

from __future__ import annotations

import struct
from typing import Any

import pytest
import trio
import trio.testing

import actors
import channel
from channel import (
    NEED_DATA,
    FrameDecoder,
    RemoteProtocolError,
    RequestFrame,
    ResponseFrame,
    encode_frame,
)
from tests.strategies import framed

from .helpers import CODEC, Echo, Echoed, Hello, echo_handler


class FakeRequester:
    """Writes raw request frames and reads raw responses, for tests of serve()."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.decoder = FrameDecoder(ResponseFrame)

    async def request(self, frame_id: int, message: Any) -> None:
        body = message if isinstance(message, dict) or message is None else CODEC.encode(message)
        await self.stream.send_all(encode_frame(RequestFrame(id=frame_id, body=body)))

    async def response(self) -> ResponseFrame:
        while (frame := self.decoder.next_frame()) is NEED_DATA:
            data = await self.stream.receive_some()
            self.decoder.receive_data(data)
        assert isinstance(frame, ResponseFrame), frame
        return frame


async def test_handlers_run_concurrently_and_reply_in_completion_order(stream_pair) -> None:
    ours, theirs = stream_pair
    release_slow = trio.Event()
    started: list[str] = []

    async def handler(message: Echo) -> Echoed:
        started.append(message.text)
        if message.text == "slow":
            await release_slow.wait()
        return Echoed(text=message.text)

    requester = FakeRequester(theirs)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(actors.serve, ours, CODEC, handler)
        await requester.request(1, Echo(text="slow"))
        await requester.request(2, Echo(text="fast"))
        first = await requester.response()
        assert (first.id, first.body) == (2, {"text": "fast", "type": "Echoed"})
        assert started == ["slow", "fast"]  # both handlers were running at once
        release_slow.set()
        second = await requester.response()
        assert (second.id, second.body) == (1, {"text": "slow", "type": "Echoed"})
        await theirs.send_eof()


async def test_max_concurrency_bounds_running_handlers(stream_pair) -> None:
    ours, theirs = stream_pair
    release = trio.Event()
    running = 0
    peak = 0

    async def handler(message: Echo) -> Echoed:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await release.wait()
        running -= 1
        return Echoed(text=message.text)

    requester = FakeRequester(theirs)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: actors.serve(ours, CODEC, handler, max_concurrency=3))
        for i in range(10):
            await requester.request(i, Echo(text=str(i)))
        await trio.testing.wait_all_tasks_blocked()
        assert running == 3
        release.set()
        replies = {(await requester.response()).id for _ in range(10)}
        assert replies == set(range(10))
        assert peak == 3
        await theirs.send_eof()


async def test_handler_errors_become_error_replies_for_that_request_only(stream_pair) -> None:
    ours, theirs = stream_pair

    async def handler(message: Echo) -> Echoed:
        if message.text == "coded":
            raise channel.ErrorReply("VARIABLE_NOT_FOUND", {"key": "k"})
        if message.text == "bug":
            raise ZeroDivisionError("oops")
        if message.text == "relay":
            raise actors.RemoteError("XCOM_NOT_FOUND", None)
        return Echoed(text=message.text)

    requester = FakeRequester(theirs)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(actors.serve, ours, CODEC, handler)
        for frame_id, text in enumerate(["coded", "bug", "relay", "fine"]):
            await requester.request(frame_id, Echo(text=text))
        replies = {}
        for _ in range(4):
            frame = await requester.response()
            replies[frame.id] = frame
        await theirs.send_eof()
    assert replies[0].error == {"type": "ErrorResponse", "error": "VARIABLE_NOT_FOUND", "detail": {"key": "k"}}
    assert replies[1].error == {
        "type": "ErrorResponse",
        "error": "GENERIC_ERROR",
        "detail": {"error_type": "ZeroDivisionError", "message": "oops"},
    }
    assert replies[2].error is not None and replies[2].error["error"] == "XCOM_NOT_FOUND"
    assert replies[3].body == {"text": "fine", "type": "Echoed"} and replies[3].error is None


async def test_undecodable_request_gets_an_error_reply_naming_the_failure(stream_pair) -> None:
    ours, theirs = stream_pair
    requester = FakeRequester(theirs)

    async def handler(message: Echo) -> Echoed:
        return Echoed(text=message.text)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(actors.serve, ours, CODEC, handler)
        await requester.request(7, {"type": "Echo", "text": 5})
        await requester.request(8, {"type": "NoSuchThing"})
        await requester.request(9, Echo(text="still fine"))
        replies = {}
        for _ in range(3):
            frame = await requester.response()
            replies[frame.id] = frame
        await theirs.send_eof()
    assert replies[7].error is not None
    assert replies[7].error["detail"] == {
        "error_type": "MessageDecodeError",
        "message_type": "Echo",
        "path": "$.text",
        "reason": "invalid value for type, expected str",
    }
    assert replies[8].error is not None and "unknown message type" in replies[8].error["detail"]["reason"]
    assert replies[9].body == {"text": "still fine", "type": "Echoed"}


async def test_a_request_body_that_is_not_a_map_is_answered_alone(stream_pair) -> None:
    # Decided in issue 18: it used to end serve with RemoteProtocolError.
    ours, theirs = stream_pair
    requester = FakeRequester(theirs)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(actors.serve, ours, CODEC, echo_handler)
        await theirs.send_all(framed(b"\x92\x05\x07"))  # [5, 7]: the body is an int
        await requester.request(6, Echo(text="still served"))
        replies = {}
        for _ in range(2):
            frame = await requester.response()
            replies[frame.id] = frame
        await theirs.send_eof()
    assert replies[5].error is not None and replies[5].error["error"] == "GENERIC_ERROR"
    assert "body must be a map or nil, not int" in replies[5].error["detail"]["reason"]
    assert replies[6].body == {"text": "still served", "type": "Echoed"}


async def test_unencodable_handler_result_is_an_error_reply(stream_pair) -> None:
    ours, theirs = stream_pair
    requester = FakeRequester(theirs)

    async def handler(message: Echo) -> object:
        return object()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(actors.serve, ours, CODEC, handler)
        await requester.request(1, Echo(text="x"))
        frame = await requester.response()
        await theirs.send_eof()
    assert frame.error is not None and frame.error["detail"]["error_type"] == "MessageEncodeError"


async def test_hello_goes_first_with_id_0_and_request_id_0_is_served(stream_pair) -> None:
    ours, theirs = stream_pair
    requester = FakeRequester(theirs)

    async def handler(message: Echo) -> Echoed:
        return Echoed(text=message.text)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: actors.serve(ours, CODEC, handler, hello=Hello(greeting="StartTriggerer")))
        hello = await requester.response()
        assert (hello.id, hello.body) == (0, {"greeting": "StartTriggerer", "type": "Hello"})
        await requester.request(0, Echo(text="zero"))
        reply = await requester.response()
        assert (reply.id, reply.body) == (0, {"text": "zero", "type": "Echoed"})
        await theirs.send_eof()


async def test_none_reply_is_an_empty_response(stream_pair) -> None:
    ours, theirs = stream_pair
    requester = FakeRequester(theirs)

    async def handler(message: Echo) -> None:
        return None

    async with trio.open_nursery() as nursery:
        nursery.start_soon(actors.serve, ours, CODEC, handler)
        await requester.request(4, Echo(text="x"))
        assert await requester.response() == ResponseFrame(id=4)
        await theirs.send_eof()


async def test_eof_lets_running_handlers_finish_and_reply(stream_pair) -> None:
    ours, theirs = stream_pair
    requester = FakeRequester(theirs)
    release = trio.Event()

    async def handler(message: Echo) -> Echoed:
        await release.wait()
        return Echoed(text=message.text)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(actors.serve, ours, CODEC, handler)
        await requester.request(1, Echo(text="in progress"))
        await theirs.send_eof()
        await trio.testing.wait_all_tasks_blocked()
        release.set()
        assert (await requester.response()).body == {"text": "in progress", "type": "Echoed"}
    # serve returned (the nursery closed) and closed its stream.
    assert await theirs.receive_some() == b""


@pytest.mark.parametrize(
    ("garbage", "error_type"),
    [
        (struct.pack(">I", 0), RemoteProtocolError),
        (struct.pack(">I", 2**31) + b"\xc1", channel.FrameTooLarge),
        (struct.pack(">I", 2) + b"\xc1\xc1", RemoteProtocolError),
        (struct.pack(">I", 10) + b"\x92", channel.TruncatedFrame),
    ],
)
async def test_protocol_errors_end_serve_with_a_bare_exception(stream_pair, garbage: bytes, error_type: type) -> None:
    ours, theirs = stream_pair
    await theirs.send_all(garbage)
    await theirs.send_eof()
    with trio.fail_after(5):
        with pytest.raises(error_type):
            await actors.serve(ours, CODEC, echo_handler)


async def test_protocol_error_cancels_running_handlers(stream_pair) -> None:
    ours, theirs = stream_pair
    requester = FakeRequester(theirs)
    cancelled = trio.Event()

    async def handler(message: Echo) -> Echoed:
        try:
            await trio.sleep_forever()
        finally:
            cancelled.set()

    async def garbage_after_request() -> None:
        await requester.request(1, Echo(text="stuck"))
        await trio.testing.wait_all_tasks_blocked()
        await theirs.send_all(struct.pack(">I", 0))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(garbage_after_request)
        with pytest.raises(RemoteProtocolError, match="zero-length"):
            await actors.serve(ours, CODEC, handler)
    assert cancelled.is_set()


async def test_serve_against_the_real_requester() -> None:
    ours, theirs = trio.socket.socketpair()
    async with trio.open_nursery() as nursery:

        async def handler(message: Echo) -> Echoed:
            return Echoed(text=message.text.upper())

        nursery.start_soon(actors.serve, trio.SocketStream(theirs), CODEC, handler)
        async with actors.open_comms(trio.SocketStream(ours), CODEC) as comms:
            assert await comms.asend(Echo(text="abc")) == Echoed(text="ABC")
