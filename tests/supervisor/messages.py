"""Messages shared by the supervisor tests and their worker processes."""

from __future__ import annotations

import attrs

from channel import Codec


@attrs.frozen
class Heartbeat:
    """Sent by a worker's main loop only."""


@attrs.frozen
class Work:
    """Any other request: it must never count as liveness."""

    n: int


@attrs.frozen
class Ack:
    incarnation: int | None


@attrs.frozen
class Welcome:
    greeting: str


CODEC = Codec([Heartbeat, Work, Ack, Welcome])
