"""Whole scenarios for the routing property: who calls, what the peer does, what must hold.

A scenario is drawn by hypothesis: a set of callers of every kind, the requests each
makes in turn (body size, deadline, cancellation, and what the peer will do with it),
and a peer policy (reply order, delays, replies to ids never sent). It is run against
a *target* (trio-comms, or the broken reference) with a scripted peer on the other
end of a real socketpair, and every call's outcome is judged by :func:`violations`.

The peer decides by content: each request's text is a unique key, and the policy maps
keys to actions. So any reply that reaches the wrong caller is visible as content
that is not the caller's own.
"""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
import greenback
import trio
from asgiref.sync import async_to_sync
from hypothesis import strategies as st

import actors
from channel import (
    END_OF_STREAM,
    NEED_DATA,
    FrameDecoder,
    MessageDecodeError,
    RequestFrame,
    ResponseFrame,
    encode_frame,
)
from tests.actors.helpers import CODEC, Echo, Echoed

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


# ------------------------------------------------------------------ the peer


class ScriptedPeer:
    """The far end: answers by the scenario's policy, in its own thread and trio loop.

    "late" requests are held back until :meth:`flush_late`, which the harness calls
    once every caller has finished, so their callers are sure to have given up.
    """

    def __init__(self, sock: socket.socket, scenario: Scenario) -> None:
        self._sock = sock
        self._actions = {r.key: r.action for r in scenario.requests()}
        self._policy = scenario.peer
        self._random = random.Random(scenario.peer.seed)
        self._late: list[RequestFrame] = []
        self._unknown_left = scenario.peer.unknown_replies
        self._flush_requested = threading.Event()
        self.flushed = threading.Event()
        self.received = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=trio.run, args=(self._run,), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def flush_late(self, timeout: float = SCENARIO_BOUND) -> bool:
        self._flush_requested.set()
        return self.flushed.wait(timeout)

    def join(self, timeout: float = SCENARIO_BOUND) -> None:
        self._thread.join(timeout)

    def _reply_for(self, frame: RequestFrame) -> bytes:
        assert frame.body is not None
        key = key_of(frame.body["text"])
        action = self._actions.get(key, "answer")
        if action == "error":
            error = {"type": "ErrorResponse", "error": ERROR_CODE, "detail": {"key": key}}
            return encode_frame(ResponseFrame(id=frame.id, error=error))
        if action == "undecodable":
            return encode_frame(ResponseFrame(id=frame.id, body={"type": "Echoed", "text": 12345}))
        return encode_frame(ResponseFrame(id=frame.id, body={"type": "Echoed", "text": frame.body["text"]}))

    async def _send_unknown(self, stream: trio.SocketStream) -> None:
        if self._unknown_left:
            self._unknown_left -= 1
            await stream.send_all(encode_frame(ResponseFrame(id=2**40 + self._unknown_left, body=None)))

    async def _run(self) -> None:
        try:
            await self._serve()
        except Exception as exc:  # reported by the harness, not lost in a thread
            self.error = exc
            self.flushed.set()

    async def _serve(self) -> None:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(self._sock))
        decoder = FrameDecoder(RequestFrame)
        held: list[RequestFrame] = []
        async with stream:
            while True:
                data = None
                with trio.move_on_after(0.002):
                    data = await stream.receive_some()
                if data is not None:
                    decoder.receive_data(data)
                while isinstance(event := decoder.next_frame(), RequestFrame):
                    self.received += 1
                    assert event.body is not None
                    if self._actions.get(key_of(event.body["text"])) == "late":
                        self._late.append(event)
                    else:
                        held.append(event)
                if held and (len(held) >= self._policy.batch or data is None):
                    self._random.shuffle(held)
                    for frame in held:
                        if self._policy.max_delay:
                            await trio.sleep(self._random.random() * self._policy.max_delay)
                        await stream.send_all(self._reply_for(frame))
                        if self._random.random() < 0.2:
                            await self._send_unknown(stream)
                    held.clear()
                if data is None and self._flush_requested.is_set() and not self.flushed.is_set():
                    for frame in self._late:
                        await stream.send_all(self._reply_for(frame))
                    while self._unknown_left:
                        await self._send_unknown(stream)
                    self.flushed.set()
                if event is END_OF_STREAM:
                    return
                assert event is NEED_DATA


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


