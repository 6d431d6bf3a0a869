"""The supervisor: run a worker process, serve its requests, restart it when it dies
or stops making progress, and say truthfully how it is.

Policy (backoff, restart intensity, heartbeat bookkeeping) lives in ``_policy.py`` as
plain classes; this module is the trio driver on top of them: it spawns each
incarnation with its end of a socketpair, serves it with :func:`~actors.serve`,
watches its exit and its heartbeat, stops it with escalation and decides, through
the policy, whether and when to spawn the next.
"""

from __future__ import annotations

import collections
import logging
import math
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, final

import attrs
import trio
from trio_util import AsyncValue

from channel import DEFAULT_MAX_FRAME_SIZE, Codec, ErrorReply, RemoteProtocolError
from channel._util import NoPublicConstructor

from ._errors import PeerNotReading
from ._policy import Backoff, ExitRecord, Liveness, RestartIntensity
from ._responder import Handler, serve
from ._spawn import WorkerProcess, spawn_worker
from ._worker_status import RestartIntensityExceeded, SupervisorStatus, WorkerState

__all__ = ["Supervisor", "open_supervisor"]

log = logging.getLogger(__name__)

_RESET_BACKOFF_AFTER = 10.0  # seconds RUNNING after which the next restart backs off from the start
_HISTORY = 1000  # statuses kept by Supervisor.history()
_EXIT_GRACE = 1.0  # seconds a worker that closed its channel has to exit before it is stopped


