"""The channel's state and statistics."""

from __future__ import annotations

import enum

import attrs

__all__ = ["ChannelState", "CommsStatistics"]


class ChannelState(enum.Enum):
    """Where a channel is in its life. Observable as ``comms.state`` (an ``AsyncValue``)."""

    OPEN = "open"
    """Calls are accepted and the actor is reading and writing."""
    CLOSING = "closing"
    """The close has begun: every call already fails; the stream is being closed."""
    CLOSED = "closed"
    """The stream is closed; ``comms.close_cause`` says why."""


@attrs.frozen(kw_only=True)
class CommsStatistics:
    """A snapshot of one channel's counters, from ``comms.statistics()``.

    Every written request ends as exactly one of routed, late or unanswered, so
    ``requests_sent == replies_routed + replies_late + requests_unanswered + in_flight``
    holds at every snapshot.
    """

    requests_sent: int
    """Requests written to the stream."""
    replies_routed: int
    """Replies handed to the caller that was waiting for them (error replies included)."""
    replies_late: int
    """Replies that arrived after their caller gave up (timeout or cancel): dropped."""
    replies_unknown: int
    """Replies whose id matches no request in flight (never sent, or answered twice): dropped."""
    requests_unanswered: int
    """Written requests whose reply never came because the channel closed."""
    replies_remote_error: int
    """Routed replies that were error responses (the caller got ``RemoteError``)."""
    replies_undecodable: int
    """Routed replies whose body did not decode (the caller got ``MessageDecodeError``)."""
    calls_timed_out: int
    """Calls that raised ``RequestTimeout``."""
    calls_cancelled: int
    """Calls cancelled by their caller (trio cancel scope, asyncio task cancel)."""
    calls_closed: int
    """Calls that raised ``ChannelClosed``, pending ones and later ones alike."""
    in_flight: int
    """Requests written and not yet answered (including ones whose caller gave up)."""
    queued: int
    """Requests accepted but not yet written (waiting for the writer or for room in flight)."""
    bytes_sent: int
    """Bytes written to the stream."""
    bytes_received: int
    """Bytes read from the stream."""
