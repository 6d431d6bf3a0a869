"""Which Airflow this integration knows, checked before anything is patched."""

from __future__ import annotations

import re
from typing import Final

__all__ = ["SUPPORTED_AIRFLOW", "UnsupportedAirflow", "check_airflow"]

SUPPORTED_AIRFLOW: Final = ((3, 1), (3, 2), (3, 3))
"""The Airflow minor releases whose triggerer runner this integration drives."""

# What install() replaces or reads, by module: if any is missing, nothing is patched.
_REQUIRED: Final = {
    "airflow.jobs.triggerer_job_runner": ("TriggerRunner", "ToTriggerRunner", "messages"),
    "airflow.sdk.execution_time.comms": ("_new_encoder", "ErrorResponse"),
    "airflow.sdk.execution_time.task_runner": ("SUPERVISOR_COMMS",),
    "airflow.sdk.exceptions": ("AirflowRuntimeError", "ErrorType"),
}


class UnsupportedAirflow(RuntimeError):
    """Raised by :func:`~trio_comms_airflow.install` when Airflow is missing, is a
    release outside :data:`SUPPORTED_AIRFLOW`, or lacks a part the integration
    replaces; nothing has been patched then. Its message is one line that says what
    was found."""


def check_airflow() -> str:
    """The installed Airflow's version, once every part the integration touches is
    known to be there.

    Raises:
        UnsupportedAirflow: Airflow is not importable, its version is not a supported
            3.1.x, 3.2.x or 3.3.x release, or a class or name the integration uses
            is missing.
    """
    import importlib

    try:
        import airflow
    except ImportError as exc:
        raise UnsupportedAirflow(f"trio-comms' Airflow integration needs Airflow 3.1-3.3: {exc}") from None
    version = str(getattr(airflow, "__version__", "unknown"))
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None or (int(match[1]), int(match[2])) not in SUPPORTED_AIRFLOW:
        known = ", ".join(f"{major}.{minor}.x" for major, minor in SUPPORTED_AIRFLOW)
        raise UnsupportedAirflow(
            f"trio-comms' Airflow integration supports Airflow {known}; found {version}: nothing was patched"
        )
    for module_name, names in _REQUIRED.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise UnsupportedAirflow(f"Airflow {version} has no {module_name} ({exc}): nothing was patched") from None
        # SUPERVISOR_COMMS is declared (annotated) and set only when comms start.
        declared = getattr(module, "__annotations__", {})
        missing = [name for name in names if not hasattr(module, name) and name not in declared]
        if missing:
            raise UnsupportedAirflow(
                f"Airflow {version}'s {module_name} has no {', '.join(missing)}: nothing was patched"
            )
    runner = importlib.import_module("airflow.jobs.triggerer_job_runner").TriggerRunner
    missing = [name for name in ("init_comms", "run", "arun") if not callable(getattr(runner, name, None))]
    if missing:
        raise UnsupportedAirflow(f"Airflow {version}'s TriggerRunner has no {', '.join(missing)}: nothing was patched")
    return version
