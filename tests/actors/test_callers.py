"""Every kind of caller (docs/callers.rst): asyncio coroutines on any thread,
asgiref's async_to_sync, plain and trio worker threads, greenback on the loop thread,
and the clear error where a blocking call would deadlock."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading

import greenback
import pytest
import trio
from asgiref.sync import async_to_sync, sync_to_async

import actors

from .helpers import SHORT_TIMEOUT, TEST_TIMEOUT, Echo, Echoed, comms_and_peer, comms_and_responder


async def test_asend_from_an_asyncio_loop_in_another_thread() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_responder() as comms:

            async def many() -> list[object]:
                return await asyncio.gather(*(comms.asend(Echo(text=f"a{i}")) for i in range(50)))

            replies = await trio.to_thread.run_sync(asyncio.run, many())
            assert replies == [Echoed(text=f"a{i}") for i in range(50)]


async def test_asend_never_blocks_the_asyncio_loop_it_is_awaited_on() -> None:
    """The peer answers only after another coroutine on the same loop has run."""
    with trio.fail_after(SHORT_TIMEOUT):
        async with comms_and_peer() as (comms, peer):
            loop_ran_other_work = trio.Event()
            token = trio.lowlevel.current_trio_token()

            async def asyncio_main() -> object:
                async def other_work() -> None:
                    token.run_sync_soon(loop_ran_other_work.set)

                call = asyncio.ensure_future(comms.asend(Echo(text="x")))
                # One loop iteration, not a wait: the task's first step runs (asend
                # parks on its future) before other_work, in asyncio's FIFO order.
                await asyncio.sleep(0)
                await other_work()
                return await call

            async with trio.open_nursery() as nursery:
                result: list[object] = []
                nursery.start_soon(lambda: _run_to_list(result, asyncio_main))
                frame = await peer.receive()
                await loop_ran_other_work.wait()
                await peer.echo(frame)
            assert result == [Echoed(text="x")]


async def _run_to_list(result: list, main) -> None:  # type: ignore[no-untyped-def]
    result.append(await trio.to_thread.run_sync(asyncio.run, main(), abandon_on_cancel=True))


async def test_asyncio_timeout_and_cancel_fail_only_that_coroutine() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, peer):

            async def asyncio_main() -> None:
                with pytest.raises(actors.RequestTimeout):
                    await comms.asend(Echo(text="timeout"), timeout=0.05)
                task = asyncio.ensure_future(comms.asend(Echo(text="cancel")))
                await asyncio.sleep(0)  # one iteration: the call is parked when cancelled
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task

            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.to_thread.run_sync, asyncio.run, asyncio_main())
            # Whatever reached the wire is answered late and dropped; the stream is in sync.
            for frame in list(peer.received):
                await peer.echo(frame)
            async with trio.open_nursery() as nursery:

                async def ok() -> None:
                    assert await comms.asend(Echo(text="ok")) == Echoed(text="ok")

                nursery.start_soon(ok)
                frame = await peer.receive()
                while frame.body["text"] != "ok":  # the cancelled one may have been written
                    frame = await peer.receive()
                await peer.echo(frame)
            stats = comms.statistics()
            assert (stats.calls_timed_out, stats.calls_cancelled) == (1, 1)


async def test_asgiref_async_to_sync_in_a_worker_thread() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_responder() as comms:

            def sync_code(i: int) -> object:
                return async_to_sync(comms.asend)(Echo(text=f"g{i}"))

            async with trio.open_nursery() as nursery:
                results: dict[int, object] = {}

                async def call(i: int) -> None:
                    results[i] = await trio.to_thread.run_sync(sync_code, i)

                for i in range(5):
                    nursery.start_soon(call, i)
            assert results == {i: Echoed(text=f"g{i}") for i in range(5)}


async def test_the_airflow_path_sync_to_async_calling_async_to_sync_asend_with_cancellations() -> None:
    """docs/callers.rst, asgiref: an asyncio loop (Airflow's triggerer runner) runs
    triggers whose sync code, under ``sync_to_async``, calls ``async_to_sync(asend)``;
    asgiref runs that asend back on the loop. 40 triggers, every fourth cancelled while
    its request is in flight (the seed's fatal case): every other reply is its own."""
    release = trio.Event()
    waiting = 0
    all_in_flight = threading.Event()

    async def slow_echo(message: Echo) -> Echoed:
        nonlocal waiting
        if message.text.startswith("cancel"):
            waiting += 1
            if waiting == 10:
                all_in_flight.set()  # every request to be cancelled is written and read
            await release.wait()
        return Echoed(text=message.text)

    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_responder(slow_echo) as comms:

            def trigger_sync_code(text: str) -> object:
                return async_to_sync(comms.asend)(Echo(text=text))

            async def runner() -> tuple[dict[str, object], int]:
                # One thread per trigger, as Airflow's runner sizes its pool.
                asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(64))

                async def trigger(i: int) -> object:
                    text = f"cancel{i}" if i % 4 == 0 else f"t{i}"
                    return await sync_to_async(trigger_sync_code, thread_sensitive=False)(text)

                tasks = {i: asyncio.ensure_future(trigger(i)) for i in range(40)}
                await asyncio.to_thread(all_in_flight.wait, TEST_TIMEOUT)
                for i, task in tasks.items():
                    if i % 4 == 0:
                        task.cancel()
                # asgiref's cancellation leaves the sync code (and its asend) running,
                # as in Airflow: let their replies come, for the executor to finish.
                trio.from_thread.run_sync(release.set)
                results = {}
                cancelled = 0
                for i, task in tasks.items():
                    try:
                        results[f"t{i}"] = await task
                    except asyncio.CancelledError:
                        cancelled += 1
                return results, cancelled

            results, cancelled = await trio.to_thread.run_sync(asyncio.run, runner())
            assert cancelled == 10
            assert results == {f"t{i}": Echoed(text=f"t{i}") for i in range(40) if i % 4}
            assert await comms.asend(Echo(text="after")) == Echoed(text="after")


async def test_send_from_trio_worker_threads() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_responder() as comms:
            results: dict[int, object] = {}

            async def call(i: int) -> None:
                results[i] = await trio.to_thread.run_sync(comms.send, Echo(text=f"w{i}"))

            async with trio.open_nursery() as nursery:
                for i in range(20):
                    nursery.start_soon(call, i)
            assert results == {i: Echoed(text=f"w{i}") for i in range(20)}


async def test_send_from_plain_threads_and_a_thread_running_asyncio() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_responder() as comms:
            results: dict[str, object] = {}

            def plain(i: int) -> None:
                results[f"p{i}"] = comms.send(Echo(text=f"p{i}"))

            def asyncio_thread() -> None:
                async def main() -> None:
                    # Blocking inside a coroutine is the host's choice; it must still work.
                    results["aio"] = comms.send(Echo(text="aio"))

                asyncio.run(main())

            threads = [threading.Thread(target=plain, args=(i,)) for i in range(8)]
            threads.append(threading.Thread(target=asyncio_thread))
            for thread in threads:
                thread.start()
            await trio.to_thread.run_sync(lambda: [t.join() for t in threads])
            assert results == {**{f"p{i}": Echoed(text=f"p{i}") for i in range(8)}, "aio": Echoed(text="aio")}


async def test_thread_timeout_fails_only_that_thread() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, peer):
            with pytest.raises(actors.RequestTimeout):
                await trio.to_thread.run_sync(lambda: comms.send(Echo(text="late"), timeout=0.05))
            late = await peer.receive()
            await peer.echo(late)
            async with trio.open_nursery() as nursery:

                async def ok() -> None:
                    assert await trio.to_thread.run_sync(comms.send, Echo(text="ok")) == Echoed(text="ok")

                nursery.start_soon(ok)
                await peer.echo(await peer.receive())
            stats = comms.statistics()
            assert (stats.calls_timed_out, stats.replies_late, stats.replies_routed) == (1, 1, 1)


async def test_send_on_the_loop_thread_without_a_portal_raises_at_once() -> None:
    async with comms_and_peer() as (comms, _peer):
        with pytest.raises(actors.LoopThreadError, match=r"await comms.asend.*greenback") as info:
            comms.send(Echo(text="x"))
        assert isinstance(info.value, RuntimeError)
        assert comms.statistics().requests_sent == 0


async def test_send_on_the_loop_thread_inside_a_greenback_portal() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_responder() as comms:

            def sync_library_code(i: int) -> object:
                return comms.send(Echo(text=f"gb{i}"))

            async def call(i: int, results: dict[int, object]) -> None:
                await greenback.ensure_portal()
                results[i] = sync_library_code(i)

            results: dict[int, object] = {}
            async with trio.open_nursery() as nursery:
                for i in range(5):
                    nursery.start_soon(call, i, results)
            assert results == {i: Echoed(text=f"gb{i}") for i in range(5)}


async def test_asend_from_another_trio_run_in_a_thread() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_responder() as comms:

            async def other_run() -> object:
                return await comms.asend(Echo(text="other"))

            assert await trio.to_thread.run_sync(trio.run, other_run) == Echoed(text="other")
