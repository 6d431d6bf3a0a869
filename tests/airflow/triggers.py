"""Triggers that ask the supervisor all the time, and while being cancelled.

Shaped like google's ``BigQueryInsertJobTrigger``: a poll loop whose every step asks
the supervisor (``GetVariable`` through the task SDK's ``SUPERVISOR_COMMS``), and a
cancellation that asks once more before it ends (``safe_to_cancel``). Each reply is
checked against its own request (the key comes back as the value) and the outcome
written as one line to the file named by ``HARNESS_OUTCOMES``: ``ok``, ``wrong``,
``error <type>: <message>`` or ``cancelled``.

How a trigger asks (``callers``):

- ``sync_to_async``: sync code in asgiref's thread calls ``SUPERVISOR_COMMS.send``
  (Airflow 3.1's ``send`` is ``async_to_sync(asend)``: the request runs on the
  runner's own loop, and is cancelled with the trigger);
- ``to_thread``: the same from a thread asgiref did not start (``asyncio.to_thread``):
  Airflow 3.1's ``send`` then runs ``asend`` on a second loop in a second thread;
- ``asend``: ``await SUPERVISOR_COMMS.asend`` on the runner's loop.

With ``fixed_key`` every question is the Variable ``t<number>`` (harness B's
database holds each one with its own key as its value); without it each question
is a new key (harness A's supervisor answers any key with itself). With
``raise_errors`` a failed or wrong reply also fails the trigger, as a real
trigger's would (Airflow then fails its task instance through ``submit_failure``);
without it the trigger records the outcome and asks again.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

CLASSPATH = "tests.airflow.triggers.AskingTrigger"


def _record(line: str) -> None:
    fd = os.open(os.environ["HARNESS_OUTCOMES"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (line.replace("\n", " ")[:300] + "\n").encode())
    finally:
        os.close(fd)


def _get(key: str) -> Any:
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import GetVariable

    return task_runner.SUPERVISOR_COMMS.send(GetVariable(key=key))


class AskingTrigger(BaseTrigger):
    def __init__(self, number: int, callers: str, period: float = 0.5, fixed_key: bool = False,
                 raise_errors: bool = False) -> None:
        super().__init__()
        self.raise_errors = raise_errors
        self.number = number
        self.callers = callers
        self.period = period
        self.fixed_key = fixed_key

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return CLASSPATH, {"number": self.number, "callers": self.callers, "period": self.period,
                           "fixed_key": self.fixed_key, "raise_errors": self.raise_errors}

    def key(self, step: str) -> str:
        return f"t{self.number}" if self.fixed_key else f"t{self.number}-{step}"

    async def ask(self, key: str) -> None:
        from asgiref.sync import sync_to_async

        try:
            if self.callers == "sync_to_async":
                reply = await sync_to_async(_get)(key)
            elif self.callers == "to_thread":
                reply = await asyncio.to_thread(_get, key)
            else:
                from airflow.sdk.execution_time import task_runner
                from airflow.sdk.execution_time.comms import GetVariable

                reply = await task_runner.SUPERVISOR_COMMS.asend(GetVariable(key=key))
        except asyncio.CancelledError:
            _record("cancelled")
            raise
        except Exception as exc:
            _record(f"error {type(exc).__name__}: {exc}")
            if self.raise_errors:
                raise
            return
        if getattr(reply, "key", None) == key and getattr(reply, "value", None) == key:
            _record("ok")
        else:
            _record(f"wrong asked {key} got {reply!r}")
            if self.raise_errors:
                raise RuntimeError(f"asked {key}, got another caller's reply: {reply!r}")

    async def run(self) -> AsyncIterator[TriggerEvent]:
        step = 0
        try:
            while True:
                await asyncio.sleep(self.period * random.uniform(0.5, 1.5))
                step += 1
                await self.ask(self.key(str(step)))
        except asyncio.CancelledError:
            await self.ask(self.key("cancel"))  # safe_to_cancel: one more question
            raise
        yield TriggerEvent(None)  # never reached: the trigger runs until cancelled