# ------------------------------------------------------------------ running a caller's requests


def _record_sync(record: CallRecord, call: Callable[[], Any]) -> None:
    start = time.monotonic()
    try:
        record.value = call()
        record.outcome = "value"
    except Exception as exc:
        record.value = exc
        record.outcome = "error"
    record.elapsed = time.monotonic() - start


async def _record_asyncio(record: CallRecord, call: Callable[[], Any]) -> None:
    start = time.monotonic()
    task = asyncio.ensure_future(call())
    if record.request.cancel_after is not None:
        asyncio.get_running_loop().call_later(record.request.cancel_after, task.cancel)
    try:
        record.value = await task
        record.outcome = "value"
    except asyncio.CancelledError:
        record.outcome = "cancelled"
    except Exception as exc:
        record.value = exc
        record.outcome = "error"
    record.elapsed = time.monotonic() - start


def records_for(scenario: Scenario) -> list[list[CallRecord]]:
    return [[CallRecord(caller=c, request=r) for r in c.requests] for c in scenario.callers]


# ------------------------------------------------------------------ target: trio-comms


def run_trio_comms(scenario: Scenario) -> tuple[list[CallRecord], list[str]]:
    """Run ``scenario`` against trio-comms; return the records and the extra checks' failures."""
    ours, theirs = socket.socketpair()
    peer = ScriptedPeer(theirs, scenario)
    peer.start()
    per_caller = records_for(scenario)
    extra: list[str] = []

    async def main() -> None:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(ours))
        async with actors.open_comms(stream, CODEC) as comms:
            with trio.move_on_after(SCENARIO_BOUND + 2 * DEADLINE_SLACK):
                async with trio.open_nursery() as nursery:
                    for records in per_caller:
                        nursery.start_soon(_trio_caller, comms, records)
            # Wait in a thread: this loop must keep reading while the peer writes.
            if not await trio.to_thread.run_sync(peer.flush_late):
                extra.append("overdue: the peer never flushed its late replies")
            # The stream is still in sync: a fresh call after everything works.
            try:
                with trio.fail_after(SCENARIO_BOUND):
                    reply = await comms.asend(Echo(text="final:check"))
                if reply != Echoed(text="final:check"):
                    extra.append(f"misrouted: the final call got {reply}")
            except Exception as exc:
                extra.append(f"desync: the final call raised {exc!r}")
            extra.extend(_statistics_failures(comms.statistics(), scenario))

    trio.run(main)
    peer.join()
    if peer.error is not None:
        extra.append(f"peer: {peer.error!r}")
    return [r for records in per_caller for r in records], extra


async def _trio_caller(comms: actors.Comms, records: list[CallRecord]) -> None:
    kind = records[0].caller.kind
    if kind == "trio":
        for record in records:
            await _trio_call(comms, record)
    elif kind == "greenback":
        await greenback.ensure_portal()
        for record in records:
            _record_sync(record, lambda r=record: comms.send(message_for(r.request), timeout=r.request.timeout))
    elif kind in ("to_thread", "thread"):

        def blocking() -> None:
            for record in records:
                _record_sync(record, lambda r=record: comms.send(message_for(r.request), timeout=r.request.timeout))

        if kind == "to_thread":
            await trio.to_thread.run_sync(blocking, abandon_on_cancel=True)
        else:
            thread = threading.Thread(target=blocking, daemon=True)
            thread.start()
            await trio.to_thread.run_sync(thread.join, abandon_on_cancel=True)
    elif kind == "asgiref":

        def via_asgiref() -> None:
            for record in records:
                _record_sync(
                    record, lambda r=record: async_to_sync(comms.asend)(message_for(r.request), r.request.timeout)
                )

        await trio.to_thread.run_sync(via_asgiref, abandon_on_cancel=True)
    elif kind == "asyncio":

        async def asyncio_main() -> None:
            for record in records:
                await _record_asyncio(record, lambda r=record: comms.asend(message_for(r.request), r.request.timeout))

        await trio.to_thread.run_sync(asyncio.run, asyncio_main(), abandon_on_cancel=True)
    else:  # pragma: no cover
        raise AssertionError(kind)


