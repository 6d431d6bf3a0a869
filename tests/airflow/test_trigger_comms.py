"""TriggerComms and install() on this venv's Airflow, against a supervisor that speaks
with Airflow's own frames (its ``send_msg`` and ``_RequestFrame``) over a real
socketpair: the hello, replies, error replies as Airflow raises them, the deadline,
every kind of caller, the close, and an Airflow the integration does not know."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import airflow
import attrs
import msgspec
import pytest
from airflow.jobs import triggerer_job_runner
from airflow.jobs.triggerer_job_runner import ToTriggerSupervisor, TriggerRunnerSupervisor, messages
from airflow.sdk.exceptions import AirflowRuntimeError, ErrorType
from airflow.sdk.execution_time.comms import ErrorResponse, GetVariable, VariableResult, _RequestFrame
from pydantic import TypeAdapter

import actors
import trio_comms_airflow
from trio_comms_airflow import TriggerComms, UnsupportedAirflow


class Supervisor:
    """The supervisor's end: Airflow's own ``send_msg`` writes, Airflow's request
    frame and message union read."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        # Airflow's own supervisor, for its send_msg only: no process, no __init__.
        self.airflow = TriggerRunnerSupervisor.__new__(TriggerRunnerSupervisor)
        self.airflow.stdin = sock
        if "_subprocess_schema_version" in attrs.fields_dict(TriggerRunnerSupervisor):  # 3.3: responses versioned
            self.airflow._subprocess_schema_version = None
        self.requests = TypeAdapter(ToTriggerSupervisor)
        self.frames = msgspec.msgpack.Decoder(_RequestFrame)

    def send(self, msg: Any, request_id: int, error: ErrorResponse | None = None) -> None:
        self.airflow.send_msg(msg, request_id=request_id, error=error)

    def read(self) -> tuple[int, Any]:
        (length,) = struct.unpack(">I", self._exactly(4))
        frame = self.frames.decode(self._exactly(length))
        return frame.id, self.requests.validate_python(frame.body)

    def _exactly(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    def answer_variables(self, gate: tuple[threading.Event, threading.Event] | None = None) -> None:
        """Answer every GetVariable with its own key until the runner closes; "missing"
        gets an error frame, "silent" no answer at all, and "gated" sets the gate's
        first event when read and is answered once its second is set."""
        try:
            while True:
                request_id, msg = self.read()
                if msg.key == "gated" and gate is not None:
                    gate[0].set()
                    gate[1].wait()
                if msg.key == "missing":
                    self.send(None, request_id, ErrorResponse(error=ErrorType.VARIABLE_NOT_FOUND, detail={"key": "missing"}))
                elif msg.key != "silent":
                    self.send(VariableResult(key=msg.key, value=msg.key), request_id)
        except (EOFError, OSError):
            pass


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, Supervisor]]:
    runner_end, supervisor_end = socket.socketpair()
    supervisor = Supervisor(supervisor_end)
    supervisor.send(messages.StartTriggerer(), request_id=0)
    yield runner_end, supervisor
    supervisor_end.close()
    runner_end.close()


def serving(supervisor: Supervisor, gate: tuple[threading.Event, threading.Event] | None = None) -> threading.Thread:
    thread = threading.Thread(target=supervisor.answer_variables, args=(gate,), daemon=True)
    thread.start()
    return thread


def test_the_hello_replies_and_error_replies_as_airflow_raises_them(pair: tuple[socket.socket, Supervisor]) -> None:
    runner_end, supervisor = pair
    serving(supervisor)

    async def main() -> None:
        comms = await TriggerComms.open(runner_end, timeout=10)
        try:
            assert isinstance(comms.hello, messages.StartTriggerer)
            assert await comms.asend(GetVariable(key="a")) == VariableResult(key="a", value="a")
            with pytest.raises(AirflowRuntimeError) as raised:
                await comms.asend(GetVariable(key="missing"))
            assert raised.value.error.error == ErrorType.VARIABLE_NOT_FOUND
            assert raised.value.error.detail == {"key": "missing"}
        finally:
            comms.close()

    asyncio.run(main())


def test_every_kind_of_caller_gets_its_own_reply(pair: tuple[socket.socket, Supervisor]) -> None:
    runner_end, supervisor = pair
    serving(supervisor)

    async def main() -> None:
        import greenback
        from asgiref.sync import sync_to_async

        comms = await TriggerComms.open(runner_end, timeout=10)

        def ask(key: str) -> Any:
            return comms.send(GetVariable(key=key))

        async def in_portal(key: str) -> Any:
            await greenback.ensure_portal()
            return ask(key)  # sync code on the loop thread: waits through the portal

        try:
            replies = await asyncio.gather(
                *(comms.asend(GetVariable(key=f"coro{n}")) for n in range(20)),
                *(sync_to_async(ask)(f"asgiref{n}") for n in range(20)),
                *(asyncio.to_thread(ask, f"thread{n}") for n in range(20)),
                *(in_portal(f"portal{n}") for n in range(20)),
            )
            keys = [f"{kind}{n}" for kind in ("coro", "asgiref", "thread", "portal") for n in range(20)]
            assert [reply.value for reply in replies] == keys
        finally:
            comms.close()

    asyncio.run(main())


