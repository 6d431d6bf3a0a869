"""trio-comms inside Apache Airflow's triggerer: the runner's ``SUPERVISOR_COMMS`` on
one comms actor, so that every trigger's request gets its own reply.

Turn it on by starting the triggerer with ``trio-comms-airflow triggerer`` instead
of ``airflow triggerer`` (every other argument as before), or call
:func:`install` in the triggerer's process before the runner starts. ::

    import trio_comms_airflow
    trio_comms_airflow.install(timeout=300)   # raises UnsupportedAirflow, patching nothing

Supports Airflow 3.1.x, 3.2.x and 3.3.x; needs only Airflow itself, which this
package imports when :func:`install` is called, never before.
"""

from channel._util import fixup_module_metadata as _fixup_module_metadata

from ._codec import AirflowCodec as AirflowCodec
from ._decoder import DEFAULT_TIMEOUT as DEFAULT_TIMEOUT
from ._decoder import TriggerComms as TriggerComms
from ._install import install as install
from ._install import installed as installed
from ._support import SUPPORTED_AIRFLOW as SUPPORTED_AIRFLOW
from ._support import UnsupportedAirflow as UnsupportedAirflow
from ._support import check_airflow as check_airflow

__all__ = [
    "DEFAULT_TIMEOUT",
    "SUPPORTED_AIRFLOW",
    "AirflowCodec",
    "TriggerComms",
    "UnsupportedAirflow",
    "check_airflow",
    "install",
    "installed",
]

_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
