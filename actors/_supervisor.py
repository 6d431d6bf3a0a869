"""The supervisor: run a worker process, serve its requests, restart it when it dies
or stops making progress, and say truthfully how it is.

Policy (backoff, restart intensity, heartbeat bookkeeping) lives in ``_policy.py`` as
plain classes, the states and their transitions in ``_supervisor_status.py``, and one
spawn of the worker (serve it, watch its exit and its heartbeat, declare it dead) in
``_incarnation.py``. This module is :class:`Supervisor`, which runs incarnation after
incarnation and applies the policy between them (``Supervisor._run``), and
:func:`open_supervisor`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Unpack, final

import trio

from channel import MessageCodec
from channel._util import NoPublicConstructor

from ._arguments import check_codec, check_command
from ._incarnation import Incarnation
from ._observable import Observable
from ._options import SupervisorConfig, SupervisorOptions
from ._policy import ExitRecord
from ._responder import Handler
from ._spawn import is_stopped
from ._supervisor_status import Keep, RestartIntensityExceeded, StatusBoard, SupervisorStatus, WorkerState

__all__ = ["Supervisor", "open_supervisor"]

log = logging.getLogger(__name__)

_RESET_BACKOFF_AFTER = 10.0  # seconds RUNNING after which the next restart backs off from the start


@final
class Supervisor(metaclass=NoPublicConstructor):
    """The handle ``open_supervisor`` yields. See :func:`open_supervisor`."""

    def __init__(self, command: Sequence[str], codec: MessageCodec, handler: Handler, options: SupervisorConfig) -> None:
        self._command = list(command)
        self._codec = codec
        self._handler = handler
        self._options = options
        self._backoff = options.backoff()
        self._intensity = options.intensity()
        self._exits: list[ExitRecord] = []
        self._board = StatusBoard()
        self._current: Incarnation | None = None

    def __repr__(self) -> str:
        status = self.status.value
        return f"<actors.Supervisor {status.state.name} incarnation={status.incarnation} pid={status.pid}>"

    # ------------------------------------------------------------------ observing

    @property
    def status(self) -> Observable[SupervisorStatus]:
        """The current :class:`SupervisorStatus`; ``await status.wait_value(...)`` to watch it.
        (A watcher may see several quick changes as one; :meth:`history` has each.)"""
        return self._board.status

    def healthy(self) -> bool:
        """True iff the worker is alive and making progress, as of now: RUNNING, its
        channel open, its last heartbeat fresh, and (on Linux, read from ``/proc`` at
        each call) not stopped by a signal. False from the moment it dies, stops or
        its heartbeat goes stale, until a new incarnation has sent its first heartbeat."""
        return self.why_unhealthy() is None

    def why_unhealthy(self) -> str | None:
        """``None`` when :meth:`healthy`, else why not, in a few words: ``"starting"``,
        ``"stopped by a signal"``, ``"heartbeat stale"``, ``"closed its channel"``,
        ``"stuck"``, ``"stopping"``, ``"dead, backing off"``, ``"failed"`` or ``"stopped"``."""
        state = self._board.state
        current = self._current
        if state is not WorkerState.RUNNING or current is None:
            return _STATE_REASONS[state]
        if current.process is not None and is_stopped(current.process.pid):
            return "stopped by a signal"
        if not current.serving:
            return "closed its channel"
        if not current.liveness.fresh(trio.current_time()):
            return "heartbeat stale"
        return None

    def history(self) -> list[SupervisorStatus]:
        """Every transition (state, incarnation or pid changed), oldest first: the last 1,000."""
        return self._board.history()

    def heartbeat_age(self) -> float | None:
        """Seconds since the current incarnation's last heartbeat, now, or None."""
        return None if self._current is None else self._current.liveness.age(trio.current_time())

    async def wait_failed(self) -> None:
        """Wait until the restart intensity is exceeded, then raise it.

        Raises:
            RestartIntensityExceeded: always, once the supervisor has given up.
        """
        await self.status.wait_value(lambda status: status.state is WorkerState.FAILED)
        raise self._failure()

    def _failure(self) -> RestartIntensityExceeded:
        return RestartIntensityExceeded(self._exits, self._intensity.max_restarts, self._intensity.window)

    def _publish(self, state: WorkerState, *, loop_lag: float | Keep | None = Keep.KEEP) -> None:
        """Move to ``state`` with the current incarnation's heartbeat numbers as of now."""
        now = trio.current_time()
        liveness = None if self._current is None else self._current.liveness
        self._board.move(
            state,
            heartbeat_age=None if liveness is None else liveness.age(now),
            heartbeat_gap=None if liveness is None else liveness.last_gap,
            worst_heartbeat_gap=None if liveness is None else liveness.worst_gap(now),
            loop_lag=loop_lag,
        )

    def report_load(self, loop_lag: float) -> None:
        """Record the worker's own event-loop lag, in seconds (for a handler whose
        heartbeat message carries it): published as ``status.loop_lag``, and judged
        by :meth:`ready`."""
        self._publish(self._board.state, loop_lag=loop_lag)

    def ready(self) -> bool:
        """True iff the worker is :meth:`healthy` and not overloaded: its last heartbeat
        gap is at most ``overloaded_gap`` and its reported loop lag (if any) at most
        ``overloaded_lag``.

        Liveness and readiness are different signals, as in Kubernetes: a host
        restarts a worker that is not *healthy* (dead, stopped, stuck), and only
        stops sending work to one that is not *ready* (busy). Busy is never a reason
        to restart: the heartbeat jumps every queue, so a busy worker stays healthy.
        """
        if not self.healthy():
            return False
        status = self.status.value
        gap_ok = status.heartbeat_gap is None or status.heartbeat_gap <= self._options.overloaded_after
        lag_ok = status.loop_lag is None or status.loop_lag <= self._options.overloaded_lag
        return gap_ok and lag_ok

    # ------------------------------------------------------------------ running

    async def _run(self) -> None:
        """Spawn, serve, watch and restart until cancelled or the intensity is exceeded
        (only :func:`open_supervisor` runs it).

        Raises:
            RestartIntensityExceeded: too many restarts within the window (status FAILED).
        """
        number = 0
        while True:
            number += 1
            incarnation = Incarnation(
                number, self._command, self._codec, self._handler, self._options, self._board, self._publish
            )
            self._current = incarnation
            exit_record = await incarnation.run()
            self._exits.append(exit_record)
            del self._exits[: -max(self._intensity.max_restarts + 1, 1)]
            log.warning(
                "worker incarnation %d ended: %s (exit code %s)", number, exit_record.reason, exit_record.exit_code
            )
            now = exit_record.at
            if incarnation.running_since is not None and now - incarnation.running_since >= _RESET_BACKOFF_AFTER:
                self._backoff.reset()
            state = WorkerState.BACKING_OFF if self._intensity.allow(now) else WorkerState.FAILED
            self._board.move(
                state, heartbeat_age=self.heartbeat_age(), pid=None, last_exit=exit_record.exit_code,
                last_exit_reason=exit_record.reason,
            )
            if state is WorkerState.FAILED:
                log.error("%s", self._failure())
                raise self._failure()
            await trio.sleep(self._backoff.next_delay())

    def _stopped(self) -> None:
        """The supervisor was left: STOPPED, unless it had already FAILED."""
        if self._board.state is not WorkerState.FAILED:
            self._board.move(WorkerState.STOPPED, heartbeat_age=self.heartbeat_age(), pid=None)


