"""The socket fast path: the actor makes the syscalls on the fd itself, reading in
one task and writing through one code path (``FramePump._send_ready``), mostly at the
end of each trio scheduler pass. These tests record every syscall to prove it."""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

import pytest
import trio
import trio.testing

import actors

from .helpers import CODEC, Echo, FakePeer, hammer


class _SyscallRecorder:
    """Stands in for the ``os`` module of actors._stream_io: records, for each read
    and write syscall on the channel's fd, the thread, the reading task and the code
    path that wrote. With ``stingy``, the socket takes at most that many bytes per
    write and refuses every third one, as a full socket buffer would."""

    def __init__(self, fd: int, stingy: int | None = None) -> None:
        self.fd = fd
        self.stingy = stingy
        self.readers: set[object] = set()
        self.write_paths: set[tuple[str, str]] = set()
        self.writes = 0
        self.sizes: list[int] = []  # bytes each write took
        self.threads: set[int] = set()

    def readv(self, fd: int, buffers: Any) -> int:
        if fd == self.fd:
            self.readers.add(trio.lowlevel.current_task())
            self.threads.add(threading.get_ident())
        return os.readv(fd, buffers)

    def write(self, fd: int, data: Any) -> int:
        if fd != self.fd:
            return os.write(fd, data)
        self.threads.add(threading.get_ident())
        caller = sys._getframe(1)  # StreamIO's method, then who called it
        assert caller.f_back is not None
        self.write_paths.add((caller.f_code.co_qualname, caller.f_back.f_code.co_qualname))
        self.writes += 1
        if self.stingy is not None:
            if self.writes % 3 == 0:
                raise BlockingIOError
            data = memoryview(data)[: self.stingy]
        written = os.write(fd, data)
        self.sizes.append(written)
        return written


@pytest.mark.parametrize("stingy", [None, 7], ids=["socket takes all", "socket takes 7 bytes at a time"])
async def test_one_code_path_writes_on_the_socket_fast_path(
    monkeypatch: pytest.MonkeyPatch, stream_pair, stingy: int | None
) -> None:
    """The fast path makes the syscalls on the fd itself, and writes from the end of
    a scheduler pass or from a caller's task. Still: one task reads; every write is
    made on the actor's thread by one code path (``FramePump._send_ready``, and the
    writer task finishing a batch the socket took in part); whole frames, ids in
    order, while trio tasks and threads hammer it. The stingy socket forces the
    remainder path on almost every batch."""
    from actors import _stream_io

    ours, theirs = stream_pair
    recorder = _SyscallRecorder(ours.socket.fileno(), stingy)
    monkeypatch.setattr(_stream_io, "os", recorder)
    peer = FakePeer(theirs)
    await hammer(ours, peer)
    assert len(recorder.readers) == 1
    assert recorder.threads == {threading.get_ident()}
    one_path = {("StreamIO.send_nowait", "FramePump._send_ready"), ("StreamIO.send_all", "FramePump.write_batches")}
    assert recorder.write_paths <= one_path
    assert ("StreamIO.send_nowait", "FramePump._send_ready") in recorder.write_paths
    if stingy:
        assert ("StreamIO.send_all", "FramePump.write_batches") in recorder.write_paths
    assert [frame.id for frame in peer.received] == list(range(1, 61))


async def test_requests_made_ready_in_one_pass_leave_in_one_write(
    monkeypatch: pytest.MonkeyPatch, stream_pair
) -> None:
    """On the fast path, 50 calls started together: the first goes out at once (the
    peer had nothing to do), the other 49 in one write at the end of that pass."""
    from actors import _stream_io

    ours, theirs = stream_pair
    recorder = _SyscallRecorder(ours.socket.fileno())
    monkeypatch.setattr(_stream_io, "os", recorder)
    peer = FakePeer(theirs)
    async with actors.open_comms(ours, CODEC) as comms:
        await trio.testing.wait_all_tasks_blocked()
        async with trio.open_nursery() as nursery:
            for i in range(50):
                nursery.start_soon(comms.asend, Echo(text=str(i)))
            frames = await peer.receive_n(50)
            assert recorder.writes == 2
            for frame in frames:
                await peer.echo(frame)
        assert comms.statistics().bytes_sent == sum(recorder.sizes)


class _FailingSocket(_SyscallRecorder):
    """After its first write, every write on the channel's fd fails as a socket
    whose peer is gone."""

    def write(self, fd: int, data: Any) -> int:
        if fd == self.fd and self.writes:
            raise BrokenPipeError(32, "Broken pipe")
        return super().write(fd, data)


async def test_a_write_failing_at_the_end_of_a_pass_closes_the_channel(
    monkeypatch: pytest.MonkeyPatch, stream_pair
) -> None:
    """With a request in flight, the next calls are written at the end of the pass,
    where no task can raise. When that write fails, the channel still closes with
    its error at once (trio's poll is woken: no deadline is pending to end it),
    and every caller gets ChannelClosed from it."""
    from actors import _stream_io

    ours, theirs = stream_pair
    monkeypatch.setattr(_stream_io, "os", _FailingSocket(ours.socket.fileno()))
    peer = FakePeer(theirs)
    failures: list[BaseException] = []
    with trio.fail_after(5):
        async with actors.open_comms(ours, CODEC) as comms:

            async def call(i: int) -> None:
                with pytest.raises(actors.ChannelClosed) as info:
                    await comms.asend(Echo(text=str(i)))
                failures.append(info.value)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(call, 0)
                await peer.receive()  # in flight, never answered
                for i in range(1, 11):
                    nursery.start_soon(call, i)
    assert len(failures) == 11
    assert all(isinstance(failure.__cause__, BrokenPipeError) for failure in failures)
    assert isinstance(comms.close_cause, BrokenPipeError)


def test_the_fast_path_is_only_for_an_exact_socket_stream() -> None:
    """The fast path is chosen by ``type(stream) is trio.SocketStream``. trio makes
    SocketStream final, so no subclass can have overrides the fast path would skip;
    if trio ever allows subclasses, this fails and the choice must be revisited."""
    with pytest.raises(TypeError, match="does not support subclassing"):

        class _Sub(trio.SocketStream):  # type: ignore[misc]
            pass
