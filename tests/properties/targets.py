"""Running a routing scenario against a target: trio-comms, or the broken reference.

Each returns the record of every call (judged by ``scenario.violations``) and the
failures of the checks only that target can make (statistics, a final call).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import greenback
import trio
from asgiref.sync import async_to_sync

import actors
from tests.actors.helpers import CODEC, Echo, Echoed

from .scenario import (
    DEADLINE_SLACK,
    REFERENCE_SAFETY,
    SCENARIO_BOUND,
    CallRecord,
    Request,
    Scenario,
    message_for,
)
from .scripted_peer import ScriptedPeer

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
            # Every caller is done, so no more requests will be written; the peer flushes
            # once all that were have arrived. Wait in a thread: this loop must keep
            # reading (and writing) while the peer catches up.
            written = comms.statistics().requests_sent
            if not await trio.to_thread.run_sync(peer.flush_late, written):
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
    peer.flush_late(0, timeout=1.0)  # the reference keeps no count of what it wrote
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
