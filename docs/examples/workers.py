"""Three supervised workers share one queue of jobs. One is SIGKILLed mid-run; the job
it held goes back to the queue when its next incarnation first asks, so every job is
done exactly once."""

import math
import os
import signal
import sys

import attrs
import trio
import trio_util

import actors
import channel

WORKERS = 3
JOBS = 30


@attrs.frozen
class Heartbeat:
    pass


@attrs.frozen
class NextJob:
    pass


@attrs.frozen
class Job:
    number: int


@attrs.frozen
class Done:
    number: int
    square: int


codec = channel.Codec([Heartbeat, NextJob, Job, Done])


async def beat(comms: actors.Comms) -> None:
    while True:  # proves that this worker's event loop makes progress
        await comms.asend(Heartbeat())
        await trio.sleep(0.1)


async def worker() -> None:
    connect = actors.connect_to_supervisor(codec, timeout=30, heartbeat=Heartbeat)
    async with connect as comms, trio.open_nursery() as nursery:
        nursery.start_soon(beat, comms)
        while True:
            job = await comms.asend(NextJob())
            await trio.sleep(0.01)  # the work
            await comms.asend(Done(number=job.number, square=job.number**2))


class Pool:
    """The jobs, and which job each worker's incarnation holds."""

    def __init__(self) -> None:
        self.queue, self.jobs = trio.open_memory_channel[int](math.inf)
        # For each worker, the (incarnation, job) it holds, or None.
        self.lent = [trio_util.AsyncValue[tuple[int, int] | None](None) for _ in range(WORKERS)]
        self.done: dict[int, int] = {}  # job -> how many times it was done
        self.finished = trio_util.AsyncValue(0)  # how many jobs are done

    def handler_for(self, worker: int) -> actors.Handler:
        async def handler(message: Heartbeat | NextJob | Done) -> Job | None:
            incarnation = actors.current_request().incarnation
            assert incarnation is not None  # always set under a supervisor
            held = self.lent[worker].value
            if held is not None and held[0] < incarnation:
                # A newer incarnation asks, so the one that held this job is dead.
                self.lent[worker].value = None
                self.queue.send_nowait(held[1])
            if isinstance(message, NextJob):
                number = await self.jobs.receive()
                self.lent[worker].value = (incarnation, number)
                return Job(number=number)
            if isinstance(message, Done):
                assert message.square == message.number**2
                self.lent[worker].value = None
                self.done[message.number] = self.done.get(message.number, 0) + 1
                self.finished.value = len(self.done)
            return None

        return handler


def running(status: actors.SupervisorStatus) -> bool:
    return status.state is actors.WorkerState.RUNNING


async def supervisor() -> None:
    pool = Pool()
    async with trio.open_nursery() as nursery:
        supervisors: list[actors.Supervisor] = []
        for number in range(WORKERS):
            supervisors.append(await nursery.start(supervise, number, pool))
        for number in range(JOBS):  # once every worker runs, so that they share the work
            pool.queue.send_nowait(number)
        await pool.lent[0].wait_value(lambda held: held is not None)  # worker 0 has a job
        victim = supervisors[0].status.value.pid
        assert victim is not None
        os.kill(victim, signal.SIGKILL)
        await pool.finished.wait_value(JOBS)
        await supervisors[0].status.wait_value(lambda s: s.incarnation == 2 and running(s))
        print(f"{len(pool.done)} jobs, each done {set(pool.done.values())} time(s)")
        print(f"worker 0 is on incarnation 2; the others on {[s.status.value.incarnation for s in supervisors[1:]]}")
        nursery.cancel_scope.cancel()  # leaving each supervisor stops its worker


async def supervise(number: int, pool: Pool, *, task_status: trio.TaskStatus[actors.Supervisor]) -> None:
    async with actors.open_supervisor(
        [sys.executable, __file__, "--worker"], codec, pool.handler_for(number),
        heartbeat=Heartbeat, stuck_after=2.0, backoff_initial=0.1,
    ) as sup:
        await sup.status.wait_value(running)
        task_status.started(sup)
        await trio.sleep_forever()


if __name__ == "__main__":
    trio.run(worker if sys.argv[1:] == ["--worker"] else supervisor)
