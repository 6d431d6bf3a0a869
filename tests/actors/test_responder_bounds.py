"""What a peer can make ``serve`` hold, and for how long (docs/serving.rst).

- the requests waiting for a handler are bounded in bytes (``max_queued_bytes``), not
  only in number: large legal requests sent while every handler is busy cost at most
  that plus one frame;
- the priority lane runs at most ``max_concurrency`` handlers; more heartbeats wait at
  the head of the line, and every one is still answered;
- ``handler_timeout`` cancels a handler that hangs, answers ``HANDLER_TIMEOUT`` and
  frees its place, so the next request is served.
"""

from __future__ import annotations

import tracemalloc

import attrs
import pytest
import trio
import trio.testing

import actors
from actors import RemoteError
from actors._options import ServeConfig
from actors._responder import _Responder
from channel import Codec, RequestFrame, encode_frame
from tests.actors.helpers import TEST_TIMEOUT, socket_stream_pair


@attrs.frozen
class Beat:
    pass


@attrs.frozen
class Blob:
    data: bytes


@attrs.frozen
class Hang:
    pass


CODEC = Codec([Beat, Blob, Hang])

MiB = 2**20


async def test_requests_waiting_for_a_handler_are_bounded_in_bytes() -> None:
    """12 x 4 MiB legal requests while the one handler is busy: the responder reads
    two of them (one queued under max_queued_bytes, one more) and holds no more."""
    release = trio.Event()
    handled = 0

    async def handler(message: object) -> None:
        nonlocal handled
        await release.wait()
        handled += 1

    ours, theirs = socket_stream_pair()
    frame = encode_frame(RequestFrame(id=1, body=CODEC.encode(Blob(data=b"x" * (4 * MiB)))))
    responder = _Responder(ours, CODEC, handler, ServeConfig(max_concurrency=1, max_queued_bytes=4 * MiB))
    tracemalloc.start()
    try:
        with trio.fail_after(TEST_TIMEOUT):
            async with trio.open_nursery() as nursery:
                await nursery.start(responder.serve)

                async def send_all() -> None:
                    for _ in range(12):
                        await theirs.send_all(frame)
                    await theirs.send_eof()

                nursery.start_soon(send_all)
                await trio.testing.wait_all_tasks_blocked()
                # One running, then one queued (4 MiB, at the bound) and one read past it.
                assert responder.running == 1
                assert responder.queued_bytes <= 4 * MiB + len(frame)
                assert responder.pump.bytes_handed <= 3 * len(frame)
                _, peak = tracemalloc.get_traced_memory()
                assert peak < 40 * MiB, f"{peak / MiB:.0f} MiB traced while 12 x 4 MiB were offered"
                release.set()
                while responder.pump.bytes_received < 12 * len(frame) or responder.running:
                    await trio.testing.wait_all_tasks_blocked()
                    await theirs.receive_some()
    finally:
        tracemalloc.stop()
    await theirs.aclose()
    assert handled == 12  # nothing lost: each was read once there was room


async def test_the_priority_lane_runs_at_most_max_concurrency_handlers() -> None:
    """10,000 heartbeats against a heartbeat handler that waits: 4 run at once, the
    rest wait unstarted (no task each), and all 10,000 are answered after."""
    release = trio.Event()
    running = most = answered = 0

    async def handler(message: object) -> None:
        nonlocal running, most, answered
        running += 1
        most = max(most, running)
        await release.wait()
        running -= 1
        answered += 1

    ours, theirs = socket_stream_pair()
    beats = b"".join(encode_frame(RequestFrame(id=n, body=CODEC.encode(Beat()))) for n in range(1, 10_001))
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: actors.serve(
                ours, CODEC, handler, max_concurrency=4, priority=Beat, task_status=task_status
            ))
            nursery.start_soon(theirs.send_all, beats)
            await trio.testing.wait_all_tasks_blocked()
            assert most == 4
            tasks = len(nursery.child_tasks)
            assert tasks < 10, tasks
            release.set()

            async def drain_replies() -> None:
                while answered < 10_000:
                    await theirs.receive_some()

            await drain_replies()
            await theirs.send_eof()
    await theirs.aclose()
    assert most == 4 and answered == 10_000


async def test_handler_timeout_answers_and_frees_the_place(autojump_clock: trio.abc.Clock) -> None:
    async def handler(message: object) -> object:
        if isinstance(message, Hang):
            await trio.sleep_forever()
        return Beat()

    ours, theirs = socket_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: actors.serve(ours, CODEC, handler, max_concurrency=1, handler_timeout=2.5))
        async with actors.open_comms(theirs, CODEC) as comms:
            started = trio.current_time()
            with pytest.raises(RemoteError) as caught:
                await comms.asend(Hang())
            assert caught.value.code == actors.HANDLER_TIMEOUT
            assert caught.value.detail == {"type": "Hang", "handler_timeout": 2.5}
            assert trio.current_time() - started == pytest.approx(2.5)
            assert await comms.asend(Beat()) == Beat()  # its one place is free again
        nursery.cancel_scope.cancel()


async def nothing(message: object) -> None:
    return None


@pytest.mark.parametrize(("option", "bad"), [
    ("handler_timeout", 0), ("handler_timeout", -1.0), ("handler_timeout", "1"), ("handler_timeout", float("nan")),
    ("max_queued_bytes", -1), ("max_queued_bytes", 1.5),
])
async def test_the_new_options_are_checked(option: str, bad: object) -> None:
    ours, theirs = socket_stream_pair()
    try:
        with pytest.raises(ValueError, match=option):
            await actors.serve(ours, CODEC, nothing, **{option: bad})  # type: ignore[arg-type]
    finally:
        await ours.aclose()
        await theirs.aclose()


async def test_a_peer_reading_a_trickle_counts_as_not_reading(autojump_clock: trio.abc.Clock) -> None:
    """docs/errors.rst: the socket stays full while the peer reads 100 bytes a second,
    which frees no room for the next write, so serve ends with PeerNotReading after
    stall_timeout, though the peer is reading."""

    async def handler(message: object) -> object:
        return Blob(data=b"y" * MiB)

    ours, theirs = socket_stream_pair()
    requests = b"".join(encode_frame(RequestFrame(id=n, body=CODEC.encode(Hang()))) for n in range(1, 9))
    read = 0
    async with trio.open_nursery() as nursery:

        async def trickle() -> None:
            nonlocal read
            await theirs.send_all(requests)
            while True:
                await trio.sleep(1)
                read += len(await theirs.receive_some(100))

        nursery.start_soon(trickle)
        started = trio.current_time()
        with pytest.raises(actors.PeerNotReading):
            await actors.serve(ours, CODEC, handler, stall_timeout=5)
        assert 5 <= trio.current_time() - started < 60
        assert read > 0  # it was reading, a trickle
        nursery.cancel_scope.cancel()
    await theirs.aclose()
