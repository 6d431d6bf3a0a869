"""Every caller kind at once against a responder that answers in shuffled order.

This is the Airflow triggerer's situation: trio tasks, trio worker threads, plain
threads, an asyncio loop in a thread, asgiref's async_to_sync in a worker thread and
greenback sync calls on the loop thread, all sharing one socket. Every caller must
get its own reply, checked by content.
"""

from __future__ import annotations

import asyncio
import random
import threading

import greenback
import trio
from asgiref.sync import async_to_sync

from .helpers import TEST_TIMEOUT, Echo, Echoed, comms_and_responder

PER_KIND = 20


async def shuffling_handler(message: Echo) -> Echoed:
    # Random delays reorder the replies; they are load shaping, not synchronisation.
    await trio.sleep(random.random() * 0.005)
    return Echoed(text=message.text)


async def test_every_caller_kind_at_once_gets_its_own_reply() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_responder(shuffling_handler, max_in_flight=16) as comms:
            expected: dict[str, Echoed] = {}
            got: dict[str, object] = {}
            lock = threading.Lock()

            def record(key: str, reply: object) -> None:
                with lock:
                    got[key] = reply

            def keys(kind: str) -> list[str]:
                names = [f"{kind}-{i}-{random.getrandbits(32)}" for i in range(PER_KIND)]
                expected.update({name: Echoed(text=name) for name in names})
                return names

            async def trio_task(key: str) -> None:
                record(key, await comms.asend(Echo(text=key)))

            def blocking(key: str) -> None:
                record(key, comms.send(Echo(text=key)))

            def asyncio_thread(names: list[str]) -> None:
                async def main() -> None:
                    replies = await asyncio.gather(*(comms.asend(Echo(text=k)) for k in names))
                    for key, reply in zip(names, replies, strict=True):
                        record(key, reply)

                asyncio.run(main())

            def asgiref_call(key: str) -> None:
                record(key, async_to_sync(comms.asend)(Echo(text=key)))

            async def greenback_call(key: str) -> None:
                await greenback.ensure_portal()
                blocking(key)  # sync code on the loop thread

            plain_threads = [threading.Thread(target=blocking, args=(k,)) for k in keys("plain")]
            plain_threads.append(threading.Thread(target=asyncio_thread, args=(keys("asyncio"),)))
            async with trio.open_nursery() as nursery:
                for thread in plain_threads:
                    thread.start()
                for key in keys("trio"):
                    nursery.start_soon(trio_task, key)
                for key in keys("to_thread"):
                    nursery.start_soon(trio.to_thread.run_sync, blocking, key)
                for key in keys("asgiref"):
                    nursery.start_soon(trio.to_thread.run_sync, asgiref_call, key)
                for key in keys("greenback"):
                    nursery.start_soon(greenback_call, key)
                await trio.to_thread.run_sync(lambda: [t.join() for t in plain_threads])
            assert got == expected
            stats = comms.statistics()
            assert stats.replies_routed == stats.requests_sent == 6 * PER_KIND
            assert (stats.in_flight, stats.queued, stats.replies_unknown) == (0, 0, 0)
