"""The channel's statistics: the counters the actor keeps, and their frozen snapshot."""

from __future__ import annotations

import attrs

__all__ = ["CommsStatistics", "Counters"]


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
    """Routed replies whose body did not decode or was not the declared reply type
    (the caller got ``MessageDecodeError``)."""
    replies_too_large: int
    """Replies over ``max_frame_size``, skipped unread (the caller got ``ReplyTooLarge``)."""
    calls_timed_out: int
    """Calls that raised ``RequestTimeout``."""
    calls_cancelled: int
    """Calls cancelled by their caller (trio cancel scope, asyncio task cancel)."""
    calls_closed: int
    """Calls that raised ``ChannelClosed``, pending ones and later ones alike."""
    in_flight: int
    """Requests written and not yet answered, including ones whose caller gave up."""
    in_flight_abandoned: int
    """Of :attr:`in_flight`, those whose caller gave up: they count towards
    ``max_unanswered``, not ``max_in_flight``."""
    queued: int
    """Requests accepted but not yet written (waiting for the writer or for room in flight)."""
    bytes_sent: int
    """Bytes written to the stream."""
    bytes_received: int
    """Bytes read from the stream."""


@attrs.define(slots=True)
class Counters:
    """The actor's running counts: one object, changed only by the actor's methods.

    Its fields are :class:`CommsStatistics`' counters, by name; the rest of a
    snapshot (what is in flight and queued, the bytes) is read from the actor.
    """

    requests_sent: int = 0
    replies_routed: int = 0
    replies_late: int = 0
    replies_unknown: int = 0
    requests_unanswered: int = 0
    replies_remote_error: int = 0
    replies_undecodable: int = 0
    replies_too_large: int = 0
    calls_timed_out: int = 0
    calls_cancelled: int = 0
    calls_closed: int = 0

    def snapshot(
        self, *, in_flight: int, in_flight_abandoned: int, queued: int, bytes_sent: int, bytes_received: int
    ) -> CommsStatistics:
        return CommsStatistics(
            **attrs.asdict(self, recurse=False),
            in_flight=in_flight,
            in_flight_abandoned=in_flight_abandoned,
            queued=queued,
            bytes_sent=bytes_sent,
            bytes_received=bytes_received,
        )
