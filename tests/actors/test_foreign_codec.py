"""The codec contract (``channel.MessageCodec``) with messages that are not attrs
classes: plain objects holding a map of fields, as pydantic models or msgspec structs
look to the channel. Over real socketpairs, both ends on the foreign codec: every
caller kind gets its own reply; the reply type is the codec's to say (asked once per
class) and a wrong one fails that call only; a request the responder's codec refuses
is answered with an error and the channel goes on; the priority lane finds the
heartbeat by the codec's own tag, which is not its class name."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import attrs
import msgpack
import pytest
import trio
import trio.testing

import actors
import channel
from channel import MessageDecodeError, MessageEncodeError
from tests.actors.helpers import TEST_TIMEOUT, socket_stream_pair, stdlib_socketpair


class Message:
    """A message as a plain map of fields."""

    def __init__(self, **fields: Any) -> None:
        self.fields = fields

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.fields == self.fields

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.fields})"


class Ask(Message):
    pass


class Answer(Message):
    pass


class Beat(Message):
    pass


class PlainCodec:
    """A codec of plain messages, tagged ``plain.<name>`` on the wire: not what a
    class-name rule would guess, so a channel that guessed would not find its tags."""

    classes: dict[str, type[Message]] = {f"plain.{cls.__name__}": cls for cls in (Ask, Answer, Beat)}
    replies: dict[type, type] = {Ask: Answer, Beat: type(None)}

    def __init__(self) -> None:
        self.asked: list[type] = []

    def message_type(self, message_class: type) -> str:
        return f"plain.{message_class.__name__}"

    def pack(self, message: Any) -> bytes:
        if message is None:
            return b"\xc0"
        if type(message) not in self.replies and type(message) is not Answer:
            raise MessageEncodeError(f"{type(message).__name__} is not a plain message")
        packed: bytes = msgpack.packb({"type": self.message_type(type(message)), **message.fields})
        return packed

    def decode(self, body: object) -> Any:
        if not isinstance(body, dict):
            raise MessageDecodeError(None, "$", "not a map")
        tag = body.get("type")
        cls = self.classes.get(tag) if isinstance(tag, str) else None
        if cls is None:
            raise MessageDecodeError(None, "$.type", f"unknown type {tag!r}")
        if cls is Ask and not isinstance(body.get("question"), str):
            raise MessageDecodeError(tag, "$.question", "missing, or not a str")
        return cls(**{key: value for key, value in body.items() if key != "type"})

    def reply_type(self, request_class: type) -> type | None:
        self.asked.append(request_class)
        return self.replies.get(request_class)


@attrs.frozen
class AttrsAsk:
    question: str


def test_the_plain_codec_is_a_message_codec_and_the_attrs_codec_too() -> None:
    assert isinstance(PlainCodec(), channel.MessageCodec)
    attrs_codec: channel.MessageCodec = channel.Codec([AttrsAsk])  # mypy: it fits the protocol
    assert isinstance(attrs_codec, channel.MessageCodec)
    assert attrs_codec.message_type(AttrsAsk) == "AttrsAsk" and attrs_codec.reply_type(AttrsAsk) is None


async def answer(message: Any) -> Any:
    if isinstance(message, Ask):
        if message.fields["question"] == "wrong":
            return Beat()  # not the Answer an Ask declares
        return Answer(text=f"re {message.fields['question']}")
    return None


async def test_every_caller_gets_its_own_reply_and_reply_types_are_asked_once() -> None:
    codec = PlainCodec()
    with trio.fail_after(TEST_TIMEOUT):
        ours, theirs = socket_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actors.serve, theirs, PlainCodec(), answer)
            async with actors.open_comms(ours, codec, timeout=10) as comms:
                replies: dict[str, Any] = {}

                async def task(n: int) -> None:
                    replies[f"task {n}"] = await comms.asend(Ask(question=f"task {n}"))

                def thread(n: int) -> None:
                    replies[f"thread {n}"] = comms.send(Ask(question=f"thread {n}"))

                async with trio.open_nursery() as callers:
                    for n in range(20):
                        callers.start_soon(task, n)
                        callers.start_soon(trio.to_thread.run_sync, thread, n)
                assert replies == {name: Answer(text=f"re {name}") for name in replies}
                assert len(replies) == 40
                assert codec.asked == [Ask]  # once, whatever the number of replies
                assert await comms.asend(Beat()) is None  # a reply of no body, as Beat declares
            nursery.cancel_scope.cancel()


@contextlib.asynccontextmanager
async def plain_channel() -> AsyncIterator[actors.Comms]:
    """Comms with plain-object messages, answered by ``serve`` over a real socketpair."""
    with trio.fail_after(TEST_TIMEOUT):
        ours, theirs = socket_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actors.serve, theirs, PlainCodec(), answer)
            async with actors.open_comms(ours, PlainCodec(), timeout=10) as comms:
                yield comms
            nursery.cancel_scope.cancel()


async def test_a_reply_of_the_wrong_type_fails_that_call_only() -> None:
    async with plain_channel() as comms:
        with pytest.raises(MessageDecodeError, match=r"expected Answer in reply to plain\.Ask, got plain\.Beat"):
            await comms.asend(Ask(question="wrong"))
        assert await comms.asend(Ask(question="next")) == Answer(text="re next")
        assert comms.statistics().replies_undecodable == 1


async def test_a_request_the_responder_s_codec_refuses_is_answered_and_the_channel_goes_on() -> None:
    async with plain_channel() as comms:
        with pytest.raises(actors.RemoteError) as refused:
            await comms.asend(Ask(question=3))
        assert refused.value.code == channel.GENERIC_ERROR
        assert "$.question" in str(refused.value.detail)
        with pytest.raises(MessageEncodeError, match="not a plain message"):
            await comms.asend(object())
        assert await comms.asend(Ask(question="still")) == Answer(text="re still")


async def test_the_priority_lane_finds_the_heartbeat_by_the_codec_s_tag() -> None:
    release = trio.Event()
    beats = 0

    async def handler(message: Any) -> Any:
        nonlocal beats
        if isinstance(message, Beat):
            beats += 1
            return None
        await release.wait()  # the one handler place stays taken
        return Answer(text="late")

    with trio.fail_after(TEST_TIMEOUT):
        ours, theirs = socket_stream_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: actors.serve(theirs, PlainCodec(), handler, max_concurrency=1, priority=Beat)
            )
            async with actors.open_comms(ours, PlainCodec(), timeout=10) as comms:
                async with trio.open_nursery() as callers:
                    for n in range(3):
                        callers.start_soon(comms.asend, Ask(question=str(n)))
                    await trio.testing.wait_all_tasks_blocked()
                    assert await comms.asend(Beat()) is None  # ahead of the two queued asks
                    assert beats == 1
                    release.set()
            nursery.cancel_scope.cancel()


def test_an_object_without_the_contract_s_methods_is_refused_by_name() -> None:
    class NoTags:
        def pack(self, message: object) -> bytes:
            return b"\xc0"

        def decode(self, body: object) -> object:
            return body

        def reply_type(self, request_class: type) -> None:
            return None

    ours, theirs = stdlib_socketpair()
    with ours, theirs, pytest.raises(TypeError, match=r"not NoTags \(no message_type\)"):
        actors.comms_in_thread(ours, NoTags())  # type: ignore[arg-type]
