"""The soak: a million requests from every caller kind against a reordering peer.

    python -m tests.soak [--requests N]          # make soak runs this

The peer is a separate process (``actors.serve`` on fd 0) whose handler waits a
random moment before answering, so replies come back in a shuffled order; some keys
are answered with an error. Callers of every kind (trio tasks, greenback sync calls
on the loop thread, trio worker threads, plain threads, an asyncio loop in a thread,
asgiref's async_to_sync) loop until N requests have been made, some with deadlines
too short to meet and some cancelled part way. Every reply is checked by content.

It prints requests, misrouted replies, outcomes by kind and RSS, and exits non-zero
on any misroute or unexpected error, if requests in flight do not return to 0, or if
RSS grows after warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import random
import resource
import socket
import subprocess
import sys
import threading
import time

import greenback
import trio
from asgiref.sync import async_to_sync

import actors
from channel import ErrorReply
from tests.actors.helpers import CODEC, Echo, Echoed

TRIO_TASKS, GREENBACK_TASKS, TO_THREAD_WORKERS, PLAIN_THREADS, ASYNCIO_COROUTINES, ASGIREF_THREADS = 200, 8, 4, 4, 50, 2
RSS_GROWTH_LIMIT = 1.25  # end RSS may be at most this times the RSS after warm-up (plus slack below)
RSS_SLACK = 16 * 2**20
STALL_LIMIT = 30  # seconds without one call completing: the callers are hung


# ------------------------------------------------------------------ the peer process


async def peer_main() -> None:
    rng = random.Random(1)

    async def handler(message: Echo) -> Echoed:
        if rng.random() < 0.3:
            await trio.sleep(rng.random() * 0.002)  # reorders replies
        if message.text.endswith("!"):
            raise ErrorReply("SOAK_ERROR", {"key": message.text})
        return Echoed(text=message.text)

    stream = trio.SocketStream(trio.socket.from_stdlib_socket(socket.socket(fileno=0)))
    await actors.serve(stream, CODEC, handler, max_concurrency=2048)


# ------------------------------------------------------------------ the requester


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Tally:
    """Counts shared by every caller; a lock because threads count too."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.made = 0
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.misrouted: list[str] = []
        self.unexpected: list[str] = []
        self._lock = threading.Lock()
        self.started = time.monotonic()
        self.hung = False
        self.rss_after_warmup = 0
        self._next_report = target // 10

    def take(self) -> int | None:
        """A request number to make, or None once the target is reached."""
        with self._lock:
            if self.made >= self.target:
                return None
            self.made += 1
            number = self.made
        if number == self._next_report:
            self._report(number)
        return number

    def _report(self, number: int) -> None:
        self._next_report += self.target // 10
        if not self.rss_after_warmup and number >= self.target // 5:
            self.rss_after_warmup = rss_bytes()
        rate = number / (time.monotonic() - self.started)
        print(f"  {number:>9,} requests  {rate:>8,.0f} req/s  RSS {rss_bytes() / 2**20:6.1f} MiB", flush=True)

    def judged(self) -> int:
        with self._lock:
            return sum(self.outcomes.values())

    def judge(self, key: str, plan: str, outcome: object) -> None:
        if isinstance(outcome, Echoed):
            kind = "reply" if outcome.text == key and plan != "error" else "misrouted"
        elif isinstance(outcome, actors.RemoteError):
            own = (outcome.detail or {}).get("key") == key
            kind = "remote_error" if own and plan == "error" else "misrouted"
        elif isinstance(outcome, actors.RequestTimeout):
            kind = "timeout" if plan == "timeout" else "unexpected"
        elif outcome == "cancelled":
            kind = "cancelled" if plan == "cancel" else "unexpected"
        else:
            kind = "unexpected"
        with self._lock:
            self.outcomes[kind] += 1
            if kind == "misrouted":
                self.misrouted.append(f"{key} ({plan}) got {outcome!r}"[:200])
            elif kind == "unexpected":
                self.unexpected.append(f"{key} ({plan}) got {outcome!r}"[:200])


