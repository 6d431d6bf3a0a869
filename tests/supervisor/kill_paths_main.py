"""A supervisor process that drives its worker through every kill path, many times:
``python -m tests.supervisor.kill_paths_main ROUNDS``.

Each incarnation of a ``child-run`` worker (it has a child of its own) is ended one of
six ways in turn: SIGKILL, SIGSTOP (stuck, then its group SIGKILLed), SIGTERM,
SIGSTOP with a SIGKILL from elsewhere at once (it dies as it is found stopped), and
SIGKILL or SIGSTOP as soon as it is spawned, before its first heartbeat. A sentinel (``sleep``) shares this process's
group: if any kill path ever signalled a group or pid that is not the worker's, this
process or its sentinel would die. It prints one line per incarnation
(``incarnation N pid P child C ended REASON after ACTION``; child ``-`` when
it was hit before it had one) and ``survived N rounds`` at the end.
"""

from __future__ import annotations

import os
import signal
import sys

import trio
import trio_util

import actors
from tests.supervisor.messages import CODEC, Heartbeat, Work

ACTIONS = ("SIGKILL", "SIGSTOP", "SIGTERM", "SIGSTOP+SIGKILL", "SIGKILL at start", "SIGSTOP at start")


async def main(rounds: int) -> None:
    sentinel = await trio.lowlevel.open_process(["sleep", "1000"])  # in this process's own group
    children: dict[int, int] = {}  # incarnation -> its worker's child
    reported = trio_util.AsyncValue(0)  # the last incarnation whose child is known

    async def handler(message: object) -> None:
        if isinstance(message, Work) and message.n > 0:
            incarnation = actors.current_request().incarnation
            assert incarnation is not None
            children[incarnation] = message.n
            reported.value = max(reported.value, incarnation)

    try:
        async with actors.open_supervisor(
            [sys.executable, "-m", "tests.supervisor.worker", "child-run"], CODEC, handler,
            heartbeat=Heartbeat, stuck_after=0.5, start_timeout=5, stop_timeout=0.5,
            backoff_initial=0.01, backoff_max=0.05,
            max_restarts=rounds + 1, restart_window=3600,
        ) as supervisor:
            for number in range(1, rounds + 1):
                action = ACTIONS[(number - 1) % len(ACTIONS)]
                if action.endswith(" at start"):
                    status = await supervisor.status.wait_value(
                        lambda s: s.incarnation == number and s.pid is not None  # noqa: B023 - awaited here
                    )
                else:
                    status = await supervisor.status.wait_value(
                        lambda s: s.incarnation == number and s.state is actors.WorkerState.RUNNING  # noqa: B023
                    )
                    await reported.wait_value(lambda n: n >= number)  # noqa: B023 - awaited here
                pid = status.pid
                assert pid is not None
                for name in action.removesuffix(" at start").split("+"):
                    os.kill(pid, getattr(signal, name))
                ended = await supervisor.status.wait_value(lambda s: s.incarnation > number)  # noqa: B023 - awaited here
                print(f"incarnation {number} pid {pid} child {children.get(number, '-')} ended {ended.last_exit_reason} "
                      f"({ended.last_exit}) after {action}", flush=True)
        assert sentinel.poll() is None, "the sentinel in the supervisor's own group died"
        print(f"survived {rounds} rounds", flush=True)
    finally:
        sentinel.kill()
        await sentinel.wait()


if __name__ == "__main__":
    trio.run(main, int(sys.argv[1]))
