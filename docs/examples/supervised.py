"""Supervise a worker, SIGKILL it once, and watch a new incarnation take over."""

import os
import signal
import sys

import attrs
import trio

import actors
import channel


@attrs.frozen
class Heartbeat:  # sent by the worker's main loop, and only by it
    pass


@attrs.frozen
class Ask:
    question: str


@attrs.frozen
class Answer:
    text: str


codec = channel.Codec([Heartbeat, Ask, Answer])


async def worker() -> None:
    async with actors.connect_to_supervisor(codec, timeout=5) as comms:
        answer = await comms.asend(Ask(question="who am I?"))
        print(f"worker {os.getpid()}: {answer.text}", flush=True)
        while True:  # the main loop: heartbeat, then its own work
            await comms.asend(Heartbeat())
            await trio.sleep(0.1)


async def handler(message: Heartbeat | Ask) -> Answer | None:
    if isinstance(message, Ask):
        return Answer(text=f"incarnation {actors.current_request().incarnation}")
    return None


def running(status: actors.SupervisorStatus) -> bool:
    return status.state is actors.WorkerState.RUNNING


async def supervisor() -> None:
    async with actors.open_supervisor(
        [sys.executable, __file__, "--worker"], codec, handler,
        heartbeat=Heartbeat, stuck_after=2.0, backoff_initial=0.1,
    ) as sup:
        await sup.status.wait_value(running)
        first = sup.status.value
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
        await sup.status.wait_value(lambda s: running(s) and s.incarnation == 2)
        second = sup.status.value
        print(f"incarnation {second.incarnation} (pid {second.pid}) replaced pid {first.pid}, "
              f"which ended {second.last_exit_reason} with {second.last_exit}; healthy={sup.healthy()}")


if __name__ == "__main__":
    trio.run(worker if sys.argv[1:] == ["--worker"] else supervisor)
