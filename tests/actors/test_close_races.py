"""Closing never hangs (docs/errors.rst, "The channel closes"): whatever the stream does
when it is closed, however many callers race with the close, from whichever thread,
loop or process, every call and the block itself end promptly.

Each test here hung (or kept memory) before its fix; the bounds are generous for a
loaded 2-core machine and only reached when something hangs."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import select
import threading
import warnings
import weakref
from collections.abc import Callable

import attrs
import pytest
import trio

import actors

from .helpers import CODEC, SHORT_TIMEOUT, TEST_TIMEOUT, Echo, Echoed, echo_handler, stdlib_socketpair
from .test_thread_mode import responder_thread


@attrs.define
class FailingClose(trio.abc.Stream):
    """A well-typed stream whose aclose() raises (a wrapper with a bug, say)."""

    inner: trio.SocketStream

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.inner.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:  # pragma: no cover
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def send_eof(self) -> None:  # pragma: no cover
        raise NotImplementedError

    async def aclose(self) -> None:
        self.inner.socket.close()
        raise RuntimeError("the wrapper's own aclose failed")


async def test_leaving_open_comms_returns_when_the_streams_aclose_raises(stream_pair, caplog) -> None:
    ours, theirs = stream_pair
    with trio.fail_after(SHORT_TIMEOUT):  # hung forever, deaf to this cancellation
        async with trio.open_nursery() as nursery:
            nursery.start_soon(actors.serve, theirs, CODEC, echo_handler)
            async with actors.open_comms(FailingClose(ours), CODEC) as comms:
                assert await comms.asend(Echo(text="x")) == Echoed(text="x")
            nursery.cancel_scope.cancel()
    assert comms.state.value is actors.ChannelState.CLOSED
    with pytest.raises(actors.ChannelClosed):
        await comms.asend(Echo(text="after"))
    assert any("closing the stream" in record.getMessage() for record in caplog.records if record.levelno == logging.ERROR)


def _race_the_close(comms: actors.Comms, close: Callable[[], None]) -> list[str]:
    """8 threads and 4 asyncio loops call in a loop, without a deadline, until their
    call raises ChannelClosed; ``close`` runs once they have all started. Returns the
    names of those that ended (all of them, or the test fails)."""
    ended: list[str] = []
    started = threading.Barrier(13)

    def call_until_closed(name: str) -> None:
        started.wait()
        try:
            while True:
                comms.send(Echo(text=name))
        except actors.ChannelClosed:
            ended.append(name)

    async def loop_until_closed(name: str) -> None:
        started.wait()
        try:
            while True:
                await asyncio.gather(*(comms.asend(Echo(text=name)) for _ in range(4)))
        except actors.ChannelClosed:
            ended.append(name)

    threads = [threading.Thread(target=call_until_closed, args=(f"t{i}",)) for i in range(8)]
    threads += [threading.Thread(target=asyncio.run, args=(loop_until_closed(f"a{i}"),)) for i in range(4)]
    for thread in threads:
        thread.start()
    started.wait()
    close()
    for thread in threads:
        thread.join(SHORT_TIMEOUT)
    assert not any(thread.is_alive() for thread in threads), f"still blocked: {12 - len(ended)} of 12"
    return ended


def test_callers_racing_the_close_of_a_thread_channel_all_end() -> None:
    """Each caller sees ChannelClosed. (Before: 1-7 of 8 threads blocked for ever,
    their slots cleared from the inbox by another thread's failed hand-over.)"""
    for _ in range(10):
        ours, theirs = stdlib_socketpair()
        with responder_thread(theirs):
            threaded = actors.comms_in_thread(ours, CODEC)
            comms = threaded.__enter__()
            ended = _race_the_close(comms, lambda: threaded.__exit__(None, None, None))  # noqa: B023
        assert sorted(ended) == sorted([f"t{i}" for i in range(8)] + [f"a{i}" for i in range(4)])


async def _start_one_call(comms: actors.Comms, calls: list[asyncio.Future[object]]) -> None:
    # The call's first step runs in the next iteration: the loop's last one.
    calls.append(asyncio.ensure_future(comms.asend(Echo(text="never sent"))))


def test_a_loop_that_stopped_right_after_calling_is_not_kept() -> None:
    """A loop that stops in the very iteration one of its coroutines called asend:
    the channel keeps neither the loop nor its unsent calls (before: every one)."""
    ours, theirs = stdlib_socketpair()
    with responder_thread(theirs), actors.comms_in_thread(ours, CODEC, timeout=TEST_TIMEOUT) as comms:
        loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []
        # No automatic collection, in any thread, until ours: CPython's gc.collect()
        # does nothing while another thread's collection runs (the actor's and the
        # responder's threads allocate too), and then the last loop's cycle would
        # still be there, uncollected, when we look (seen once, under load).
        gc.disable()
        try:
            for _ in range(50):
                loop = asyncio.new_event_loop()
                calls: list[asyncio.Future[object]] = []
                loop.run_until_complete(_start_one_call(comms, calls))
                loop.close()
                loops.append(weakref.ref(loop))
                del loop, calls
            gc.collect()
        finally:
            gc.enable()
        kept = [ref for ref in loops if ref() is not None]
        assert not kept, f"{len(kept)} of {len(loops)} stopped loops kept"
        assert comms.send(Echo(text="still works")) == Echoed(text="still works")


def _forked_child_calls(comms: actors.Comms) -> tuple[int, bytes]:
    """Fork; in the child, make a call of each kind on the parent's channel, with no
    deadline, and report what each raised. Returns (child's pid, its report)."""
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads: that is the point
        pid = os.fork()
    if pid == 0:  # pragma: no cover (the child)
        os.close(read_end)
        report = []
        for call in (
            lambda: comms.send(Echo(text="child")),
            lambda: asyncio.run(comms.asend(Echo(text="child"))),
            lambda: trio.run(comms.asend, Echo(text="child")),
        ):
            try:
                call()
                report.append("answered")
            except actors.ChannelClosed as exc:
                report.append(f"closed:{exc.cause}")
            except BaseException as exc:
                report.append(f"other:{exc!r}")
        os.write(write_end, "\n".join(report).encode())
        os._exit(0)
    os.close(write_end)
    chunks = []
    while True:
        ready, _, _ = select.select([read_end], [], [], SHORT_TIMEOUT)
        if not ready:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            os.close(read_end)
            raise AssertionError("the forked child's calls hung")
        chunk = os.read(read_end, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(read_end)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    return pid, b"".join(chunks)


def test_a_forked_child_cannot_use_its_parents_channel() -> None:
    ours, theirs = stdlib_socketpair()
    with responder_thread(theirs), actors.comms_in_thread(ours, CODEC) as comms:
        pid, report = _forked_child_calls(comms)
        lines = report.decode().splitlines()
        assert len(lines) == 3
        for line in lines:
            assert line.startswith("closed:"), line
            assert f"process {pid} is a fork of it" in line and "open a channel of its own" in line
        # The parent's channel is untouched.
        assert comms.state.value is actors.ChannelState.OPEN
        assert comms.send(Echo(text="parent")) == Echoed(text="parent")
