"""A frame over the limit fails only its own call (both directions); request context
travels with the request (trace carrier, frame id, incarnation); replies are typed.

Real socketpairs between open_comms and serve, through the public API only.
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import attrs
import pytest
import trio

import actors
import channel

from .helpers import TEST_TIMEOUT, Echo, Echoed, Hello, socket_stream_pair


@attrs.frozen
class Blob:
    data: bytes


@attrs.frozen
class GetVariable(channel.Request["VariableResult"]):
    key: str


@attrs.frozen
class VariableResult:
    key: str
    value: str


@attrs.frozen
class Traced(channel.Request["TraceSeen"]):
    pass


@attrs.frozen
class TraceSeen:
    frame_id: int
    carrier: dict[str, str] | None
    incarnation: int | None


CODEC = channel.Codec([Echo, Echoed, Hello, Blob, GetVariable, VariableResult, Traced, TraceSeen])


async def handler(message: Any) -> Any:
    if isinstance(message, Blob):
        return Blob(data=message.data * 2)  # a reply twice the request's size
    if isinstance(message, GetVariable):
        if message.key == "wrong":
            return Echoed(text="not a VariableResult")
        return VariableResult(key=message.key, value="v")
    if isinstance(message, Traced):
        info = actors.current_request()
        return TraceSeen(frame_id=info.frame_id, carrier=info.carrier, incarnation=info.incarnation)
    return Echoed(text=message.text)


@asynccontextmanager
async def channel_pair(
    *, ours_max: int = 2**20, theirs_max: int = 2**20, incarnation: int | None = None
) -> AsyncIterator[actors.Comms]:
    ours, theirs = socket_stream_pair()
    async with trio.open_nursery() as nursery:
        await nursery.start(
            lambda task_status: actors.serve(
                theirs, CODEC, handler, max_frame_size=theirs_max, incarnation=incarnation, task_status=task_status
            )
        )
        async with actors.open_comms(ours, CODEC, max_frame_size=ours_max, timeout=TEST_TIMEOUT) as comms:
            yield comms


async def test_a_request_over_the_responders_limit_fails_only_that_call() -> None:
    """Regression: it used to kill the responder; the requester saw ChannelClosed on every call."""
    async with channel_pair(theirs_max=10_000) as comms:
        async with trio.open_nursery() as nursery:
            small = []

            async def small_call(i: int) -> None:
                small.append(await comms.asend(Echo(text=f"s{i}")))

            for i in range(5):
                nursery.start_soon(small_call, i)
            with pytest.raises(actors.RemoteError) as info:
                await comms.asend(Blob(data=b"x" * 50_000))
        assert info.value.code == channel.FRAME_TOO_LARGE == "FRAME_TOO_LARGE"
        assert info.value.detail is not None
        assert info.value.detail["frame"] == "request" and info.value.detail["max_frame_size"] == 10_000
        assert info.value.detail["size"] > 50_000
        assert sorted(r.text for r in small) == [f"s{i}" for i in range(5)]
        assert await comms.asend(Blob(data=b"y" * 4_000)) == Blob(data=b"y" * 8_000)
        assert comms.state.value is actors.ChannelState.OPEN


async def test_a_reply_over_our_limit_fails_only_that_caller() -> None:
    async with channel_pair(ours_max=10_000, theirs_max=2**20) as comms:
        results: dict[str, object] = {}

        def from_thread() -> None:
            try:
                comms.send(Blob(data=b"t" * 9_000))
            except actors.ReplyTooLarge as exc:
                results["thread"] = exc

        with pytest.raises(actors.ReplyTooLarge) as info:
            await comms.asend(Blob(data=b"z" * 9_000), timeout=5)  # fits going out, not coming back
        assert info.value.code == "FRAME_TOO_LARGE" and isinstance(info.value, actors.RemoteError)
        assert info.value.detail == {"frame": "response", "size": info.value.detail["size"], "max_frame_size": 10_000}
        await trio.to_thread.run_sync(from_thread)
        assert isinstance(results["thread"], actors.ReplyTooLarge)
        assert await comms.asend(Echo(text="after")) == Echoed(text="after")
        stats = comms.statistics()
        assert (stats.replies_too_large, stats.replies_unknown) == (0 + 2, 0)


async def test_the_carrier_travels_with_the_request_and_the_handler_reads_it() -> None:
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "k=v"}
    async with channel_pair(incarnation=3) as comms:
        seen = await comms.asend(Traced(), carrier=carrier)
        assert seen == TraceSeen(frame_id=1, carrier=carrier, incarnation=3)
        seen = await trio.to_thread.run_sync(lambda: comms.send(Traced(), carrier=carrier))
        assert seen == TraceSeen(frame_id=2, carrier=carrier, incarnation=3)
        assert (await comms.asend(Traced())).carrier is None  # no OpenTelemetry span: none


async def test_an_active_opentelemetry_span_fills_the_carrier() -> None:
    otel_trace = pytest.importorskip("opentelemetry.trace")
    context = otel_trace.SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=otel_trace.TraceFlags(0x01),
    )
    async with channel_pair() as comms:
        with otel_trace.use_span(otel_trace.NonRecordingSpan(context)):
            seen = await comms.asend(Traced())
            explicit = await comms.asend(Traced(), carrier={"traceparent": "mine"})
        assert seen.carrier == {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
        assert explicit.carrier == {"traceparent": "mine"}  # the caller's own wins


def test_current_request_outside_a_handler_says_so() -> None:
    with pytest.raises(RuntimeError, match="only available inside a request handler"):
        actors.current_request()


async def test_a_reply_of_the_wrong_type_fails_only_that_caller() -> None:
    async with channel_pair() as comms:
        reply = await comms.asend(GetVariable(key="k"))
        assert reply == VariableResult(key="k", value="v")
        with pytest.raises(channel.MessageDecodeError, match="expected VariableResult in reply to GetVariable, got Echoed"):
            await comms.asend(GetVariable(key="wrong"))
        with pytest.raises(channel.MessageDecodeError, match="expected VariableResult"):
            await trio.to_thread.run_sync(lambda: comms.send(GetVariable(key="wrong")))
        assert await comms.asend(GetVariable(key="k2")) == VariableResult(key="k2", value="v")
        assert comms.statistics().replies_undecodable == 2


async def test_encode_errors_name_the_class_and_the_field_path() -> None:
    async with channel_pair() as comms:
        with pytest.raises(channel.MessageEncodeError, match=r"cannot encode Echo at \$\.text: "):
            await comms.asend(Echo(text=threading.Lock()))  # type: ignore[arg-type]
        assert comms.statistics().requests_sent == 0
