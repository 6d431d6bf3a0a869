"""What a supervisor says about its worker: the states, every transition between them
(one table, every move checked, as ``_state.py`` keeps the channel's), the status
snapshot, and the error it raises when it gives up."""

from __future__ import annotations

import collections
import enum
import logging
from collections.abc import Sequence
from typing import Final

import attrs
import trio

from ._observable import Observable
from ._policy import ExitRecord

__all__ = ["Keep", "RestartIntensityExceeded", "StatusBoard", "SupervisorStatus", "WorkerState"]

log = logging.getLogger("actors._supervisor")


class WorkerState(enum.Enum):
    """Where the supervised worker is. See :class:`SupervisorStatus`."""

    STARTING = "starting"
    """Spawned; its first heartbeat has not come yet (it has ``start_timeout``)."""
    RUNNING = "running"
    """Heartbeating. Healthy while the last heartbeat is fresh."""
    STUCK = "stuck"
    """No heartbeat within ``stuck_after`` (or ``start_timeout``): about to be stopped."""
    STOPPING = "stopping"
    """Being stopped: SIGTERM, then SIGKILL after ``stop_timeout``."""
    BACKING_OFF = "backing_off"
    """Dead; waiting out the backoff before the next incarnation."""
    FAILED = "failed"
    """Restart intensity exceeded: no more restarts."""
    STOPPED = "stopped"
    """The supervisor was left; its worker has been stopped."""


_TRANSITIONS: Final = {
    # A new incarnation starts from STARTING (the first) or BACKING_OFF.
    WorkerState.STARTING: frozenset(
        {WorkerState.RUNNING, WorkerState.STUCK, WorkerState.STOPPING, WorkerState.BACKING_OFF,
         WorkerState.FAILED, WorkerState.STOPPED}
    ),
    WorkerState.RUNNING: frozenset(
        {WorkerState.STUCK, WorkerState.STOPPING, WorkerState.BACKING_OFF, WorkerState.FAILED, WorkerState.STOPPED}
    ),
    WorkerState.STUCK: frozenset({WorkerState.STOPPING, WorkerState.BACKING_OFF, WorkerState.FAILED, WorkerState.STOPPED}),
    WorkerState.STOPPING: frozenset({WorkerState.BACKING_OFF, WorkerState.FAILED, WorkerState.STOPPED}),
    WorkerState.BACKING_OFF: frozenset({WorkerState.STARTING, WorkerState.STOPPED}),
    WorkerState.FAILED: frozenset(),
    WorkerState.STOPPED: frozenset(),
}
"""Every legal move. A move to the same state is not a transition (a new
incarnation's STARTING after the first, a heartbeat's new age) and is always allowed,
except out of FAILED and STOPPED, which are final."""

_HISTORY = 1000  # transitions kept by StatusBoard.history()


@attrs.frozen(kw_only=True)
class SupervisorStatus:
    """A snapshot of a supervisor, published in ``supervisor.status`` on every change."""

    state: WorkerState
    """The worker's state."""
    pid: int | None
    """The current incarnation's process id (None before the first spawn)."""
    incarnation: int
    """1, 2, ... one per spawn (0 before the first)."""
    restarts: int
    """Spawns after the first."""
    last_exit: int | None
    """The last dead incarnation's return code (negative: the signal that killed it)."""
    last_exit_reason: str | None
    """Why it ended: ``"exited"``, ``"stuck"``, ``"no first heartbeat"``,
    ``"protocol error"``, ``"closed its channel"`` or ``"supervisor stopped"``."""
    heartbeat_age: float | None
    """Seconds since the last heartbeat when this snapshot was taken, or None."""
    since: float
    """When the state began, on trio's clock."""
    heartbeat_gap: float | None = None
    """Seconds between the current incarnation's last two heartbeats (None before
    its second): how far behind its main loop runs, a load signal, not a liveness one."""
    worst_heartbeat_gap: float | None = None
    """The longest such gap in the last 30 s (the open one included)."""
    loop_lag: float | None = None
    """The worker's own event-loop lag, in seconds, as last reported with
    :meth:`~actors.Supervisor.report_load` (None if it never reports it)."""


