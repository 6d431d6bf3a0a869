"""What a supervisor says about its worker: the states, the status snapshot, and the
error it raises when it gives up."""

from __future__ import annotations

import enum
from collections.abc import Sequence

import attrs

from ._policy import ExitRecord

__all__ = ["RestartIntensityExceeded", "SupervisorStatus", "WorkerState"]


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
