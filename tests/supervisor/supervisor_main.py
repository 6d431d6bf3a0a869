"""A supervisor process for the orphan tests: ``python -m tests.supervisor.supervisor_main
[MODE]`` runs a worker of that mode (default ``healthy``), prints its pid once it
runs, then serves until killed."""

from __future__ import annotations

import sys
from typing import Any

import trio

import actors
from tests.supervisor.messages import CODEC, Heartbeat


async def handler(message: Any) -> None:
    return None


async def main(mode: str) -> None:
    async with actors.open_supervisor(
        [sys.executable, "-m", "tests.supervisor.worker", mode], CODEC, handler, heartbeat=Heartbeat
    ) as supervisor:
        await supervisor.status.wait_value(lambda s: s.state is actors.WorkerState.RUNNING)
        print(supervisor.status.value.pid, flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main, sys.argv[1] if len(sys.argv) > 1 else "healthy")
