"""The peer process is killed with SIGKILL while 500 calls are pending from trio
tasks, threads and an asyncio loop: all 500 fail with ChannelClosed within 1 s."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from pathlib import Path

import trio

import actors
from tests.actors.helpers import CODEC, TEST_TIMEOUT, Echo, assert_new_channel_works

ROOT = Path(__file__).resolve().parents[2]
TRIO_CALLS, THREAD_CALLS, ASYNCIO_CALLS = 300, 100, 100
TOTAL = TRIO_CALLS + THREAD_CALLS + ASYNCIO_CALLS


async def test_sigkill_with_500_calls_pending_fails_them_all_within_a_second() -> None:
    ours, theirs = socket.socketpair()
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests.faults.stuck_peer", str(TOTAL)], stdin=theirs, stdout=subprocess.PIPE, cwd=ROOT
    )
    theirs.close()
    outcomes: list[object] = []
    all_done = trio.Event()
    token = trio.lowlevel.current_trio_token()

    def record(outcome: object) -> None:  # on the trio thread
        outcomes.append(outcome)
        if len(outcomes) == TOTAL:
            all_done.set()

    try:
        with trio.fail_after(TEST_TIMEOUT):
            stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
            async with actors.open_comms(stream, CODEC) as comms, trio.open_nursery() as nursery:

                async def trio_call(i: int) -> None:
                    try:
                        record(await comms.asend(Echo(text=f"t{i}")))
                    except Exception as exc:
                        record(exc)

                def thread_call(i: int) -> None:
                    try:
                        result: object = comms.send(Echo(text=f"s{i}"))
                    except Exception as exc:
                        result = exc
                    token.run_sync_soon(record, result)

                def asyncio_calls() -> None:
                    async def main() -> list[object]:
                        coros = (comms.asend(Echo(text=f"a{i}")) for i in range(ASYNCIO_CALLS))
                        return await asyncio.gather(*coros, return_exceptions=True)

                    for result in asyncio.run(main()):
                        token.run_sync_soon(record, result)

                for i in range(TRIO_CALLS):
                    nursery.start_soon(trio_call, i)
                threads = [threading.Thread(target=thread_call, args=(i,)) for i in range(THREAD_CALLS)]
                threads.append(threading.Thread(target=asyncio_calls))
                for thread in threads:
                    thread.start()
                assert process.stdout is not None
                line = b""
                while not line.endswith(b"\n"):  # a pipe may deliver the line in pieces
                    chunk = await process.stdout.receive_some()
                    assert chunk, "the peer process exited early"
                    line += chunk
                assert line == b"ready\n"  # all 500 are pending
                assert outcomes == []

                process.kill()
                killed_at = trio.current_time()
                with trio.fail_after(1.0):
                    await all_done.wait()
                elapsed = trio.current_time() - killed_at
                await trio.to_thread.run_sync(lambda: [t.join() for t in threads])
        assert len(outcomes) == TOTAL
        assert all(isinstance(o, actors.ChannelClosed) for o in outcomes), {type(o) for o in outcomes}
        assert elapsed < 1.0
        assert comms.statistics().requests_unanswered == TOTAL
    finally:
        process.kill()
        await process.wait()
        if process.stdout is not None:
            await process.stdout.aclose()
    await assert_new_channel_works()
