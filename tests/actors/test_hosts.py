"""Hosts that keep the actor on its own thread (comms_in_thread): asyncio entering it
with ``async with``, a trio host whose tasks park on their own run, waiting for the
close from anywhere, the hello's deadline; and handles users cannot build.
"""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest
import trio
import trio.testing

import actors
import channel

from .helpers import CODEC, TEST_TIMEOUT, Echo, Echoed, FakePeer, Hello, comms_and_peer


def _peer_thread(sock: socket.socket, script) -> threading.Thread:  # type: ignore[no-untyped-def]
    """Run ``await script(FakePeer)`` on its own trio loop in a thread."""

    async def main() -> None:
        async with trio.SocketStream(trio.socket.from_stdlib_socket(sock)) as stream:
            await script(FakePeer(stream))

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    return thread


def test_async_with_from_asyncio_never_blocks_the_host_loop() -> None:
    """The peer sends its hello only once the host's loop has run another task while
    ``async with`` is entering. If entering blocked the loop, the hello would never
    come and entering would fail with HelloTimeout."""
    ours, theirs = socket.socketpair()
    loop_ran = threading.Event()

    async def peer_script(peer: FakePeer) -> None:
        await trio.to_thread.run_sync(loop_ran.wait, abandon_on_cancel=True)
        await peer.reply(0, Hello(greeting="StartTriggerer"))
        await peer.echo(await peer.receive())
        with pytest.raises(EOFError):
            await peer.receive()

    peer = _peer_thread(theirs, peer_script)

    async def host() -> None:
        async def other_task() -> None:
            loop_ran.set()  # runs only if the loop turns while `async with` is entering

        ticker = asyncio.ensure_future(other_task())
        async with actors.comms_in_thread(ours, CODEC, expect_hello=True, hello_timeout=5) as comms:
            assert comms.hello == Hello(greeting="StartTriggerer")
            assert await comms.asend(Echo(text="a")) == Echoed(text="a")
        await ticker
        assert comms.state.value is actors.ChannelState.CLOSED

    asyncio.run(asyncio.wait_for(host(), TEST_TIMEOUT))
    peer.join(TEST_TIMEOUT)
    assert not peer.is_alive()


def test_entering_fails_with_the_hello_timeout_and_leaves_no_thread() -> None:
    ours, theirs = socket.socketpair()
    before = threading.active_count()

    async def host() -> None:
        with pytest.raises(actors.HelloTimeout, match=r"no hello from the peer within 0.2 s"):
            async with actors.comms_in_thread(ours, CODEC, expect_hello=True, hello_timeout=0.2):
                raise AssertionError("entered without a hello")

    asyncio.run(asyncio.wait_for(host(), TEST_TIMEOUT))
    assert threading.active_count() == before
    theirs.close()


async def test_hello_timeout_bounds_the_wait_for_a_hello(autojump_clock: trio.abc.Clock) -> None:
    """Regression: expect_hello=True used to wait forever (or for the call timeout)."""
    start = trio.current_time()
    with pytest.raises(actors.HelloTimeout):
        async with comms_and_peer(expect_hello=True, hello_timeout=3):
            raise AssertionError("entered without a hello")
    assert trio.current_time() - start == pytest.approx(3)


