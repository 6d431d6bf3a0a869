"""The messages both processes share, and their codec."""

from __future__ import annotations

import attrs

from channel import Codec, Request


@attrs.frozen
class TriggerSpec:
    """A trigger to start: its id, kind and attempt."""

    id: int
    kind: str
    attempt: int


@attrs.frozen
class TriggerEvent:
    """A trigger's outcome, reported in the next sync."""

    id: int
    succeeded: bool
    result: str | None = None
    error: str | None = None


@attrs.frozen
class SyncResult:
    start: list[TriggerSpec]
    cancel: list[int]


@attrs.frozen
class Sync(Request[SyncResult]):
    """The runner main loop's state changes, every half second: its heartbeat.

    It asks for up to ``free`` new triggers, and reports which ones it runs.
    """

    events: list[TriggerEvent]
    running: list[int]
    free: int
    requests: dict[str, int]  # requests made since the last sync, by caller kind
    misroutes: int
    channel: dict[str, int]  # the runner's CommsStatistics, as of this sync
    loop_lag: float = 0.0  # the worst lateness of its loop's 50 ms tick since the last sync
    threads_waiting: int = 0  # trigger work waiting for a worker thread now
    thread_wait: float = 0.0  # the longest any thread work waited to start since the last sync
    request_latency: float = 0.0  # 99th percentile of its triggers' request latency since the last sync
    peak_running: int = 0  # the most triggers it ran at once since the last sync
    rss_kb: int = 0  # its peak resident memory so far


@attrs.frozen
class LoopBlocked(Request[None]):
    """Sent from the runner's watchdog thread: trigger ``trigger_id`` blocked the loop."""

    trigger_id: int
    seconds: float


@attrs.frozen
class VariableResult:
    key: str
    value: str


@attrs.frozen
class GetVariable(Request[VariableResult]):
    key: str


@attrs.frozen
class ConnectionResult:
    conn_id: str
    host: str


@attrs.frozen
class GetConnection(Request[ConnectionResult]):
    conn_id: str


@attrs.frozen
class TaskStatesResult:
    dag_id: str
    states: dict[str, str]


@attrs.frozen
class GetTaskStates(Request[TaskStatesResult]):
    dag_id: str
    run_ids: list[str]


CODEC = Codec(
    [
        Sync,
        SyncResult,
        TriggerSpec,
        TriggerEvent,
        LoopBlocked,
        GetVariable,
        VariableResult,
        GetConnection,
        ConnectionResult,
        GetTaskStates,
        TaskStatesResult,
    ]
)
