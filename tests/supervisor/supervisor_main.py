"""A supervisor process for the orphan test: prints its worker's pid, then serves."""

from __future__ import annotations

import sys
from typing import Any

import trio

import actors
from tests.supervisor.messages import CODEC, Heartbeat


async def handler(message: Any) -> None:
    return None


async def main() -> None:
    async with actors.open_supervisor(
        [sys.executable, "-m", "tests.supervisor.worker", "healthy"], CODEC, handler, heartbeat=Heartbeat
    ) as supervisor:
        await supervisor.status.wait_value(lambda s: s.state is actors.WorkerState.RUNNING)
        print(supervisor.status.value.pid, flush=True)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(main)
