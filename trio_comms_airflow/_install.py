"""Turning the integration on: the runner builds its comms on trio-comms."""

from __future__ import annotations

import logging
import socket
from typing import Any

from actors._options import check_timeout

from ._decoder import DEFAULT_TIMEOUT, TriggerComms
from ._support import check_airflow

__all__ = ["install", "installed"]

log = logging.getLogger("trio_comms_airflow")

_installed: dict[str, Any] = {}  # "version", "timeout" once installed


def installed() -> str | None:
    """The Airflow version the integration was installed into, else ``None``."""
    version: str | None = _installed.get("version")
    return version


def install(*, timeout: float | None = DEFAULT_TIMEOUT) -> str:
    """Make every triggerer runner forked from now on talk to its supervisor through
    trio-comms, and return the Airflow version found.

    Replaces ``TriggerRunner.init_comms`` (the one place the runner builds its
    ``SUPERVISOR_COMMS``) with one that builds a :class:`TriggerComms` on fd 0, and
    wraps ``TriggerRunner.run`` so the channel is closed when the runner's loop
    ends. Call it in the triggerer's process before the runner is forked (the
    ``trio-comms-airflow`` command does); the forked runner inherits the patch.
    Calling it again changes nothing but the deadline.

    Args:
        timeout: each call's deadline in seconds (``None``: none, as in stock Airflow).

    Raises:
        UnsupportedAirflow: Airflow is missing, not 3.1.x-3.3.x, or lacks a part
            this replaces; nothing has been patched.
        ValueError: ``timeout`` is not a positive number, ``None`` or ``math.inf``.
    """
    timeout = check_timeout(timeout)  # here, in the triggerer, not in the forked runner
    version = check_airflow()
    _installed["timeout"] = timeout
    if "version" in _installed:
        return version
    from airflow.jobs import triggerer_job_runner

    runner_class = triggerer_job_runner.TriggerRunner
    start_triggerer = triggerer_job_runner.messages.StartTriggerer
    original_run = runner_class.run

    async def init_comms(self: Any) -> None:
        from airflow.sdk.execution_time import task_runner

        comms = await TriggerComms.open(socket.socket(fileno=0), timeout=_installed["timeout"])
        self.comms_decoder = comms
        task_runner.SUPERVISOR_COMMS = comms
        if not isinstance(comms.hello, start_triggerer):
            raise RuntimeError(f"Required first message to be a messages.StartTriggerer, it was {comms.hello}")
        log.info("trigger runner comms: trio-comms (Airflow %s, deadline %s s)", version, _installed["timeout"])

    def run(self: Any) -> None:
        try:
            original_run(self)
        finally:
            comms = getattr(self, "comms_decoder", None)
            if isinstance(comms, TriggerComms):
                comms.close()

    init_comms.__doc__ = "trio-comms: " + (runner_class.init_comms.__doc__ or "").strip()
    run.__doc__ = original_run.__doc__
    runner_class.init_comms = init_comms
    runner_class.run = run
    _installed["version"] = version
    log.info("trio-comms drives the triggerer runner's comms (Airflow %s)", version)
    return version