class RestartIntensityExceeded(Exception):
    """Raised out of ``open_supervisor`` (and by ``wait_failed``) when the worker had to
    be restarted more than ``max_restarts`` times within ``restart_window`` seconds.

    :attr:`exits` are the recent incarnations' ends (:class:`ExitRecord`), newest last.
    """

    def __init__(self, exits: Sequence[ExitRecord], max_restarts: int, restart_window: float) -> None:
        summary = ", ".join(f"#{e.incarnation} {e.reason} ({e.exit_code})" for e in exits[-(max_restarts + 1) :])
        super().__init__(
            f"worker restarted more than {max_restarts} times within {restart_window:g} s; giving up. Exits: {summary}"
        )
        self.exits = list(exits)


class Keep(enum.Enum):
    """For :meth:`StatusBoard.move`: leave this field as it is."""

    KEEP = "keep"


class StatusBoard:
    """The one place a supervisor's status changes: every move is checked against the
    transition table, published in :attr:`status` and, if it is a transition (state,
    incarnation or pid changed), kept in :meth:`history`."""

    def __init__(self) -> None:
        first = SupervisorStatus(
            state=WorkerState.STARTING, pid=None, incarnation=0, restarts=0, last_exit=None,
            last_exit_reason=None, heartbeat_age=None, since=trio.current_time(),
        )
        self.status: Observable[SupervisorStatus] = Observable(first)
        self._history: collections.deque[SupervisorStatus] = collections.deque([first], maxlen=_HISTORY)

    @property
    def state(self) -> WorkerState:
        return self.status.value.state

    def history(self) -> list[SupervisorStatus]:
        return list(self._history)

    def move(
        self,
        state: WorkerState,
        *,
        heartbeat_age: float | None,
        heartbeat_gap: float | None = None,
        worst_heartbeat_gap: float | None = None,
        loop_lag: float | Keep | None = Keep.KEEP,
        pid: int | Keep | None = Keep.KEEP,
        incarnation: int | None = None,
        restarts: int | None = None,
        last_exit: int | Keep | None = Keep.KEEP,
        last_exit_reason: str | Keep | None = Keep.KEEP,
    ) -> None:
        """Publish ``state`` with the given changes.

        Raises:
            AssertionError: ``state`` is not a legal move from the current one (a bug).
        """
        current = self.status.value
        if state is not current.state and state not in _TRANSITIONS[current.state]:
            raise AssertionError(f"worker state cannot go from {current.state.name} to {state.name}")
        if current.state in (WorkerState.FAILED, WorkerState.STOPPED):
            raise AssertionError(f"worker state {current.state.name} is final")
        new = SupervisorStatus(
            state=state,
            pid=current.pid if pid is Keep.KEEP else pid,
            incarnation=current.incarnation if incarnation is None else incarnation,
            restarts=current.restarts if restarts is None else restarts,
            last_exit=current.last_exit if last_exit is Keep.KEEP else last_exit,
            last_exit_reason=current.last_exit_reason if last_exit_reason is Keep.KEEP else last_exit_reason,
            heartbeat_age=heartbeat_age,
            since=current.since if state is current.state else trio.current_time(),
            heartbeat_gap=heartbeat_gap,
            worst_heartbeat_gap=worst_heartbeat_gap,
            loop_lag=current.loop_lag if loop_lag is Keep.KEEP else loop_lag,
        )
        if (new.state, new.incarnation, new.pid) != (current.state, current.incarnation, current.pid):
            self._history.append(new)  # transitions only: heartbeats would crowd them out
        self.status._set(new)
        if new.state is not current.state:
            log.debug("worker %s (incarnation %d, pid %s)", new.state.name, new.incarnation, new.pid)