def plan_request(caller: str, number: int, rng: random.Random, can_cancel: bool) -> tuple[Echo, str, float | None, float | None]:
    """What to send and what should happen: (message, plan, timeout, cancel_after)."""
    roll = rng.random()
    key = f"{caller}-{number}"
    if roll < 0.02:
        return Echo(text=key + "!"), "error", None, None
    if roll < 0.04:
        return Echo(text=key), "timeout", 0.0002, None  # too short to meet, nearly always
    if roll < 0.06 and can_cancel:
        return Echo(text=key), "cancel", None, 0.0001
    return Echo(text=key), "reply", None, None


def outcome_of(send, message: Echo, timeout: float | None) -> object:  # type: ignore[no-untyped-def]
    """The reply, or the exception the call raised."""
    try:
        return send(message, timeout)
    except Exception as exc:
        return exc


def tolerant(plan: str, outcome: object) -> str:
    # A deadline of 0.2 ms is usually missed, but a fast reply may still win it.
    return "reply" if plan == "timeout" and isinstance(outcome, Echoed) else plan


async def trio_caller(comms: actors.Comms, tally: Tally, name: str) -> None:
    rng = random.Random(name)
    while (number := tally.take()) is not None:
        message, plan, timeout, cancel_after = plan_request(name, number, rng, can_cancel=True)
        outcome: object = "cancelled"
        with trio.move_on_after(cancel_after if cancel_after is not None else float("inf")):
            try:
                outcome = await comms.asend(message, timeout)
            except Exception as exc:
                outcome = exc
        if plan == "cancel" and outcome != "cancelled":
            plan = "reply"  # the reply beat the cancel
        tally.judge(message.text, tolerant(plan, outcome), outcome)


async def greenback_caller(comms: actors.Comms, tally: Tally, name: str) -> None:
    await greenback.ensure_portal()
    blocking_caller(comms, tally, name)  # sync code on the loop thread


def blocking_caller(comms: actors.Comms, tally: Tally, name: str, via_asgiref: bool = False) -> None:
    rng = random.Random(name)
    send = async_to_sync(comms.asend) if via_asgiref else comms.send
    while (number := tally.take()) is not None:
        message, plan, timeout, _ = plan_request(name, number, rng, can_cancel=False)
        outcome = outcome_of(send, message, timeout)
        tally.judge(message.text, tolerant(plan, outcome), outcome)


def asyncio_callers(comms: actors.Comms, tally: Tally) -> None:
    async def one(name: str) -> None:
        rng = random.Random(name)
        while (number := tally.take()) is not None:
            message, plan, timeout, cancel_after = plan_request(name, number, rng, can_cancel=True)
            task = asyncio.ensure_future(comms.asend(message, timeout))
            if cancel_after is not None:
                asyncio.get_running_loop().call_later(cancel_after, task.cancel)
            try:
                outcome: object = await task
            except asyncio.CancelledError:
                outcome = "cancelled"
            except Exception as exc:
                outcome = exc
            if plan == "cancel" and outcome != "cancelled":
                plan = "reply"
            tally.judge(message.text, tolerant(plan, outcome), outcome)

    async def main() -> None:
        await asyncio.gather(*(one(f"asyncio{i}") for i in range(ASYNCIO_COROUTINES)))

    asyncio.run(main())


