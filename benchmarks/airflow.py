"""``make bench-airflow``: trio-comms beside the real Apache Airflow classes.

Runs in its own venv (``.venv-airflow``, made by the Makefile target) with
``apache-airflow-core==3.3.2`` and ``apache-airflow-task-sdk==1.3.2``; ``make bench``
never needs Airflow. Every candidate asks for variables: the same peer process
answers each ``GetVariable`` request with a ``VariableResult`` (the shapes Airflow's
supervisor sends), so the real classes decode real replies with their own pydantic
models. The candidates, interleaved and repeated like ``make bench``:

- trio-comms from trio tasks and from threads (attrs messages, our codec);
- the faithful asyncio pending-futures reference, untyped and typed;
- Airflow 3.3.2's ``TriggerCommsDecoder`` (``airflow.jobs.triggerer_job_runner``),
  from coroutines (``asend``) and from threads (``send``);
- the task SDK's ``CommsDecoder`` (``airflow.sdk.execution_time.comms``) from threads;
- the bare trio references: ``references.ParkedTasks`` (untyped and typed), what any
  trio design with a reader task costs at the least, and ``references.HandOver``
  (typed), what threads handing requests to one socket-owning trio thread cost at the
  least; each beside the real class it is measured against.

    python -m benchmarks.airflow [--repeats 3] [--seconds 1.0] [--quick]
    python -m benchmarks.airflow trial CANDIDATE CONCURRENCY SECONDS
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import socket
import sys
from collections.abc import Callable
from typing import Any

import attrs

from channel import Codec, Request

from .common import (
    PAD,
    Recorder,
    Workload,
    asyncio_callers,
    blocking_loop,
    on_loop_thread,
    run_against_peer,
    run_threads,
)
from .rst import write_rst
from .run import RESULTS, candidate_table, child, machine, median_of, parse_run_args, run_rounds, save_results
from .trial import hand_over_threads, parked_tasks, pending_futures_coroutines, trio_comms_threads, trio_tasks

TASK_LEVELS = [1, 10, 100, 1000]
THREAD_LEVELS = [1, 10, 100]
TRIGGER = "Airflow 3.3.2 TriggerCommsDecoder"
TASK_SDK = "Airflow task SDK 1.3.2 CommsDecoder"
GRID: list[tuple[str, list[int]]] = [
    ("trio-comms: trio tasks", TASK_LEVELS),
    ("trio-comms: threads (send)", THREAD_LEVELS),
    ("reference: asyncio pending futures, coroutines, untyped", TASK_LEVELS),
    ("reference: asyncio pending futures, coroutines, typed", TASK_LEVELS),
    (f"{TRIGGER}, coroutines (asend)", TASK_LEVELS),
    (f"{TRIGGER}, threads (send)", THREAD_LEVELS),
    (f"{TASK_SDK}, threads (send)", THREAD_LEVELS),
    ("reference: trio parked tasks, untyped", TASK_LEVELS),
    ("reference: trio parked tasks, typed", TASK_LEVELS),
    ("reference: threads handing over to a trio thread, typed", THREAD_LEVELS),
]

# Answers every request [id, {"type": "GetVariable", "key": k}, ...] with
# [id, {"type": "VariableResult", "key": k, "value": k}], all of one read in one write.
VARIABLE_PEER = """
import socket, msgpack
s = socket.socket(fileno=0)
pack = msgpack.Packer().pack
buffer = bytearray()
while data := s.recv(1 << 18):
    buffer += data
    pos, out = 0, []
    while len(buffer) - pos >= 4:
        end = pos + 4 + int.from_bytes(buffer[pos:pos + 4], "big")
        if end > len(buffer):
            break
        request = msgpack.unpackb(buffer[pos + 4:end])
        pos = end
        key = request[1]["key"]
        reply = pack([request[0], {"type": "VariableResult", "key": key, "value": key}])
        out += (len(reply).to_bytes(4, "big"), reply)
    del buffer[:pos]
    if out:
        s.sendall(b"".join(out))
