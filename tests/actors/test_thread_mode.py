"""comms_in_thread (docs/callers.rst, "Where the actor runs"): the actor on its own trio loop in a daemon thread,
for hosts that are asyncio programs or plain threads. These tests are synchronous:
the host here is not trio."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import trio

import actors

from .helpers import CODEC, TEST_TIMEOUT, Echo, Echoed, Hello, echo_handler, stdlib_socketpair


@contextmanager
def responder_thread(sock, hello=None) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """``actors.serve`` on its own trio loop in a thread, over a stdlib socket."""

    async def main() -> None:
        await actors.serve(trio.SocketStream(trio.socket.from_stdlib_socket(sock)), CODEC, echo_handler, hello=hello)

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(TEST_TIMEOUT)
        assert not thread.is_alive()


def test_send_from_threads_and_asend_from_asyncio() -> None:
    ours, theirs = stdlib_socketpair()
    with responder_thread(theirs), actors.comms_in_thread(ours, CODEC, timeout=TEST_TIMEOUT) as comms:
        results: dict[str, object] = {}

        def worker(i: int) -> None:
            results[f"t{i}"] = comms.send(Echo(text=f"t{i}"))

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(10)]
        for thread in threads:
            thread.start()

        async def asyncio_main() -> list[object]:
            return await asyncio.gather(*(comms.asend(Echo(text=f"a{i}")) for i in range(30)))

        assert asyncio.run(asyncio_main()) == [Echoed(text=f"a{i}") for i in range(30)]
        for thread in threads:
            thread.join(TEST_TIMEOUT)
        assert results == {f"t{i}": Echoed(text=f"t{i}") for i in range(10)}
        # Even the host's main thread may block in send: it is not the actor's thread.
        assert comms.send(Echo(text="main")) == Echoed(text="main")


def test_a_blocked_host_loop_does_not_stall_the_channel() -> None:
    """While the asyncio loop is blocked, a thread still completes its calls.

    The loop blocks until the thread has finished 50 calls; if the channel depended
    on that loop, the thread could never finish and the wait would time out.
    """
    ours, theirs = stdlib_socketpair()
    with responder_thread(theirs), actors.comms_in_thread(ours, CODEC, timeout=TEST_TIMEOUT) as comms:
        thread_done = threading.Event()

        def other_thread() -> None:
            for i in range(50):
                assert comms.send(Echo(text=f"o{i}")) == Echoed(text=f"o{i}")
            thread_done.set()

        async def asyncio_main() -> tuple[bool, list[object]]:
            pending = [asyncio.ensure_future(comms.asend(Echo(text=f"p{i}"))) for i in range(10)]
            # One iteration: the 10 calls start and queue on this loop's batch, which is
            # handed to the actor at the end of an iteration (a call_soon handle); the
            # loop blocks before that, so none is submitted until it wakes.
            await asyncio.sleep(0)
            threading.Thread(target=other_thread).start()
            finished_while_blocked = thread_done.wait(TEST_TIMEOUT)  # blocks this loop
            return finished_while_blocked, await asyncio.gather(*pending)

        finished_while_blocked, replies = asyncio.run(asyncio_main())
        assert finished_while_blocked
        # The loop's own calls, submitted once it woke, were answered too.
        assert replies == [Echoed(text=f"p{i}") for i in range(10)]


def test_exit_closes_the_channel_and_joins_the_thread() -> None:
    ours, theirs = stdlib_socketpair()
    before = {t.ident for t in threading.enumerate()}
    with responder_thread(theirs):
        with actors.comms_in_thread(ours, CODEC) as comms:
            assert comms.send(Echo(text="x")) == Echoed(text="x")
            actor_threads = [t for t in threading.enumerate() if t.ident not in before and t.name == "trio-comms"]
            assert len(actor_threads) == 1
        assert not actor_threads[0].is_alive()
        assert comms.state.value is actors.ChannelState.CLOSED
        with pytest.raises(actors.ChannelClosed) as info:
            comms.send(Echo(text="y"))
        assert isinstance(info.value.__cause__, trio.ClosedResourceError)

        async def from_asyncio_after_exit() -> None:
            # Handed over at the loop's next iteration, to a trio run that is over.
            async with asyncio.timeout(TEST_TIMEOUT):
                await comms.asend(Echo(text="z"))

        with pytest.raises(actors.ChannelClosed):
            asyncio.run(from_asyncio_after_exit())
        assert ours.fileno() == -1  # the actor owned the socket and closed it


def test_pending_calls_fail_when_the_block_exits() -> None:
    ours, theirs = stdlib_socketpair()  # nobody answers on theirs
    outcome: list[BaseException] = []
    started = threading.Event()
    with actors.comms_in_thread(ours, CODEC) as comms:

        def caller() -> None:
            started.set()
            try:
                comms.send(Echo(text="never answered"))
            except actors.ChannelClosed as exc:
                outcome.append(exc)

        thread = threading.Thread(target=caller)
        thread.start()
        started.wait()
        assert theirs.recv(1024)  # the request reached the peer: the call is pending
    thread.join(TEST_TIMEOUT)
    assert len(outcome) == 1
    theirs.close()


def test_hello_and_entry_errors_surface_in_the_host() -> None:
    ours, theirs = stdlib_socketpair()
    with (
        responder_thread(theirs, hello=Hello(greeting="hi")),
        actors.comms_in_thread(ours, CODEC, expect_hello=True, timeout=TEST_TIMEOUT) as comms,
    ):
        assert comms.hello == Hello(greeting="hi")
    ours, theirs = stdlib_socketpair()
    with pytest.raises(ValueError, match="max_in_flight"), actors.comms_in_thread(ours, CODEC, max_in_flight=0):
        pass
    ours.close()
    theirs.close()