async def requester_main(sock: socket.socket, tally: Tally) -> actors.CommsStatistics:
    stream = trio.SocketStream(trio.socket.from_stdlib_socket(sock))
    async with actors.open_comms(stream, CODEC, max_in_flight=1024) as comms:
        threads = [threading.Thread(target=blocking_caller, args=(comms, tally, f"thread{i}")) for i in range(PLAIN_THREADS)]
        threads += [
            threading.Thread(target=blocking_caller, args=(comms, tally, f"asgiref{i}", True)) for i in range(ASGIREF_THREADS)
        ]
        threads.append(threading.Thread(target=asyncio_callers, args=(comms, tally)))
        for thread in threads:
            thread.start()
        async with trio.open_nursery() as outer:
            outer.start_soon(watchdog, tally, outer.cancel_scope)
            async with trio.open_nursery() as nursery:
                for i in range(TRIO_TASKS):
                    nursery.start_soon(trio_caller, comms, tally, f"trio{i}")
                for i in range(GREENBACK_TASKS):
                    nursery.start_soon(greenback_caller, comms, tally, f"greenback{i}")
                for i in range(TO_THREAD_WORKERS):
                    nursery.start_soon(
                        lambda i=i: trio.to_thread.run_sync(
                            blocking_caller, comms, tally, f"to_thread{i}", abandon_on_cancel=True
                        )
                    )
                await trio.to_thread.run_sync(lambda: [t.join() for t in threads], abandon_on_cancel=True)
            outer.cancel_scope.cancel()  # callers done: stop the watchdog
        # Replies to calls that gave up are still coming; wait (bounded) for them.
        with trio.move_on_after(10):
            while comms.statistics().in_flight:
                await trio.sleep(0.01)
        stats = comms.statistics()
    # Leaving open_comms failed any call still pending, so every thread can finish.
    await trio.to_thread.run_sync(lambda: [t.join(STALL_LIMIT) for t in threads])
    return stats


async def watchdog(tally: Tally, callers: trio.CancelScope) -> None:
    """Ends the run if no call completes for STALL_LIMIT seconds: a soak must end."""
    last, still = -1, 0
    while True:
        await trio.sleep(1)
        judged = tally.judged()
        still = still + 1 if judged == last else 0
        last = judged
        if still >= STALL_LIMIT:
            tally.hung = True
            callers.cancel()
            return


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        trio.run(peer_main)
        return 0

    ours, theirs = socket.socketpair()
    peer = subprocess.Popen([sys.executable, "-m", "tests.soak", "--peer"], stdin=theirs)
    theirs.close()
    tally = Tally(args.requests)
    print(f"soak: {args.requests:,} requests from every caller kind against a reordering peer (pid {peer.pid})")
    try:
        stats = trio.run(requester_main, ours, tally)
    finally:
        peer.wait(timeout=30)
    elapsed = time.monotonic() - tally.started
    rss_end = rss_bytes()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print()
    print(f"requests            {tally.made:,} in {elapsed:.0f} s ({tally.made / elapsed:,.0f} req/s)")
    print(f"misrouted replies   {tally.outcomes['misrouted']}")
    for kind in ("reply", "remote_error", "timeout", "cancelled", "unexpected"):
        print(f"  {kind:<17} {tally.outcomes[kind]:,}")
    print(
        f"actor statistics    sent={stats.requests_sent:,} routed={stats.replies_routed:,} late={stats.replies_late:,} "
        f"unknown={stats.replies_unknown} in_flight={stats.in_flight} queued={stats.queued}"
    )
    print(
        f"RSS                 after warm-up {tally.rss_after_warmup / 2**20:.1f} MiB, at end {rss_end / 2**20:.1f} MiB, "
        f"peak {peak / 2**20:.1f} MiB"
    )
    failures = []
    if tally.misrouted:
        failures.append(f"{len(tally.misrouted)} misrouted replies, e.g. {tally.misrouted[:3]}")
    if tally.unexpected:
        failures.append(f"{len(tally.unexpected)} unexpected outcomes, e.g. {tally.unexpected[:3]}")
    if tally.hung:
        failures.append(f"hung: no call completed for {STALL_LIMIT} s")
    if stats.in_flight or stats.queued:
        failures.append(f"leak: in_flight={stats.in_flight} queued={stats.queued} after the run")
    if stats.requests_sent != stats.replies_routed + stats.replies_late + stats.requests_unanswered + stats.in_flight:
        failures.append(f"statistics do not add up: {stats}")
    if rss_end > tally.rss_after_warmup * RSS_GROWTH_LIMIT + RSS_SLACK:
        failures.append("leak: RSS grew after warm-up")
    for failure in failures:
        print(f"FAIL: {failure}")
    print("soak: OK" if not failures else "soak: FAILED")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
