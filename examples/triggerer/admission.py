"""Admission control: how many triggers the runner should run at once, from its load.

A plain class fed with plain numbers (the runner's load, reported in each sync), in
the spirit of Netflix's concurrency-limits AIMD limiter and TCP's congestion window:
while the runner keeps up, the limit grows each sync it is actually used (by half
until the first overload, a slow start; then by a step, at least 5%); when the
runner's loop lags, work queues for its threads or its requests come back slowly,
the limit is cut by a factor. ``--capacity`` is
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
    thread_wait: float = 0.0
    """The longest any trigger's work waited for a worker thread since the last sync
    (still waiting included): work queued for threads, measured as the time a
    trigger's own deadline loses to it."""
    request_latency: float = 0.0
    """The 90th percentile latency of its triggers' requests since the last sync,
    as each caller saw it: how much slower every trigger runs when the runner is
    short of CPU, which no queue shows."""
    running: int
    """The most triggers it ran at once since the last sync: how much of the limit it used."""


class AdmissionControl:
    """AIMD: additive increase while the runner keeps up, multiplicative decrease when
    it does not.

    ::

        control = AdmissionControl(ceiling=1000)
        control.limit                                     # 50 at first
        control.update(Load(loop_lag=0.01, running=50))   # 75: slow start
        control.update(Load(loop_lag=0.4, running=75))    # 52: cut
        control.update(Load(loop_lag=0.01, running=52))   # 62: a step from now on
        control.restart()                                 # a new runner incarnation: 50 again

    Overloaded means ``loop_lag > target_lag``, ``thread_wait >
    target_thread_wait`` or ``request_latency > target_latency``: the runner's loop
    runs late, its triggers' work waits for threads (time their own deadlines
    lose), or their requests come back slowly (as in Netflix's latency-based
    limiters: a trigger of 30 sequential requests must average under 100 ms each
    to finish in a 3 s deadline, so 50 ms is the default target). The limit grows only while it is used (``running`` at
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
        target_thread_wait: float = 0.25,
        target_latency: float = 0.05,
        used_share: float = 0.8,
    ) -> None:
        if ceiling < 1 or not floor >= 1 or not 0 < decrease < 1 or not target_lag > 0:
            raise ValueError("admission control needs ceiling >= 1, floor >= 1, 0 < decrease < 1, target_lag > 0")
        self.ceiling = ceiling
        self.floor = min(floor, ceiling)
        self.initial = min(ceiling, max(self.floor, initial if initial is not None else 50))
        self.step = step if step is not None else 10
        self._slow_start = True  # grow by half each sync until the first overload, as TCP does
        self.decrease = decrease
        self.target_lag = target_lag
        self.target_thread_wait = target_thread_wait
        self.target_latency = target_latency
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
        self.overloaded = (
            load.loop_lag > self.target_lag
            or load.thread_wait > self.target_thread_wait
            or load.request_latency > self.target_latency
        )
        if self.overloaded:
            self._slow_start = False
            self._limit = max(float(self.floor), self._limit * self.decrease)
        elif load.running >= self.used_share * self._limit:
            grown = self._limit * 1.5 if self._slow_start else self._limit + max(self.step, self._limit * 0.05)
            self._limit = min(float(self.ceiling), grown)
        return self.limit

    def restart(self) -> None:
        """A new runner incarnation: ramp up again from the initial limit."""
        self._limit = float(self.initial)
        self._slow_start = True
        self.overloaded = False
