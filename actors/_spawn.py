"""Spawning, signalling and reaping a worker process so that nothing outlives its parent.

- On Linux the worker is given a parent-death signal (``PR_SET_PDEATHSIG``,
  SIGKILL): if the supervisor's process dies, however, the kernel kills the worker,
  even a stopped (SIGSTOP) or blocked one. The kernel sends it when the *thread*
  that forked the worker exits, so every worker is forked by one long-lived
  thread of ours, never by trio's cached worker threads (which exit after 10 s
  idle, and would take their workers with them).
- The worker leads a process group of its own, so its own children are signalled
  with it, and killed when it exits on its own (while it is an unreaped zombie its
  pid, the group's id, cannot be reused, so the group is killed before reaping).
- The worker inherits exactly one copy of its socket: on fd 0, or on the fd asked for.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import outcome
import trio

__all__ = ["WorkerProcess", "is_stopped", "spawn_worker"]

_PR_SET_PDEATHSIG = 1


def _load_prctl() -> Callable[..., int] | None:
    if sys.platform != "linux":
        return None
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    prctl: Callable[..., int] = libc.prctl
    return prctl


_prctl = _load_prctl()  # loaded here, never between fork and exec


class _Forker:
    """One daemon thread that forks every worker, for the life of the process."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _run(self) -> None:
        while True:
            self._jobs.get()()

    async def popen(self, command: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="trio-comms forker", daemon=True)
                self._thread.start()
        task = trio.lowlevel.current_task()
        token = trio.lowlevel.current_trio_token()

        def start() -> subprocess.Popen[bytes]:
            return subprocess.Popen(list(command), **options)

        def job() -> None:
            result = outcome.capture(start)
            token.run_sync_soon(trio.lowlevel.reschedule, task, result)

        self._jobs.put(job)
        # A fork takes milliseconds; waiting for it cannot be cancelled, so the
        # process is never left running with nobody holding it.
        popen: subprocess.Popen[bytes] = await trio.lowlevel.wait_task_rescheduled(
            lambda _: trio.lowlevel.Abort.FAILED
        )
        return popen


_forker = _Forker()


class WorkerProcess:
    """A spawned worker: its pid, its exit, and signals to it (and its group)."""

    def __init__(self, popen: subprocess.Popen[bytes], *, own_group: bool) -> None:
        self._popen = popen
        self._own_group = own_group
        self.pid = popen.pid
        self._pidfd = -1
        if hasattr(os, "pidfd_open"):
            try:
                self._pidfd = os.pidfd_open(self.pid)
            except OSError:  # an old kernel or a sandbox: wait in a thread instead
                self._pidfd = -1

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: killed by that signal) once reaped, else ``None``."""
        return self._popen.returncode

    async def wait(self) -> int:
        """Wait until the worker exits; kill what is left of its group; reap it."""
        if self._popen.returncode is None:
            if self._pidfd >= 0:
                await trio.lowlevel.wait_readable(self._pidfd)
            else:
                await trio.to_thread.run_sync(self._wait_exited, abandon_on_cancel=True)
            if self._own_group:
                # Its pid (the group's id) stays reserved until we reap it below.
                self._signal_group(signal.SIGKILL)
            self._popen.wait()
            self._close()
        return self._popen.returncode

    def _wait_exited(self) -> None:
        os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOWAIT)

    def terminate(self) -> None:
        """SIGTERM to the worker (and its group)."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the worker (and its group)."""
        self.send_signal(signal.SIGKILL)

    def send_signal(self, sig: int) -> None:
        """Signal the worker, and its whole process group if it leads one; a no-op
        once it has been reaped."""
        if self._popen.returncode is not None:
            return
        if self._own_group:
            self._signal_group(sig)
        else:
            self._popen.send_signal(sig)

    def _signal_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # nobody left in it
            os.killpg(self.pid, sig)

    def _close(self) -> None:
        if self._pidfd >= 0:
            os.close(self._pidfd)
            self._pidfd = -1


async def spawn_worker(
    command: Sequence[str], socket_fd: int, *, target_fd: int, own_group: bool,
    env: Mapping[str, str] | None = None,
) -> WorkerProcess:
    """Spawn ``command`` with ``socket_fd`` as its fd ``target_fd`` (its only copy),
    with ``env`` added to this process's environment.

    Raises:
        OSError: the command could not be spawned.
    """
    parent = os.getpid()

    def in_child() -> None:  # between fork and exec: nothing that allocates much
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            if os.getppid() != parent:  # the parent died before the line above
                os._exit(1)
        if target_fd != 0:
            os.dup2(socket_fd, target_fd)
            if socket_fd != target_fd:
                os.close(socket_fd)

    options: dict[str, Any] = {"preexec_fn": in_child, "process_group": 0 if own_group else None}
    if env:
        options["env"] = {**os.environ, **env}
    if target_fd == 0:
        options["stdin"] = socket_fd
    else:
        options["stdin"] = subprocess.DEVNULL
        options["pass_fds"] = (target_fd,)
    popen = await _forker.popen(command, **options)
    return WorkerProcess(popen, own_group=own_group)


def is_stopped(pid: int) -> bool:
    """Whether the process is stopped by a signal (SIGSTOP, SIGTSTP: state T in
    ``/proc``): a stopped process never handles SIGTERM, nor makes progress. False
    where there is no ``/proc`` (not Linux) or the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False