def test_sync_code_on_the_loop_thread_waits_through_the_portal_and_the_loop_runs_on(
    pair: tuple[socket.socket, Supervisor],
) -> None:
    """The reply to "gated" comes only once a task on the runner's loop has seen the
    request arrive: a send that blocked the loop thread would never get it (and would
    time out)."""
    runner_end, supervisor = pair
    read, opened = threading.Event(), threading.Event()
    serving(supervisor, (read, opened))

    async def main() -> None:
        import greenback

        comms = await TriggerComms.open(runner_end, timeout=5)

        async def sync_code_in_portal() -> Any:
            await greenback.ensure_portal()
            return comms.send(GetVariable(key="gated"))

        async def open_the_gate() -> None:
            await asyncio.to_thread(read.wait)  # the request is in flight: the loop must run on
            opened.set()

        try:
            reply, _ = await asyncio.gather(sync_code_in_portal(), open_the_gate())
            assert reply.value == "gated"
        finally:
            comms.close()

    asyncio.run(main())


def test_a_call_never_answered_raises_at_its_deadline_and_the_next_is_answered(
    pair: tuple[socket.socket, Supervisor],
) -> None:
    runner_end, supervisor = pair
    serving(supervisor)

    async def main() -> None:
        comms = await TriggerComms.open(runner_end, timeout=0.5)
        try:
            with pytest.raises(actors.RequestTimeout) as raised:
                await comms.asend(GetVariable(key="silent"))
            assert raised.value.written
            assert (await comms.asend(GetVariable(key="b"))).value == "b"
        finally:
            comms.close()

    asyncio.run(main())


def test_a_call_cancelled_after_its_write_leaves_nothing_for_the_next(pair: tuple[socket.socket, Supervisor]) -> None:
    """The seed: stock 3.1 hands the cancelled call's reply to the next caller."""
    runner_end, supervisor = pair

    async def main() -> None:
        comms = await TriggerComms.open(runner_end, timeout=10)
        try:
            first = asyncio.create_task(comms.asend(GetVariable(key="first")))
            request_id, msg = await asyncio.to_thread(supervisor.read)  # the request is on the wire
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            supervisor.send(VariableResult(key=msg.key, value=msg.key), request_id)  # answered late
            serving(supervisor)
            assert (await comms.asend(GetVariable(key="second"))).value == "second"
        finally:
            comms.close()

    asyncio.run(main())


def test_close_fails_a_pending_call_with_channel_closed(pair: tuple[socket.socket, Supervisor]) -> None:
    runner_end, supervisor = pair

    async def main() -> None:
        comms = await TriggerComms.open(runner_end, timeout=10)
        pending = asyncio.create_task(comms.asend(GetVariable(key="never")))
        await asyncio.to_thread(supervisor.read)
        comms.close()
        with pytest.raises(actors.ChannelClosed):
            await pending
        comms.close()  # idempotent

    asyncio.run(main())


def test_an_unknown_airflow_is_refused_and_nothing_is_patched(monkeypatch: pytest.MonkeyPatch) -> None:
    init_comms = triggerer_job_runner.TriggerRunner.init_comms
    monkeypatch.setattr(airflow, "__version__", "3.4.0")
    with pytest.raises(UnsupportedAirflow, match=r"found 3\.4\.0: nothing was patched"):
        trio_comms_airflow.install()
    assert triggerer_job_runner.TriggerRunner.init_comms is init_comms
    assert trio_comms_airflow.installed() is None


def test_the_command_refuses_an_unknown_airflow_with_one_line_and_exit_2() -> None:
    program = ("import sys, airflow; airflow.__version__ = '3.4.0'; "
               "from trio_comms_airflow.__main__ import main; sys.exit(main(['triggerer']))")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    ours = [line for line in done.stderr.splitlines() if line.startswith("trio-comms-airflow")]
    assert ours == ["trio-comms-airflow: trio-comms' Airflow integration supports Airflow 3.1.x, 3.2.x, 3.3.x; "
                    "found 3.4.0: nothing was patched"], done.stderr
    assert "drives" not in done.stderr and done.stdout == ""  # Airflow's CLI never ran


def test_a_bad_deadline_is_refused_before_anything_is_patched() -> None:
    init_comms = triggerer_job_runner.TriggerRunner.init_comms
    with pytest.raises(ValueError):
        trio_comms_airflow.install(timeout=-1)
    assert triggerer_job_runner.TriggerRunner.init_comms is init_comms
