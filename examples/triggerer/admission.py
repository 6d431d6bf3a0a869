"""Admission control: how many triggers the runner should run at once, from its load.

A plain class fed with plain numbers (the runner's load, reported in each sync), in
the spirit of Netflix's concurrency-limits AIMD limiter: while the runner keeps up,
the limit grows by a fixed step each sync it is actually used; when the runner's loop
lags or work queues for its threads, the limit is cut by a factor. ``--capacity`` is
the ceiling; a new runner incarnation starts again from the initial limit and ramps
up, instead of being handed the whole backlog at once. So a runner is given work as
fast as it absorbs it: under overload throughput plateaus, and nothing is started
only to time out waiting for a loop or a thread.
"""

from __future__ import annotations

import attrs

__all__ = ["AdmissionControl", "Load"]


@attrs.frozen(kw_only=True)
class Load:
    """What a runner reports about itself in a sync."""

    loop_lag: float
    """Seconds its event loop ran late since the last sync (the worst tick)."""
    threads_waiting: int
    """Trigger work waiting for a worker thread now."""
    running: int
    """The most triggers it ran at once since the last sync: how much of the limit it used."""


class AdmissionControl:
    """AIMD: additive increase while the runner keeps up, multiplicative decrease when
    it does not.

    ::

        control = AdmissionControl(ceiling=1000)
        control.limit                 # 100 at first
        control.update(Load(loop_lag=0.01, threads_waiting=0, running=100))  # 150
        control.update(Load(loop_lag=0.4, threads_waiting=0, running=150))   # 105
        control.restart()             # a new runner incarnation: 100 again

    Overloaded means ``loop_lag > target_lag`` or ``threads_waiting >
    max_threads_waiting``. The limit grows only while it is used (``running`` at
    least ``used_share`` of it), so an idle runner does not bank a limit it never
    proved it can carry.

    Raises:
        ValueError: a parameter is out of range.
    """

    def __init__(
        self,
        ceiling: int,
        *,
        floor: int = 10,
        initial: int | None = None,
        step: int | None = None,
        decrease: float = 0.7,
        target_lag: float = 0.1,
        max_threads_waiting: int = 40,
        used_share: float = 0.8,
    ) -> None:
        if ceiling < 1 or not floor >= 1 or not 0 < decrease < 1 or not target_lag > 0:
            raise ValueError("admission control needs ceiling >= 1, floor >= 1, 0 < decrease < 1, target_lag > 0")
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.initial = min(ceiling, max(self.floor, initial if initial is not None else ceiling // 10))
        self.step = step if step is not None else max(1, ceiling // 20)
        self.decrease = decrease
        self.target_lag = target_lag
        self.max_threads_waiting = max_threads_waiting
        self.used_share = used_share
        self._limit = float(self.initial)
        self.overloaded = False
        """Whether the last update found the runner overloaded."""

    @property
    def limit(self) -> int:
        """How many triggers the runner may run at once now."""
        return int(self._limit)

    def update(self, load: Load) -> int:
        """Take one sync's load into account; return the new limit."""
        self.overloaded = load.loop_lag > self.target_lag or load.threads_waiting > self.max_threads_waiting
        if self.overloaded:
            self._limit = max(float(self.floor), self._limit * self.decrease)
        elif load.running >= self.used_share * self._limit:
            self._limit = min(float(self.ceiling), self._limit + self.step)
        return self.limit

    def restart(self) -> None:
        """A new runner incarnation: ramp up again from the initial limit."""
        self._limit = float(self.initial)
        self.overloaded = False
