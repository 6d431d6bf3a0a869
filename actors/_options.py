"""Checking a channel's options once, for every way of opening one."""

from __future__ import annotations

import math

__all__ = ["check_limits", "check_timeout", "stall_timeout_for"]


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


def check_limits(max_in_flight: int, max_unanswered: int | None, hello_timeout: float) -> int:
    """Validate the channel's limits; return ``max_unanswered`` with its default.

    Raises:
        ValueError: a limit is not an int >= 1, or ``hello_timeout`` is not positive.
    """
    if type(max_in_flight) is not int or max_in_flight < 1:
        raise ValueError(f"max_in_flight must be an int >= 1, not {max_in_flight!r}")
    if max_unanswered is None:
        max_unanswered = max_in_flight
    if type(max_unanswered) is not int or max_unanswered < 1:
        raise ValueError(f"max_unanswered must be an int >= 1, not {max_unanswered!r}")
    check_timeout(hello_timeout, "hello_timeout")
    return max_unanswered


def stall_timeout_for(timeout: float | None) -> float:
    """How long a channel's writes may make no progress before the peer counts as
    not reading (:class:`~actors.PeerNotReading`): twice the default call
    ``timeout`` but at least 10 s, or 30 s for a channel without one. By then every
    call waiting behind those bytes has timed out, so the channel is of no use
    open; twice, so a peer only briefly slower than the deadline is not closed on."""
    return 30.0 if timeout is None else max(10.0, 2 * timeout)