async def _trio_call(comms: actors.Comms, record: CallRecord) -> None:
    request = record.request
    start = time.monotonic()
    with trio.move_on_after(request.cancel_after if request.cancel_after is not None else float("inf")) as scope:
        try:
            record.value = await comms.asend(message_for(request), request.timeout)
            record.outcome = "value"
        except Exception as exc:
            record.value = exc
            record.outcome = "error"
    if scope.cancelled_caught:
        record.outcome = "cancelled"
    record.elapsed = time.monotonic() - start


def _statistics_failures(stats: actors.CommsStatistics, scenario: Scenario) -> list[str]:
    failures = []
    accounted = stats.replies_routed + stats.replies_late + stats.requests_unanswered + stats.in_flight
    if stats.requests_sent != accounted:
        failures.append(f"statistics: sent={stats.requests_sent} but routed+late+unanswered+in_flight={accounted}")
    if (stats.in_flight, stats.queued, stats.requests_unanswered) != (0, 0, 0):
        failures.append(f"statistics: not back to idle: {stats}")
    if stats.replies_unknown != scenario.peer.unknown_replies:
        failures.append(f"statistics: {stats.replies_unknown} unknown replies, peer sent {scenario.peer.unknown_replies}")
    return failures


# ------------------------------------------------------------------ target: the broken reference


def run_reference(scenario: Scenario, reference_type: type) -> tuple[list[CallRecord], list[str]]:
    """Run ``scenario`` against the broken reference: a main asyncio loop plus threads.

    Caller kinds map onto what the reference has: trio and greenback callers become
    coroutines on its main loop, asyncio callers a loop of their own in a thread, and
    the thread kinds call its blocking ``send`` (asgiref's ``async_to_sync``).

    The reference can park a caller forever (a lock waiter woken from another loop's
    thread never wakes its own loop). So that every run ends, each call gets a safety
    deadline of REFERENCE_SAFETY on the caller's own loop; a call that needed it is
    still judged by its own deadline, so it shows up as a violation.
    """
    ours, theirs = socket.socketpair()
    peer = ScriptedPeer(theirs, scenario)
    peer.start()
    main_loop = asyncio.new_event_loop()
    loop_thread = threading.Thread(target=main_loop.run_forever, daemon=True)
    loop_thread.start()
    comms = reference_type(ours, CODEC)
    per_caller = records_for(scenario)

    def deadline(request: Request) -> float:
        return min(request.timeout or REFERENCE_SAFETY, REFERENCE_SAFETY)

    def caller_thread(records: list[CallRecord]) -> None:
        kind = records[0].caller.kind
        if kind in ("trio", "greenback"):

            async def on_main_loop() -> None:
                for record in records:
                    await _record_asyncio(record, lambda r=record: comms.asend(message_for(r.request), deadline(r.request)))

            asyncio.run_coroutine_threadsafe(on_main_loop(), main_loop).result()
        elif kind == "asyncio":

            async def own_loop() -> None:
                for record in records:
                    await _record_asyncio(record, lambda r=record: comms.asend(message_for(r.request), deadline(r.request)))

            asyncio.run(own_loop())
        else:
            for record in records:
                _record_sync(record, lambda r=record: comms.send(message_for(r.request), deadline(r.request)))

    threads = [threading.Thread(target=caller_thread, args=(records,), daemon=True) for records in per_caller]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, SCENARIO_BOUND + DEADLINE_SLACK - (time.monotonic() - start)))
    peer.flush_late(timeout=1.0)
    for records in per_caller:
        for record in records:
            if record.outcome == "hung":
                record.elapsed = time.monotonic() - start
    ours.close()
    peer.join()
    main_loop.call_soon_threadsafe(main_loop.stop)
    loop_thread.join(SCENARIO_BOUND)
    if not loop_thread.is_alive():
        main_loop.close()
    return [r for records in per_caller for r in records], []