_STATE_REASONS = {
    WorkerState.STARTING: "starting",
    WorkerState.RUNNING: "running",
    WorkerState.STUCK: "stuck",
    WorkerState.STOPPING: "stopping",
    WorkerState.BACKING_OFF: "dead, backing off",
    WorkerState.FAILED: "failed",
    WorkerState.STOPPED: "stopped",
}


@asynccontextmanager
async def open_supervisor(
    command: Sequence[str], codec: MessageCodec, handler: Handler, **options: Unpack[SupervisorOptions]
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
    The options (only ``heartbeat`` is required) are :class:`~actors.SupervisorOptions`.

    - Liveness is the heartbeat alone: a request of type ``heartbeat``, which the
      worker's main loop sends. No other request counts. A worker with no heartbeat
      within ``stuck_after`` (``start_timeout`` for the first) is stuck
      (:meth:`Incarnation.watch_heartbeat` decides). The time is counted from the
      later of the last heartbeat read and its answer: while the handler still
      answers a heartbeat, the worker (whose main loop may await that answer) is
      waiting on the supervisor and is not blamed for it.
    - Busy is not stuck. The heartbeat jumps every queue here: it is handled as it
      is read, outside ``max_concurrency`` (the worker's side lets it jump its own
      queue when it passes ``heartbeat=`` to ``connect_to_supervisor``). Load is
      seen, not punished: ``status`` carries the heartbeat gaps and any loop lag
      the worker reports (:meth:`Supervisor.report_load`), and
      :meth:`Supervisor.ready` turns False while the last gap is over
      ``overloaded_gap`` (default ``stuck_after / 2``) or the lag over
      ``overloaded_lag``; :meth:`Supervisor.healthy` stays the liveness signal.
    - A stuck worker is stopped (SIGTERM, SIGKILL after ``stop_timeout``; SIGKILL at
      once if it is stopped by SIGSTOP). One that exits (any code, any signal),
      closes its channel, sends garbage or makes no room for its replies for
      ``stuck_after`` is dead. Either way its requests are refused from that moment
      and its running handlers cancelled, and after a backoff (exponential from
      ``backoff_initial`` to ``backoff_max``, with jitter; reset after 10 s of
      RUNNING) a new incarnation is spawned.
    - More than ``max_restarts`` restarts within ``restart_window`` seconds: FAILED,
      no more restarts, the block is cancelled and :class:`RestartIntensityExceeded`
      is raised out of it, bare, whatever the block was doing (its own nursery, an
      outer one): the cancellation it got stays inside.
    - Leaving the block, however (normally, by its own exception, by cancellation
      from outside, by KeyboardInterrupt), stops the worker with the same escalation
      and reaps it: no orphan. The block's own exception comes out as it was raised
      (unwrapped from the exception group trio's nursery puts it in, if it is alone).
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
        TypeError: ``command`` is a string or not a sequence of strings (the message
            says what to pass), ``codec`` is not a codec (``channel.MessageCodec``), or ``handler``
            is not callable.
        ValueError: a timing or limit option is out of range.
        OSError: the command could not be spawned.
    """
    argv = check_command(command)
    check_codec(codec, "open_supervisor")
    if not callable(handler):
        raise TypeError(f"open_supervisor takes an async handler function, not {handler!r}")
    config = SupervisorConfig(**options)
    supervisor: Supervisor = Supervisor._create(argv, codec, handler, config)
    failure: list[RestartIntensityExceeded] = []
    try:
        async with trio.open_nursery() as nursery:

            async def run() -> None:
                try:
                    await supervisor._run()
                except RestartIntensityExceeded as exc:
                    failure.append(exc)
                    nursery.cancel_scope.cancel()  # the block's Cancelled ends in this scope

            nursery.start_soon(run)
            yield supervisor
            nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # The block's own exception, wrapped by the nursery: out bare when alone. The
        # Cancelled of our own scope never reach here (the scope took them).
        body_error = group.exceptions[0] if len(group.exceptions) == 1 else group
        if failure and not isinstance(body_error, (KeyboardInterrupt, SystemExit)):
            raise failure[0] from body_error
        if body_error is group:
            raise
        raise body_error from body_error.__cause__  # (hides the group, keeps its own cause)
    finally:
        supervisor._stopped()
    if failure:
        raise failure[0]
