"""A worker's own exit comes out as it was raised (docs/supervising.rst, "The worker's
side"): ``sys.exit(3)`` or Ctrl-C inside ``connect_to_supervisor`` or ``open_comms``
ends the process with that code and no traceback, not wrapped in an exception group
of the channel's own nursery (which exits 1 and makes the supervisor record the
wrong code). A nursery of the worker's own wraps as trio always does.

Real worker processes, on a real socketpair whose other end ``actors.serve`` answers."""

from __future__ import annotations

import socket

import pytest
import trio

import actors
from tests.supervisor.messages import CODEC
from tests.supervisor.test_supervisor import TEST_TIMEOUT, worker


async def _answer(message: object) -> object:
    return None


async def _run_worker(mode: str) -> tuple[int, bytes]:
    ours, theirs = socket.socketpair()
    with trio.fail_after(TEST_TIMEOUT), theirs:
        async with trio.open_nursery() as nursery:
            stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
            nursery.start_soon(actors.serve, stream, CODEC, _answer)
            process = await trio.run_process(worker(mode), stdin=theirs.fileno(), capture_stderr=True, check=False)
            nursery.cancel_scope.cancel()
    return process.returncode, process.stderr


@pytest.mark.parametrize("mode", ["sys-exit", "sys-exit-thread"])
async def test_sys_exit_in_the_block_is_the_workers_exit_code(mode: str) -> None:
    code, stderr = await _run_worker(mode)
    assert code == 3, stderr.decode()
    assert b"Traceback" not in stderr and b"ExceptionGroup" not in stderr


async def test_ctrl_c_in_the_block_comes_out_as_keyboard_interrupt() -> None:
    code, stderr = await _run_worker("interrupt")
    # Python's own exit for an unhandled KeyboardInterrupt; no group around it.
    assert b"KeyboardInterrupt" in stderr and b"ExceptionGroup" not in stderr, stderr.decode()
    assert code in (1, -2, 130)


async def test_system_exit_in_open_comms_is_not_wrapped(stream_pair) -> None:
    ours, _ = stream_pair
    with pytest.raises(SystemExit) as info:
        async with actors.open_comms(ours, CODEC):
            raise SystemExit(3)
    assert info.value.code == 3


async def test_keyboard_interrupt_in_open_comms_is_not_wrapped(stream_pair) -> None:
    ours, _ = stream_pair
    with pytest.raises(KeyboardInterrupt):
        async with actors.open_comms(ours, CODEC):
            raise KeyboardInterrupt
