"""Faults a requester can throw at a responder: garbage, oversized and zero-length
frames, unknown message types, a disconnect mid-frame. The responder answers what
it can, ends with a clear typed error for what it cannot, never crashes its host,
never spins, and a new channel works afterwards."""

from __future__ import annotations

import struct
import time
import tracemalloc

import attrs
import pytest
import trio

import actors
import channel
from channel import Codec, RemoteProtocolError
from tests.actors.helpers import CODEC, TEST_TIMEOUT, Echo, Echoed, assert_new_channel_works, echo_handler

FAULT_BOUND = 1.0


async def serve_until_fault(ours: trio.SocketStream) -> BaseException | None:
    """The host's way of running a responder: a fault is reported, not propagated."""
    try:
        await actors.serve(ours, CODEC, echo_handler)
    except channel.ProtocolError as exc:
        return exc
    return None


FAULTS = [
    ("garbage", b"\x00\x00\x00\x04\xc1\xc1\xc1\xc1", RemoteProtocolError),
    ("oversized", struct.pack(">I", 2**32 - 1) + b"\xc1", channel.FrameTooLarge),
    ("zero_length", struct.pack(">I", 0), RemoteProtocolError),
    ("mid_frame_disconnect", struct.pack(">I", 50) + b"\x92\x01", channel.TruncatedFrame),
]


@pytest.mark.parametrize(("name", "data", "error_type"), FAULTS, ids=[f[0] for f in FAULTS])
async def test_responder_ends_with_a_typed_error_and_the_host_lives_on(
    stream_pair, name: str, data: bytes, error_type: type
) -> None:
    ours, theirs = stream_pair
    host_alive = trio.Event()
    results: list[BaseException | None] = []
    cpu_before = time.process_time()
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as host:

            responder_done = trio.Event()

            async def responder() -> None:
                results.append(await serve_until_fault(ours))
                responder_done.set()

            async def other_host_work() -> None:
                # Cancelled, and never sets host_alive, if the fault escaped into the host.
                await responder_done.wait()
                host_alive.set()

            host.start_soon(responder)
            host.start_soon(other_host_work)
            await theirs.send_all(data)
            await theirs.send_eof()
            start = trio.current_time()
        assert trio.current_time() - start < FAULT_BOUND
    assert host_alive.is_set()
    assert isinstance(results[0], error_type), results
    # Raised at once, not after a busy loop: well under a second of CPU for one frame.
    assert time.process_time() - cpu_before < FAULT_BOUND
    assert await theirs.receive_some() == b""  # the responder closed its stream
    await assert_new_channel_works()


async def test_oversized_request_is_never_allocated(stream_pair) -> None:
    ours, theirs = stream_pair
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        await theirs.send_all(struct.pack(">I", 2**31) + b"x" * 1000)
        with pytest.raises(channel.FrameTooLarge):
            await actors.serve(ours, CODEC, echo_handler)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20, f"peak traced allocation {peak} bytes"


@attrs.frozen
class Unknown:
    x: int


# The requester's codec knows Unknown; the responder's (CODEC) does not.
REQUESTER_CODEC = Codec([Unknown, *CODEC.message_types.values()])


async def test_unknown_message_type_gets_an_error_reply_and_serving_goes_on() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ours, theirs = trio.socket.socketpair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actors.serve, trio.SocketStream(theirs), CODEC, echo_handler)
            async with actors.open_comms(trio.SocketStream(ours), REQUESTER_CODEC) as comms:
                with pytest.raises(actors.RemoteError) as info:
                    await comms.asend(Unknown(x=1))
                assert info.value.code == "GENERIC_ERROR"
                assert info.value.detail is not None and info.value.detail["message_type"] == "Unknown"
                assert await comms.asend(Echo(text="still served")) == Echoed(text="still served")
    await assert_new_channel_works()