@final
class Supervisor(metaclass=NoPublicConstructor):
    """The handle ``open_supervisor`` yields. See :func:`open_supervisor`."""

    def __init__(
        self,
        command: Sequence[str],
        codec: Codec,
        handler: Handler,
        *,
        heartbeat: type | tuple[type, ...],
        stuck_after: float,
        start_timeout: float,
        stop_timeout: float,
        backoff: Backoff,
        intensity: RestartIntensity,
        hello: Any,
        max_concurrency: int,
        max_frame_size: int,
        fd: int,
        own_process_group: bool,
    ) -> None:
        self._command = list(command)
        self._own_process_group = own_process_group
        self._codec = codec
        self._handler = handler
        self._heartbeat = heartbeat
        self._stop_timeout = stop_timeout
        self._backoff = backoff
        self._intensity = intensity
        self._hello = hello
        self._max_concurrency = max_concurrency
        self._max_frame_size = max_frame_size
        self._fd = fd
        self._liveness = Liveness(stuck_after=stuck_after, start_timeout=start_timeout)
        self._exits: list[ExitRecord] = []
        self._incarnation = 0
        self._pid: int | None = None
        self._alive_incarnation = 0  # requests of any other incarnation are refused
        self._watchdog: trio.CancelScope | None = None
        self._serving = False  # the current incarnation's channel is open
        self.status: AsyncValue[SupervisorStatus] = AsyncValue(
            SupervisorStatus(
                state=WorkerState.STARTING, pid=None, incarnation=0, restarts=0, last_exit=None,
                last_exit_reason=None, heartbeat_age=None, since=trio.current_time(),
            )
        )
        """The current :class:`SupervisorStatus`; ``await status.wait_value(...)`` to watch it.
        (A watcher may see several quick changes as one; :meth:`history` has each.)"""
        self._history: collections.deque[SupervisorStatus] = collections.deque([self.status.value], maxlen=_HISTORY)

    def __repr__(self) -> str:
        status = self.status.value
        return f"<actors.Supervisor {status.state.name} incarnation={status.incarnation} pid={status.pid}>"

    # ------------------------------------------------------------------ observing

    def healthy(self) -> bool:
        """True iff the worker is RUNNING and its last heartbeat is fresh (now, not at
        the last snapshot): False from the moment it dies or its heartbeat goes stale
        until a new incarnation has sent its first heartbeat."""
        state: WorkerState = self.status.value.state
        return state is WorkerState.RUNNING and self._serving and self._liveness.fresh(trio.current_time())

    def history(self) -> list[SupervisorStatus]:
        """Every transition (state, incarnation or pid changed), oldest first: the last 1,000."""
        return list(self._history)

    def heartbeat_age(self) -> float | None:
        """Seconds since the current incarnation's last heartbeat, now, or None."""
        return self._liveness.age(trio.current_time())

    async def wait_failed(self) -> None:
        """Wait until the restart intensity is exceeded, then raise it.

        Raises:
            RestartIntensityExceeded: always, once the supervisor has given up.
        """
        await self.status.wait_value(lambda status: status.state is WorkerState.FAILED)
        raise self._failure()

    def _failure(self) -> RestartIntensityExceeded:
        return RestartIntensityExceeded(self._exits, self._intensity.max_restarts, self._intensity.window)

    def _publish(self, state: WorkerState | None = None, **changes: Any) -> None:
        now = trio.current_time()
        current: SupervisorStatus = self.status.value
        new_state = current.state if state is None else state
        since = current.since if new_state is current.state else now
        new = attrs.evolve(current, state=new_state, since=since, heartbeat_age=self._liveness.age(now), **changes)
        if (new.state, new.incarnation, new.pid) != (current.state, current.incarnation, current.pid):
            self._history.append(new)  # transitions only: heartbeats would crowd them out
        self.status.value = new
        if new_state is not current.state:
            log.debug("worker %s (incarnation %d, pid %s)", new_state.name, self._incarnation, self._pid)

    # ------------------------------------------------------------------ running

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Spawn, serve, watch and restart until cancelled or the intensity is exceeded."""
        task_status.started()
        running_since: float | None = None
        while True:
            reason, exit_code, running_since = await self._one_incarnation()
            now = trio.current_time()
            self._exits.append(ExitRecord(incarnation=self._incarnation, exit_code=exit_code, reason=reason, at=now))
            del self._exits[: -max(self._intensity.max_restarts + 1, 1)]
            log.warning("worker incarnation %d ended: %s (exit code %s)", self._incarnation, reason, exit_code)
            if running_since is not None and now - running_since >= _RESET_BACKOFF_AFTER:
                self._backoff.reset()
            if not self._intensity.allow(now):
                self._publish(WorkerState.FAILED, pid=None, last_exit=exit_code, last_exit_reason=reason)
                log.error("%s", self._failure())
                raise self._failure()
            delay = self._backoff.next_delay()
            self._publish(WorkerState.BACKING_OFF, pid=None, last_exit=exit_code, last_exit_reason=reason)
            await trio.sleep(delay)

    async def _one_incarnation(self) -> tuple[str, int | None, float | None]:
        self._incarnation += 1
        incarnation = self._incarnation
        ours, theirs = socket.socketpair()
        try:
            process = await spawn_worker(
                self._command, theirs.fileno(), target_fd=self._fd, own_group=self._own_process_group
            )
        finally:
            theirs.close()
        self._pid = process.pid
        self._alive_incarnation = incarnation
        self._serving = True
        self._liveness.spawned(trio.current_time())
        self._publish(
            WorkerState.STARTING, pid=process.pid, incarnation=incarnation, restarts=incarnation - 1
        )
        reason = "supervisor stopped"
        running_since: list[float] = []
        try:
            stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
            async with trio.open_nursery() as nursery:

                def declare(why: str) -> None:
                    nonlocal reason
                    if self._alive_incarnation == incarnation:
                        reason = why
                        self._alive_incarnation = 0  # its requests are refused from now on
                        nursery.cancel_scope.cancel()

                async def handle(message: Any) -> Any:
                    if self._alive_incarnation != incarnation:
                        # Declared dead in this very tick: its handlers are being
                        # cancelled, and this one must not even start.
                        raise ErrorReply("WORKER_DEAD", {"incarnation": incarnation})
                    if isinstance(message, self._heartbeat):
                        now = trio.current_time()
                        if self._liveness.heartbeat(now):
                            running_since.append(now)
                            self._publish(WorkerState.RUNNING)
                        else:
                            self._publish()
                        if self._watchdog is not None:
                            self._watchdog.deadline = self._liveness.deadline()
                    return await self._handler(message)

                async def serve_it() -> None:
                    try:
                        await serve(
                            stream, self._codec, handle, max_concurrency=self._max_concurrency,
                            hello=self._hello, max_frame_size=self._max_frame_size,
                            drain_timeout=0, incarnation=incarnation,
                            stall_timeout=self._liveness.stuck_after,
                        )
                    except RemoteProtocolError as exc:
                        log.warning("worker incarnation %d sent garbage: %s", incarnation, exc)
                        declare("protocol error")
                        return
                    except PeerNotReading as exc:
                        log.warning("worker incarnation %d %s", incarnation, exc)
                        declare("stopped reading")
                        return
                    # Its end of the channel closed: it is exiting, most likely. Not
                    # healthy from now on; give the exit a moment to be the reason.
                    self._serving = False
                    await trio.sleep(_EXIT_GRACE)
                    declare("closed its channel")

                async def watch_exit() -> None:
                    await process.wait()
                    declare("exited")

                async def watchdog() -> None:
                    while True:
                        # Each heartbeat moves this scope's deadline (see handle).
                        with trio.move_on_at(self._liveness.deadline()) as watch:
                            self._watchdog = watch
                            await trio.sleep_forever()
                        if self._liveness.is_stuck(trio.current_time()):
                            first = self._liveness.last_heartbeat is None
                            self._publish(WorkerState.STUCK)
                            declare("no first heartbeat" if first else "stuck")
                            return

                nursery.start_soon(watch_exit)
                nursery.start_soon(serve_it)
                nursery.start_soon(watchdog)
        finally:
            self._alive_incarnation = 0
            self._serving = False
            with trio.CancelScope(shield=True):
                if process.returncode is None:
                    self._publish(WorkerState.STOPPING)
                    await self._stop(process)
                ours.close()
        return reason, process.returncode, running_since[0] if running_since else None

    async def _stop(self, process: WorkerProcess) -> None:
        """SIGTERM, then SIGKILL after ``stop_timeout``; SIGKILL at once if stopped (SIGSTOP)."""
        if _is_stopped(process.pid):
            process.kill()
        else:
            process.terminate()
            with trio.move_on_after(self._stop_timeout):
                await process.wait()
            if process.returncode is None:
                log.warning("worker pid %d ignored SIGTERM for %g s: SIGKILL", process.pid, self._stop_timeout)
                process.kill()
        await process.wait()


def _is_stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP): a stopped process never handles SIGTERM."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False  # no /proc (not Linux) or already gone: SIGTERM's escalation still bounds it


@asynccontextmanager
async def open_supervisor(
    command: Sequence[str],
    codec: Codec,
    handler: Handler,
    *,
    heartbeat: type | tuple[type, ...],
    stuck_after: float = 30.0,
    start_timeout: float = 30.0,
    stop_timeout: float = 5.0,
    backoff_initial: float = 0.5,
    backoff_max: float = 30.0,
    max_restarts: int = 5,
    restart_window: float = 60.0,
    hello: Any = None,
    max_concurrency: int = 64,
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
    fd: int = 0,
    own_process_group: bool = True,
) -> AsyncIterator[Supervisor]:
    """Run ``command`` as a supervised worker process for as long as the block runs.

    ::

        async with actors.open_supervisor(
            [sys.executable, "-m", "myworker"], codec, handler, heartbeat=Heartbeat, stuck_after=10,
        ) as supervisor:
            await supervisor.status.wait_value(lambda s: s.state is actors.WorkerState.RUNNING)
            supervisor.healthy()

    The worker gets its end of a ``socket.socketpair()`` as fd 0 (Airflow's
    convention) or as ``fd``; its stdout and stderr are the supervisor's. Its requests
    are served as :func:`~actors.serve` serves them (``hello`` first), with
    :func:`~actors.current_request` telling the handler which incarnation asked.

    - Liveness is the heartbeat alone: a request of type ``heartbeat``, which the
      worker's main loop sends. No other request counts. A worker with no heartbeat
      within ``stuck_after`` (``start_timeout`` for the first) is stuck.
    - A stuck worker is stopped (SIGTERM, SIGKILL after ``stop_timeout``; SIGKILL at
      once if it is stopped by SIGSTOP). One that exits (any code, any signal),
      closes its channel or sends garbage is dead. Either way its requests are refused
      from that moment and its running handlers cancelled, and after a backoff
      (exponential from ``backoff_initial`` to ``backoff_max``, with jitter; reset
      after 10 s of RUNNING) a new incarnation is spawned.
    - More than ``max_restarts`` restarts within ``restart_window`` seconds: FAILED,
      no more restarts, and :class:`RestartIntensityExceeded` is raised out of the block.
    - Leaving the block, however (normally, by cancellation, by KeyboardInterrupt),
      stops the worker with the same escalation: no orphan.
    - Nothing outlives its parent. On Linux the worker gets SIGKILL from the kernel
      if the supervisor's process dies (``PR_SET_PDEATHSIG``), even when it is
      stopped or blocked. With ``own_process_group`` (the default) the worker leads
      a process group of its own: every signal above goes to the group, and when
      the worker exits on its own what is left of its group is killed, so its own
      children die with it. Pass ``own_process_group=False`` to let its children
      outlive it (they are then not signalled either). Children that start a new
      session or group of their own, and the worker's children when the supervisor
      itself is SIGKILLed (the kernel kills only the worker), are beyond this reach.
      The worker inherits one copy of its socket, on fd 0 or ``fd``.

    Raises:
        RestartIntensityExceeded: the intensity limit tripped (the block is cancelled).
        ValueError: a timing or limit option is out of range.
        OSError: the command could not be spawned.
    """
    for name, value in (("stuck_after", stuck_after), ("start_timeout", start_timeout), ("stop_timeout", stop_timeout)):
        if not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")
    supervisor: Supervisor = Supervisor._create(
        command,
        codec,
        handler,
        heartbeat=heartbeat,
        stuck_after=stuck_after,
        start_timeout=start_timeout,
        stop_timeout=stop_timeout,
        backoff=Backoff(backoff_initial, backoff_max),
        intensity=RestartIntensity(max_restarts, restart_window),
        hello=hello,
        max_concurrency=max_concurrency,
        max_frame_size=max_frame_size,
        fd=fd,
        own_process_group=own_process_group,
    )
    failure: RestartIntensityExceeded | None = None
    error: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                nonlocal failure
                try:
                    await supervisor.run()
                except RestartIntensityExceeded as exc:
                    failure = exc
                    nursery.cancel_scope.cancel()

            nursery.start_soon(run)
            try:
                yield supervisor
            except BaseException as exc:  # re-raised bare after the worker is stopped
                error = exc
            nursery.cancel_scope.cancel()
    finally:
        if supervisor.status.value.state is not WorkerState.FAILED:
            supervisor._publish(WorkerState.STOPPED, pid=None)
    if error is not None and not (failure is not None and isinstance(error, trio.Cancelled)):
        raise error
    if failure is not None:
        raise failure
