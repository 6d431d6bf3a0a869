"""The priority lane, on both ends: a heartbeat jumps every queue.

Requester: over max_in_flight, with requests waiting for admission, a heartbeat is
written at once, outside the limit. Responder: with max_concurrency handlers busy and
requests queued, a heartbeat is handled at once; and serve keeps reading into its
queue rather than leaving the peer's bytes unread.
"""

from __future__ import annotations

import attrs
import trio
import trio.testing

import actors
from channel import Codec, RequestFrame, encode_frame
from tests.actors.helpers import TEST_TIMEOUT, FakePeer, socket_stream_pair


@attrs.frozen
class Beat:
    pass


@attrs.frozen
class Bulk:
    n: int


CODEC = Codec([Beat, Bulk])


async def test_a_heartbeat_is_written_ahead_of_admission_and_outside_max_in_flight() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        ours, theirs = socket_stream_pair()
        peer = FakePeer(theirs)
        async with actors.open_comms(ours, CODEC, max_in_flight=2, heartbeat=Beat) as comms:
            async with trio.open_nursery() as nursery:
                for n in range(6):
                    nursery.start_soon(comms.asend, Bulk(n=n))
                first = await peer.receive_n(2)  # max_in_flight: 2 written, 4 wait
                await trio.testing.wait_all_tasks_blocked()
                assert comms.statistics().queued == 4
                nursery.start_soon(comms.asend, Beat())
                beat = await peer.receive()
                assert beat.body == {"type": "Beat"}  # next on the wire, ahead of the 4
                await peer.reply(beat.id)
                for frame in first:
                    await peer.reply(frame.id)
                for _ in range(4):  # two at a time, as max_in_flight admits them
                    await peer.reply((await peer.receive()).id)
        await theirs.aclose()


async def test_serve_handles_a_heartbeat_at_once_while_every_handler_is_busy() -> None:
    release = trio.Event()
    handled: list[object] = []

    async def handler(message: object) -> None:
        handled.append(message)
        if isinstance(message, Bulk):
            await release.wait()

    ours, theirs = socket_stream_pair()
    frames = [encode_frame(RequestFrame(id=n, body=CODEC.encode(Bulk(n=n)))) for n in range(1, 101)]
    frames.append(encode_frame(RequestFrame(id=101, body=CODEC.encode(Beat()))))
    with trio.fail_after(TEST_TIMEOUT):
        async with trio.open_nursery() as nursery:
            await nursery.start(lambda task_status: actors.serve(
                ours, CODEC, handler, max_concurrency=4, priority=Beat, task_status=task_status
            ))
            await theirs.send_all(b"".join(frames))
            # 4 Bulk handlers hold every slot and 96 wait in the queue: all were read,
            # and the heartbeat behind them was handled at once.
            await trio.testing.wait_all_tasks_blocked()
            assert Beat() in handled
            assert sum(isinstance(m, Bulk) for m in handled) == 4
            release.set()
            await theirs.send_eof()
            nursery.cancel_scope.deadline = trio.current_time() + TEST_TIMEOUT
    await theirs.aclose()
    assert sum(isinstance(m, Bulk) for m in handled) == 100  # the queue drained after
