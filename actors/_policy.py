"""The supervisor's policy, apart from any I/O: backoff, restart intensity, liveness.

Plain classes fed with plain numbers (seconds on whatever clock the caller uses), so
they are tested the way the frame decoder is, and the trio driver in
``_supervisor.py`` only asks them what to do.
"""

from __future__ import annotations

import collections
import math
import random

import attrs

__all__ = ["Backoff", "ExitRecord", "Liveness", "RestartIntensity"]


class Backoff:
    """Exponential backoff with jitter: ``initial * 2**n``, capped at ``maximum``, each
    delay drawn uniformly from its upper half so restarts of many workers spread out.

    ::

        backoff = Backoff(0.5, 30.0)
        backoff.next_delay()   # in [0.25, 0.5]; then [0.5, 1.0]; ... at most 30
        backoff.reset()        # after the worker has run well for a while

    Raises:
        ValueError: ``initial`` is not positive or ``maximum`` is below it.
    """

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None) -> None:
        if not initial > 0 or not maximum >= initial:
            raise ValueError(f"backoff needs 0 < initial <= maximum, got {initial!r} and {maximum!r}")
        self.initial = initial
        self.maximum = maximum
        self._rng = rng or random.Random()
        self._attempt = 0

    def next_delay(self) -> float:
        """The delay before the next restart; each call doubles the next one's ceiling."""
        ceiling = min(self.maximum, self.initial * 2.0**self._attempt)
        self._attempt = min(self._attempt + 1, 64)
        return ceiling * (0.5 + 0.5 * self._rng.random())

    def reset(self) -> None:
        """Start again from ``initial`` (the worker has proved itself healthy)."""
        self._attempt = 0


@attrs.frozen(kw_only=True)
class ExitRecord:
    """One incarnation's end, as kept for :class:`~actors.RestartIntensityExceeded`."""

    incarnation: int
    """Which spawn it was (1, 2, ...)."""
    exit_code: int | None
    """Its return code (negative: killed by that signal), or ``None`` if unknown."""
    reason: str
    """Why it ended: ``"exited"``, ``"stuck"``, ``"protocol error"``, ``"no first heartbeat"``, ..."""
    at: float
    """When, on the supervisor's clock."""


class RestartIntensity:
    """Erlang/OTP's restart intensity: at most ``max_restarts`` within ``window`` seconds.

    ::

        intensity = RestartIntensity(5, 60.0)
        if not intensity.allow(now):    # a 6th restart within 60 s
            give_up()

    Raises:
        ValueError: ``max_restarts`` is negative or ``window`` is not positive.
    """

    def __init__(self, max_restarts: int, window: float) -> None:
        if type(max_restarts) is not int or max_restarts < 0 or not window > 0:
            raise ValueError(f"intensity needs max_restarts >= 0 and window > 0, got {max_restarts!r}, {window!r}")
        self.max_restarts = max_restarts
        self.window = window
        self._restarts: collections.deque[float] = collections.deque()

    def allow(self, now: float) -> bool:
        """Record a restart wanted at ``now``; False if it would exceed the intensity."""
        while self._restarts and self._restarts[0] <= now - self.window:
            self._restarts.popleft()
        if len(self._restarts) >= self.max_restarts:
            return False
        self._restarts.append(now)
        return True

    def recent(self, now: float) -> int:
        """Restarts within the window ending at ``now``."""
        return sum(1 for t in self._restarts if t > now - self.window)


class Liveness:
    """Heartbeat bookkeeping for one incarnation: is the worker's main loop alive?

    Only heartbeats count (the worker's main loop sends them); no other request does.
    Before the first heartbeat the worker has ``start_timeout``; after it, each
    heartbeat must come within ``stuck_after`` of the last one, or of the answer to
    it, whichever is later. While a heartbeat is still being answered the worker is
    waiting on us, not stuck: there is no deadline until the answer is given (a
    worker whose main loop awaits each heartbeat's reply is never blamed for the
    time its supervisor's handler takes).

    ::

        live = Liveness(stuck_after=30, start_timeout=30)
        live.spawned(now)
        live.heartbeat(now)      # read: from now on being answered
        live.answered(now)       # its reply given
        live.deadline()          # when it counts as stuck if nothing more comes
        live.is_stuck(now)
    """

    GAP_WINDOW = 30.0
    """Seconds of heartbeat gaps kept for :meth:`worst_gap`."""

    def __init__(self, *, stuck_after: float, start_timeout: float) -> None:
        if not stuck_after > 0 or not start_timeout > 0:
            raise ValueError("stuck_after and start_timeout must be positive")
        self.stuck_after = stuck_after
        self.start_timeout = start_timeout
        self.spawned_at = 0.0
        self.last_heartbeat: float | None = None
        self.last_gap: float | None = None
        """Seconds between the last two heartbeats (None before the second)."""
        self._gaps: collections.deque[tuple[float, float]] = collections.deque()  # (when, gap)
        self.answering = 0
        """Heartbeats read and not yet answered."""
        self._answered_at = 0.0

    def spawned(self, now: float) -> None:
        self.spawned_at = now
        self.last_heartbeat = None
        self.last_gap = None
        self._gaps.clear()
        self.answering = 0
        self._answered_at = 0.0

    def heartbeat(self, now: float) -> bool:
        """Record a heartbeat, read and now being answered (see :meth:`answered`);
        True if it was the incarnation's first."""
        first = self.last_heartbeat is None
        if self.last_heartbeat is not None:
            self.last_gap = now - self.last_heartbeat
            self._gaps.append((now, self.last_gap))
            while self._gaps and self._gaps[0][0] < now - self.GAP_WINDOW:
                self._gaps.popleft()
        self.last_heartbeat = now
        self.answering += 1
        return first

    def answered(self, now: float) -> None:
        """A heartbeat's answer was given (or it was refused, or its handler ended)."""
        if self.answering > 0:
            self.answering -= 1
            self._answered_at = now

    def worst_gap(self, now: float) -> float | None:
        """The longest gap between heartbeats in the last :attr:`GAP_WINDOW` seconds,
        counting the one still open (since the last heartbeat), or None before the first."""
        if self.last_heartbeat is None:
            return None
        recent = [gap for when, gap in self._gaps if when >= now - self.GAP_WINDOW]
        return max([*recent, now - self.last_heartbeat])

    def deadline(self) -> float:
        """The time by which the next heartbeat must come (infinity while one is
        being answered)."""
        if self.last_heartbeat is None:
            return self.spawned_at + self.start_timeout
        if self.answering:
            return math.inf
        return max(self.last_heartbeat, self._answered_at) + self.stuck_after

    def is_stuck(self, now: float) -> bool:
        return now >= self.deadline()

    def age(self, now: float) -> float | None:
        """Seconds since the last heartbeat, or ``None`` before the first."""
        return None if self.last_heartbeat is None else now - self.last_heartbeat

    def fresh(self, now: float) -> bool:
        """A heartbeat has come and the next is not yet overdue."""
        return self.last_heartbeat is not None and now < self.deadline()