async def test_a_trio_host_parks_its_tasks_on_its_own_run() -> None:
    """Regression: asend from another trio run used a worker thread per call."""
    ours, theirs = socket.socketpair()
    release = threading.Event()
    got_all = threading.Event()

    async def peer_script(peer: FakePeer) -> None:
        frames = await peer.receive_n(50)
        got_all.set()
        await trio.to_thread.run_sync(release.wait, abandon_on_cancel=True)
        for frame in frames:
            await peer.echo(frame)
        while True:  # the cancelled call's request is answered late; then the rest
            try:
                frame = await peer.receive()
            except (EOFError, trio.BrokenResourceError):
                return  # closed; a reset if our late reply was still unread when it closed
            if frame.body is not None and frame.body["text"] == "timeout":
                continue  # never answered: its caller's deadline must fire
            await trio.to_thread.run_sync(release.wait)
            try:
                await peer.echo(frame)
            except trio.BrokenResourceError:
                return

    peer = _peer_thread(theirs, peer_script)
    with trio.fail_after(TEST_TIMEOUT):
        async with actors.comms_in_thread(ours, CODEC) as comms:
            results: list[object] = []
            limiter = trio.to_thread.current_default_thread_limiter()

            async def call(i: int) -> None:
                results.append(await comms.asend(Echo(text=f"r{i}")))

            async with trio.open_nursery() as nursery:
                for i in range(50):
                    nursery.start_soon(call, i)
                await trio.to_thread.run_sync(got_all.wait)
                assert comms.statistics().in_flight == 50
                assert limiter.borrowed_tokens == 0  # no worker thread is holding a call
                release.set()
            assert sorted(results, key=str) == sorted((Echoed(text=f"r{i}") for i in range(50)), key=str)
            release.clear()
            with trio.move_on_after(0.2) as scope:  # a deadline on the host's own run
                await comms.asend(Echo(text="cancelled"))
            assert scope.cancelled_caught
            release.set()
            with pytest.raises(actors.RequestTimeout) as info:
                await comms.asend(Echo(text="timeout"), timeout=0.05)
            assert info.value.message_type == "Echo"
    peer.join(TEST_TIMEOUT)


async def test_wait_closed_from_trio_and_from_asyncio() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, peer):
            from_asyncio = trio.Event()
            token = trio.lowlevel.current_trio_token()

            def asyncio_waiter() -> None:
                async def wait() -> None:
                    await comms.wait_closed()

                asyncio.run(wait())
                token.run_sync_soon(from_asyncio.set)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(trio.to_thread.run_sync, asyncio_waiter)
                nursery.start_soon(comms.wait_closed)
                await trio.testing.wait_all_tasks_blocked()
                assert not from_asyncio.is_set()
                await peer.close()
            await from_asyncio.wait()
            assert comms.state.value is actors.ChannelState.CLOSED
            assert isinstance(comms.close_cause, EOFError)


async def test_aclose_from_asyncio_closes_the_channel() -> None:
    with trio.fail_after(TEST_TIMEOUT):
        async with comms_and_peer() as (comms, _peer):
            await trio.to_thread.run_sync(asyncio.run, comms.aclose())
            assert comms.state.value is actors.ChannelState.CLOSED
            with pytest.raises(actors.ChannelClosed):
                await comms.asend(Echo(text="x"))


def test_handles_cannot_be_built_and_public_names_say_where_they_live() -> None:
    with pytest.raises(TypeError, match=r"actors.Comms has no public constructor"):
        actors.Comms(None, CODEC, None)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="no public constructor"):
        actors.ThreadedComms(None, CODEC, {})  # type: ignore[call-arg]
    for name in actors.__all__:
        obj = getattr(actors, name)
        if isinstance(obj, type) and obj.__module__.startswith("actors"):
            assert f"{obj.__module__}.{obj.__qualname__}" == f"actors.{name}"
    assert repr(actors.Comms) == "<class 'actors.Comms'>"
    for name in channel.__all__:
        obj = getattr(channel, name)
        if isinstance(obj, type):
            assert obj.__module__ == "channel", name
    assert actors.open_comms.__module__ == "actors" and actors.serve.__module__ == "actors"


def test_actors_never_spells_wire_bytes() -> None:
    """channel/ owns every byte: no msgpack literals, frame overheads or error-map
    type names in actors/."""
    import pathlib
    import re

    for path in pathlib.Path(actors.__file__).parent.glob("*.py"):
        text = path.read_text()
        assert not re.search(r'b"\\x[0-9a-f]{2}', text), path
        assert '"ErrorResponse"' not in text, path
        assert "_FRAME_OVERHEAD" not in text, path
