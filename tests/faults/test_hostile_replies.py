"""Replies a hostile peer sends to a requester: each fails its own call, and nothing,
not even a bug of ours in the reader, leaves a claimed call waiting forever."""

from __future__ import annotations

import pytest
import trio

import actors
from actors._actor import CommsActor
from channel import MessageDecodeError
from tests.actors.helpers import TEST_TIMEOUT, Echo, Echoed, comms_and_peer
from tests.strategies import framed, nested


@pytest.mark.parametrize("depth", [990, 1_000, 1_023, 2_000])
async def test_an_error_reply_nested_deep_fails_only_its_call(depth: int) -> None:
    # Once: formatting the detail raised RecursionError after the call's slot was
    # claimed, so the reader died and this call never ended.
    error = b"\x83\xa4type\xadErrorResponse\xa5error\xa1E\xa6detail" + nested(depth)
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, peer):
            async with trio.open_nursery() as nursery:
                outcome: list[BaseException] = []

                async def call() -> None:
                    with pytest.raises(MessageDecodeError, match="nested deeper than max_depth") as caught:
                        await comms.asend(Echo(text="deep"))
                    outcome.append(caught.value)

                nursery.start_soon(call)
                (frame,) = await peer.receive_n(1)
                await peer.send_raw(framed(b"\x93" + bytes([frame.id]) + b"\xc0" + error))
            assert outcome
            # The channel is still open and in sync.
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: comms.asend(Echo(text="next")))
                await peer.echo(await peer.receive())
            assert comms.state.value is actors.ChannelState.OPEN


async def test_whatever_kills_the_reader_every_call_ends_with_channel_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(self: CommsActor, event: object, request_class: object) -> object:
        raise RuntimeError("a bug in reply decoding")

    monkeypatch.setattr(CommsActor, "_reply_outcome", broken)
    outcomes: dict[str, BaseException] = {}
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, peer):

            async def call(text: str) -> None:
                try:
                    await comms.asend(Echo(text=text))
                except actors.ChannelClosed as exc:
                    outcomes[text] = exc

            async with trio.open_nursery() as nursery:
                for text in ("claimed", "pending"):
                    nursery.start_soon(call, text)
                frames = await peer.receive_n(2)
                claimed = next(f for f in frames if f.body is not None and f.body["text"] == "claimed")
                await peer.reply(claimed.id, Echoed(text="claimed"))
    assert set(outcomes) == {"claimed", "pending"}
    for exc in outcomes.values():
        assert isinstance(exc.__cause__, RuntimeError) and "a bug in reply decoding" in str(exc.__cause__)


@pytest.mark.parametrize("body", [b"\x05", b"\xa1x", b"\x91\x01"])
async def test_a_reply_body_that_is_not_a_map_fails_only_its_call(body: bytes) -> None:
    # Decided in issue 18: it used to close the whole channel with RemoteProtocolError,
    # though a map that is not a known message failed only its call.
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, peer):
            async with trio.open_nursery() as nursery:

                async def call() -> None:
                    with pytest.raises(MessageDecodeError, match="body must be a map or nil"):
                        await comms.asend(Echo(text="x"))

                nursery.start_soon(call)
                (frame,) = await peer.receive_n(1)
                await peer.send_raw(framed(b"\x93" + bytes([frame.id]) + body + b"\xc0"))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: comms.asend(Echo(text="next")))
                await peer.echo(await peer.receive())
            assert comms.state.value is actors.ChannelState.OPEN
            assert comms.statistics().replies_undecodable == 1
