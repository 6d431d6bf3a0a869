"""Whole scenarios for the routing property: who calls, what the peer does, what must hold.

A scenario is drawn by hypothesis: a set of callers of every kind, the requests each
makes in turn (body size, deadline, cancellation, and what the peer will do with it),
and a peer policy (reply order, delays, replies to ids never sent). ``targets`` runs it
against trio-comms or the broken reference, with ``scripted_peer`` on the other end of
a real socketpair, and every call's outcome is judged here by :func:`violations`.

The peer decides by content: each request's text is a unique key, and the policy maps
keys to actions. So any reply that reaches the wrong caller is visible as content
that is not the caller's own.
"""

from __future__ import annotations

from typing import Any

import attrs
from hypothesis import strategies as st

import actors
from channel import MessageDecodeError
from tests.actors.helpers import Echo, Echoed

# How late a call may end after its own deadline. Generous because the machines are
# shared and noisy; a hang is still caught, as it never ends at all.
DEADLINE_SLACK = 1.0
# A call with no deadline of its own must still end within this.
SCENARIO_BOUND = 10.0
# The broken reference's calls are cut off after this, so that its runs end.
REFERENCE_SAFETY = 2.0

CALLER_KINDS = ("trio", "to_thread", "thread", "asyncio", "asgiref", "greenback")
ACTIONS = ("answer", "error", "undecodable", "late")
ERROR_CODE = "E_SCENARIO"


@attrs.frozen
class Request:
    key: str
    size: int
    action: str
    timeout: float | None
    cancel_after: float | None  # trio and asyncio callers only


@attrs.frozen
class Caller:
    kind: str
    requests: tuple[Request, ...]


@attrs.frozen
class PeerPolicy:
    batch: int  # replies are held until this many are waiting (or the peer goes idle)
    seed: int  # shuffles each batch
    max_delay: float  # before each reply
    unknown_replies: int  # replies to ids never sent


@attrs.frozen
class Scenario:
    callers: tuple[Caller, ...]
    peer: PeerPolicy

    def requests(self) -> list[Request]:
        return [r for c in self.callers for r in c.requests]


@attrs.define
class CallRecord:
    caller: Caller
    request: Request
    outcome: str = "hung"  # "value" | "error" | "cancelled" | "hung"
    value: Any = None
    elapsed: float = 0.0


# ------------------------------------------------------------------ strategies


@st.composite
def requests(draw: st.DrawFn, kind: str, prefix: str) -> Request:
    size = draw(st.sampled_from([0, 10, 100, 1000]) | st.integers(0, 64 * 1024))
    action = draw(st.sampled_from(ACTIONS))
    timeout = draw(st.none() | st.floats(0.02, 0.5))
    if action == "late" and timeout is None:
        timeout = draw(st.floats(0.02, 0.3))
    cancel_after = None
    if kind in ("trio", "asyncio") and draw(st.integers(0, 4)) == 0:
        cancel_after = draw(st.floats(0.0, 0.05))
    return Request(key=prefix, size=size, action=action, timeout=timeout, cancel_after=cancel_after)


@st.composite
def scenarios(draw: st.DrawFn, kinds: tuple[str, ...] = CALLER_KINDS, max_callers: int = 8) -> Scenario:
    callers = []
    for index in range(draw(st.integers(1, max_callers))):
        kind = draw(st.sampled_from(kinds))
        count = draw(st.integers(1, 4))
        reqs = tuple(draw(requests(kind, f"{kind}-{index}-{n}")) for n in range(count))
        callers.append(Caller(kind=kind, requests=reqs))
    peer = PeerPolicy(
        batch=draw(st.integers(1, 8)),
        seed=draw(st.integers(0, 2**32 - 1)),
        max_delay=draw(st.sampled_from([0.0, 0.001, 0.005])),
        unknown_replies=draw(st.integers(0, 3)),
    )
    return Scenario(callers=tuple(callers), peer=peer)


def message_for(request: Request) -> Echo:
    return Echo(text=request.key + ":" + "x" * request.size)


def key_of(text: str) -> str:
    return text.split(":", 1)[0]


# ------------------------------------------------------------------ judging


def _deadline(request: Request) -> float | None:
    limits = [t for t in (request.timeout, request.cancel_after) if t is not None]
    return min(limits) if limits else None


def violations(records: list[CallRecord]) -> list[str]:
    """Everything that went wrong, each prefixed by its kind ("misrouted: ...")."""
    found = []
    for record in records:
        request, value = record.request, record.value
        where = f"{record.caller.kind} {request.key} ({request.action})"
        deadline = _deadline(request)
        bound = (deadline if deadline is not None else SCENARIO_BOUND) + DEADLINE_SLACK
        if record.outcome == "hung" or record.elapsed > bound:
            found.append(f"overdue: {where} still waiting after {record.elapsed:.2f}s (bound {bound:.2f}s)")
            continue
        if record.outcome == "cancelled":
            if request.cancel_after is None:
                found.append(f"undocumented: {where} was cancelled without a cancel")
            continue
        if record.outcome == "value":
            if not isinstance(value, Echoed) or key_of(value.text) != request.key:
                found.append(f"misrouted: {where} got {str(value)[:80]}")
            elif request.action != "answer":
                found.append(f"undocumented: {where} got a reply where the peer sent {request.action}")
            elif value.text != message_for(request).text:
                found.append(f"misrouted: {where} got a reply with another body")
            continue
        error = value
        if isinstance(error, RuntimeError) and "out of order" in str(error):
            found.append(f"misrouted: {where} raised {error}")
        elif isinstance(error, actors.RemoteError):
            if (error.detail or {}).get("key") != request.key:
                found.append(f"misrouted: {where} got the error reply for {error.detail}")
            elif request.action != "error":
                found.append(f"undocumented: {where} got an error reply where the peer sent {request.action}")
        elif isinstance(error, MessageDecodeError):
            if request.action != "undecodable":
                found.append(f"misrouted: {where} got an undecodable reply it was not sent")
        elif isinstance(error, TimeoutError):
            if deadline is None:
                found.append(f"undocumented: {where} timed out with no deadline")
            elif record.elapsed < deadline * 0.9 - 0.005:
                found.append(f"early: {where} timed out after {record.elapsed:.3f}s, deadline {deadline:.3f}s")
        else:
            found.append(f"undocumented: {where} raised {type(error).__name__}: {error}")
    return found