"""


@attrs.frozen
class VariableResult:
    key: str
    value: str | None


@attrs.frozen
class GetVariable(Request[VariableResult]):
    key: str


CODEC = Codec([GetVariable, VariableResult])
_keys = iter(range(1 << 62))


def _key() -> str:
    return f"{next(_keys)}{PAD}"


TYPED = Workload(
    lambda: GetVariable(key=_key()), lambda sent, reply: isinstance(reply, VariableResult) and reply.key == sent.key
)
UNTYPED = Workload(lambda: {"type": "GetVariable", "key": _key()}, lambda sent, reply: reply["key"] == sent["key"])


def _airflow_workload() -> Workload:
    from airflow.sdk.execution_time import comms

    return Workload(
        lambda: comms.GetVariable(key=_key()),
        lambda sent, reply: isinstance(reply, comms.VariableResult) and reply.key == sent.key,
    )


async def _start_trigger_comms(sock: socket.socket) -> Any:
    """The triggerer's own setup (TriggerRunner.init_comms), on our socket."""
    from airflow.jobs.triggerer_job_runner import TriggerCommsDecoder

    reader, writer = await asyncio.open_connection(sock=sock)
    comms = TriggerCommsDecoder(async_writer=writer, async_reader=reader, socket=sock)
    await comms.start_reader()
    return comms


async def _stop_trigger_comms(comms: Any) -> None:
    comms._reader_task.cancel()
    await asyncio.gather(comms._reader_task, return_exceptions=True)
    comms._async_writer.close()


