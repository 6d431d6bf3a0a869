"""The options of a channel and of a supervisor: named and typed once, checked once.

Each set of options has two halves that ``mypy --strict`` keeps in step:

- a ``TypedDict`` (:class:`CommsOptions`, :class:`SupervisorOptions`): the keyword
  arguments every opener takes as ``**options: Unpack[...]``, so a misspelt or
  mistyped option is a type error at the call, and the one place each is documented;
- a frozen attrs class (:class:`ChannelConfig`, :class:`SupervisorConfig`): the
  defaults and the checks, built once from those keywords (``ChannelConfig(**options)``
  is type-checked against the ``TypedDict``) and carried from there on.
"""

from __future__ import annotations

import math
from typing import Any, Final, Required, TypedDict

import attrs

from channel import DEFAULT_MAX_FRAME_SIZE

from ._policy import Backoff, RestartIntensity

__all__ = ["ChannelConfig", "CommsOptions", "SupervisorConfig", "SupervisorOptions", "check_timeout"]


def check_timeout(timeout: float | None, name: str = "timeout") -> float | None:
    """Normalise a timeout: ``None`` or ``inf`` mean no deadline; otherwise > 0.

    Raises:
        ValueError: not a positive number, ``None`` or ``math.inf``.
    """
    if timeout is None or timeout == math.inf:
        return None
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0:
        raise ValueError(f"{name} must be a positive number of seconds, None or math.inf, not {timeout!r}")
    return float(timeout)


def _check_count(name: str, value: object, minimum: int = 1) -> None:
    if type(value) is not int or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, not {value!r}")


def _check_seconds(name: str, value: object) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < math.inf:
        raise ValueError(f"{name} must be a positive number of seconds, not {value!r}")


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


CREDIT_ENV: Final = "TRIO_COMMS_SUPERVISOR_CREDIT"
"""Set by :func:`~actors.open_supervisor` in each worker's environment: how many of the
worker's requests its responder reads and holds at once (queued and running). The
worker's :func:`~actors.connect_to_supervisor` keeps its requests on the wire (in
flight, and given up but unanswered) within it, so the worker can never out-queue
the supervisor and a heartbeat is never left unread behind bulk requests."""