def trigger_coroutines(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    async def main() -> None:
        comms = await _start_trigger_comms(sock)
        await asyncio_callers(comms.asend, concurrency, rec, _airflow_workload())
        await _stop_trigger_comms(comms)

    asyncio.run(main())


def trigger_threads(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    def body(loop: asyncio.AbstractEventLoop) -> None:
        comms = asyncio.run_coroutine_threadsafe(_start_trigger_comms(sock), loop).result()
        run_threads(concurrency, blocking_loop(comms.send, rec, _airflow_workload()))
        asyncio.run_coroutine_threadsafe(_stop_trigger_comms(comms), loop).result()

    on_loop_thread(body)


def task_sdk_threads(sock: socket.socket, concurrency: int, rec: Recorder) -> None:
    from airflow.sdk.execution_time.comms import CommsDecoder

    comms = CommsDecoder(socket=sock)
    run_threads(concurrency, blocking_loop(comms.send, rec, _airflow_workload()))


Candidate = Callable[[socket.socket, int, Recorder], None]

CANDIDATES: dict[str, Candidate] = {
    "trio-comms: trio tasks": trio_tasks(CODEC, TYPED),
    "trio-comms: threads (send)": trio_comms_threads(CODEC, TYPED),
    "reference: asyncio pending futures, coroutines, untyped": pending_futures_coroutines(None, UNTYPED),
    "reference: asyncio pending futures, coroutines, typed": pending_futures_coroutines(CODEC, TYPED),
    f"{TRIGGER}, coroutines (asend)": trigger_coroutines,
    f"{TRIGGER}, threads (send)": trigger_threads,
    f"{TASK_SDK}, threads (send)": task_sdk_threads,
    "reference: trio parked tasks, untyped": parked_tasks(None, UNTYPED),
    "reference: trio parked tasks, typed": parked_tasks(CODEC, TYPED),
    "reference: threads handing over to a trio thread, typed": hand_over_threads(CODEC, TYPED),
}


def run_trial(name: str, concurrency: int, seconds: float) -> dict[str, float]:
    if name.startswith("Airflow"):  # its imports take a second or two: not in the window
        import airflow.jobs.triggerer_job_runner
        import airflow.sdk.execution_time.comms  # noqa: F401
    return run_against_peer(CANDIDATES[name], concurrency, seconds, VARIABLE_PEER)


def versions() -> str:
    """The installed versions of what the Airflow classes run on ("absent" outside their venv)."""

    def version(package: str) -> str:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return "absent"

    packages = ("apache-airflow-core", "apache-airflow-task-sdk", "pydantic", "msgspec")
    return ", ".join(f"{package} {version(package)}" for package in packages)


def render(m: dict[str, dict[str, float]], repeats: int, seconds: float, wrong: int) -> str:
    lines = [
        f"Medians of {repeats} interleaved runs of {seconds:g} s each; {machine()}; {versions()}; "
        f"replies not their caller's own: {wrong}.",
        "",
        *candidate_table(GRID, m),
    ]

    def ratios(ours: str, theirs: str, levels: list[int]) -> str:
        cells = [f"{m[f'{ours}|{c}']['rps'] / m[f'{theirs}|{c}']['rps']:.2f}×" for c in levels]
        return " | ".join(cells) + " |" * (len(TASK_LEVELS) - len(levels))

    tasks, threads = "trio-comms: trio tasks", "trio-comms: threads (send)"
    hand_over = "reference: threads handing over to a trio thread, typed"
    lines += [
        "",
        "| ratio (req/s) | " + " | ".join(f"c={c}" for c in TASK_LEVELS) + " |",
        "| --- |" + " ---: |" * len(TASK_LEVELS),
        f"| trio tasks / {TRIGGER}, coroutines | {ratios(tasks, f'{TRIGGER}, coroutines (asend)', TASK_LEVELS)} |",
        f"| trio tasks / asyncio pending futures, untyped | "
        f"{ratios(tasks, 'reference: asyncio pending futures, coroutines, untyped', TASK_LEVELS)} |",
        f"| trio tasks / trio parked tasks, typed | "
        f"{ratios(tasks, 'reference: trio parked tasks, typed', TASK_LEVELS)} |",
        *(
            f"| trio parked tasks, {flavour} / {TRIGGER}, coroutines | "
            f"{ratios(f'reference: trio parked tasks, {flavour}', f'{TRIGGER}, coroutines (asend)', TASK_LEVELS)} |"
            for flavour in ("untyped", "typed")
        ),
        f"| threads / {TRIGGER}, threads | {ratios(threads, f'{TRIGGER}, threads (send)', THREAD_LEVELS)} |",
        f"| threads / {TASK_SDK}, threads | {ratios(threads, f'{TASK_SDK}, threads (send)', THREAD_LEVELS)} |",
        f"| threads handing over to a trio thread, typed / {TASK_SDK}, threads | "
        f"{ratios(hand_over, f'{TASK_SDK}, threads (send)', THREAD_LEVELS)} |",
    ]
    return "\n".join(lines)


def main() -> None:
    repeats, seconds, quick = parse_run_args()
    cells = [(name, level) for name, levels in GRID for level in levels]
    trials = run_rounds(
        cells, repeats, seconds, lambda name, level: child("benchmarks.airflow", "trial", name, level, seconds)
    )
    medians = {key: median_of(value) for key, value in trials.items()}
    wrong = int(sum(t["wrong"] for value in trials.values() for t in value))
    report = render(medians, repeats, seconds, wrong)
    print(report)
    stamp = save_results(
        "airflow-quick" if quick else "airflow-{stamp}",
        {"versions": versions(), "repeats": repeats, "seconds": seconds, "medians": medians,
         "misrouted": wrong, "report": report},
    )
    write_rst(RESULTS / ("airflow-quick.rst" if quick else "airflow.rst"), "make bench-airflow", report, stamp)
    if wrong:
        raise SystemExit(f"{wrong} replies were not their caller's own")


if __name__ == "__main__":
    if sys.argv[1:2] == ["trial"]:
        print(json.dumps(run_trial(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))))
    else:
        main()