def within_credit(config: ChannelConfig, credit: int) -> ChannelConfig:
    """``config`` with ``max_in_flight + max_unanswered <= credit`` (each at most as
    given; ``max_in_flight`` first, up to half)."""
    in_flight = max(1, min(config.max_in_flight, credit // 2))
    unanswered = max(1, min(config.unanswered_limit, credit - in_flight))
    if (in_flight, unanswered) == (config.max_in_flight, config.unanswered_limit):
        return config
    return attrs.evolve(config, max_in_flight=in_flight, max_unanswered=unanswered)


class CommsOptions(TypedDict, total=False):
    """The options of a channel, taken as keyword arguments by
    :func:`~actors.open_comms`, :func:`~actors.comms_in_thread` and
    :func:`~actors.connect_to_supervisor`. All are optional. ::

        async with actors.open_comms(stream, codec, timeout=10, max_in_flight=256) as comms:
            ...
    """

    timeout: float | None
    """The default deadline of each call, in seconds (default ``None``: none; a
    call's own ``timeout=`` overrides it)."""
    max_in_flight: int
    """Most requests written and not yet answered whose callers still wait (default
    1,024); later callers wait their turn, their deadlines running."""
    max_unanswered: int | None
    """Most written requests whose callers gave up while their replies are still due
    (default: ``max_in_flight``). One more and the peer counts as unresponsive: the
    channel closes with :class:`~actors.PeerNotAnswering` as the cause."""
    max_frame_size: int
    """The largest frame accepted from the peer (a larger reply fails only its
    caller) and the largest request sent (default 16 MiB)."""
    expect_hello: bool
    """The peer's first frame is an unsolicited response with id 0 (Airflow's
    ``StartTriggerer``): wait for it and keep its message as ``comms.hello`` before
    any request is sent (default ``False``: a hello is logged and ignored)."""
    hello_timeout: float
    """Seconds to wait for that hello (default 10)."""
    heartbeat: type | tuple[type, ...]
    """Request classes that take the priority lane: admitted ahead of every waiting
    request, outside ``max_in_flight``, at the head of the next write (default none)."""


@attrs.frozen(kw_only=True)
class ChannelConfig:
    """A channel's options with their defaults, checked when built.

    Raises:
        ValueError: a count is not an int >= 1, or a time is not a positive number.
    """

    timeout: float | None = None
    max_in_flight: int = 1024
    max_unanswered: int | None = None
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    expect_hello: bool = False
    hello_timeout: float = 10.0
    heartbeat: type | tuple[type, ...] = ()

    def __attrs_post_init__(self) -> None:
        check_timeout(self.timeout)
        _check_count("max_in_flight", self.max_in_flight)
        if self.max_unanswered is not None:
            _check_count("max_unanswered", self.max_unanswered)
        _check_count("max_frame_size", self.max_frame_size)
        _check_seconds("hello_timeout", self.hello_timeout)

    @property
    def default_timeout(self) -> float | None:
        """Each call's deadline unless it gives its own (``inf`` read as ``None``)."""
        return check_timeout(self.timeout)

    @property
    def unanswered_limit(self) -> int:
        return self.max_in_flight if self.max_unanswered is None else self.max_unanswered

    @property
    def stall_timeout(self) -> float:
        """How long a channel's writes may make no progress before the peer counts as
        not reading (:class:`~actors.PeerNotReading`): twice the default call
        ``timeout`` but at least 10 s, or 30 s for a channel without one. By then every
        call waiting behind those bytes has timed out, so the channel is of no use
        open; twice, so a peer only briefly slower than the deadline is not closed on."""
        timeout = self.default_timeout
        return 30.0 if timeout is None else max(10.0, 2 * timeout)

    @property
    def priority(self) -> frozenset[type]:
        return frozenset(_as_tuple(self.heartbeat))


class SupervisorOptions(TypedDict, total=False):
    """The options of :func:`~actors.open_supervisor`, as keyword arguments. Only
    ``heartbeat`` is required. ::

        async with actors.open_supervisor(argv, codec, handler, heartbeat=Heartbeat, stuck_after=10) as sup:
            ...
    """

    heartbeat: Required[type | tuple[type, ...]]
    """The request class(es) the worker's main loop sends to show it makes progress."""
    stuck_after: float
    """Seconds without a heartbeat after which a running worker is stuck (default 30)."""
    start_timeout: float
    """Seconds a new worker has to send its first heartbeat (default 30)."""
    stop_timeout: float
    """Seconds between SIGTERM and SIGKILL when a worker is stopped (default 5)."""
    backoff_initial: float
    """The first restart's delay; it doubles, with jitter, up to ``backoff_max``
    (default 0.5)."""
    backoff_max: float
    """The longest delay between restarts (default 30)."""
    max_restarts: int
    """More restarts than this within ``restart_window`` and the supervisor gives up:
    :class:`~actors.RestartIntensityExceeded` (default 5)."""
    restart_window: float
    """Seconds over which restarts are counted (default 60)."""
    hello: Any
    """A message sent to each new worker before anything else, as its frame 0
    (Airflow's ``StartTriggerer``; default none)."""
    max_concurrency: int
    """Most of the worker's requests handled at once (default 64)."""
    max_frame_size: int
    """The largest frame either way (default 16 MiB)."""
    fd: int
    """The worker's file descriptor for its end of the socket (default 0)."""
    own_process_group: bool
    """The worker leads a process group of its own, signalled and cleaned up as one
    (default ``True``)."""
    overloaded_gap: float | None
    """A heartbeat gap over this makes :meth:`~actors.Supervisor.ready` False
    (default ``stuck_after / 2``)."""
    overloaded_lag: float
    """A reported loop lag over this makes :meth:`~actors.Supervisor.ready` False
    (default 0.25)."""


@attrs.frozen(kw_only=True)
class SupervisorConfig:
    """A supervisor's options with their defaults, checked when built.

    Raises:
        ValueError: a time is not a positive number, a count or ``fd`` is out of
            range, or the backoff or restart intensity is inconsistent.
    """

    heartbeat: type | tuple[type, ...]
    stuck_after: float = 30.0
    start_timeout: float = 30.0
    stop_timeout: float = 5.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    max_restarts: int = 5
    restart_window: float = 60.0
    hello: Any = None
    max_concurrency: int = 64
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    fd: int = 0
    own_process_group: bool = True
    overloaded_gap: float | None = None
    overloaded_lag: float = 0.25

    def __attrs_post_init__(self) -> None:
        for name in ("stuck_after", "start_timeout", "stop_timeout", "overloaded_lag"):
            _check_seconds(name, getattr(self, name))
        if self.overloaded_gap is not None:
            _check_seconds("overloaded_gap", self.overloaded_gap)
        _check_count("fd", self.fd, minimum=0)
        _check_count("max_concurrency", self.max_concurrency)
        _check_count("max_frame_size", self.max_frame_size)
        self.backoff()  # checked now, not at the first restart
        self.intensity()

    @property
    def heartbeat_types(self) -> tuple[type, ...]:
        return _as_tuple(self.heartbeat)

    @property
    def overloaded_after(self) -> float:
        """The heartbeat gap over which the worker is not ready."""
        return self.stuck_after / 2 if self.overloaded_gap is None else self.overloaded_gap

    def backoff(self) -> Backoff:
        return Backoff(self.backoff_initial, self.backoff_max)

    def intensity(self) -> RestartIntensity:
        return RestartIntensity(self.max_restarts, self.restart_window)


@attrs.frozen(kw_only=True)
class ServeConfig:
    """:func:`~actors.serve`'s options with their defaults (documented there),
    checked when built.

    Raises:
        ValueError: ``max_concurrency`` or ``max_queued`` is not an int >= 1,
            ``drain_timeout`` is negative, ``max_unwritten`` or ``max_queued_bytes``
            negative, ``stall_timeout`` or ``handler_timeout`` not positive.
    """

    max_concurrency: int = 64
    hello: Any = None
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    drain_timeout: float = 5.0
    incarnation: int | None = None
    max_unwritten: int = 4 * 2**20
    stall_timeout: float = 30.0
    max_queued: int = 1024
    max_queued_bytes: int = 4 * 2**20
    priority: type | tuple[type, ...] = ()
    handler_timeout: float | None = None

    def __attrs_post_init__(self) -> None:
        _check_count("max_concurrency", self.max_concurrency)
        if not isinstance(self.drain_timeout, (int, float)) or not 0 <= self.drain_timeout <= math.inf:
            raise ValueError(f"drain_timeout must be a number of seconds >= 0, not {self.drain_timeout!r}")
        _check_count("max_queued", self.max_queued)
        _check_count("max_unwritten", self.max_unwritten, minimum=0)
        _check_count("max_queued_bytes", self.max_queued_bytes, minimum=0)
        if not isinstance(self.stall_timeout, (int, float)) or not 0 < self.stall_timeout <= math.inf:
            raise ValueError(f"stall_timeout must be a positive number of seconds, not {self.stall_timeout!r}")
        timeout = self.handler_timeout
        if timeout is not None and (not isinstance(timeout, (int, float)) or not 0 < timeout <= math.inf):
            raise ValueError(f"handler_timeout must be a positive number of seconds or None, not {timeout!r}")

    @property
    def priority_classes(self) -> tuple[type, ...]:
        """The ``priority`` classes (their wire tags are the codec's to say)."""
        return _as_tuple(self.priority)

    @property
    def handler_deadline(self) -> float | None:
        """``handler_timeout``, with ``inf`` read as none."""
        return None if self.handler_timeout == math.inf else self.handler_timeout
