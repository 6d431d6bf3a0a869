"""trio-comms' trio side: the comms actor, its caller-facing handle, and the responder.

::

    async with actors.open_comms(stream, codec, timeout=10) as comms:
        reply = await comms.asend(GetVariable(key="k"))   # trio task or asyncio coroutine
        reply = comms.send(GetVariable(key="k"))           # any other thread

    with actors.comms_in_thread(sock, codec) as comms:     # actor on its own loop in a thread
        ...                                                # (or `async with` from asyncio/trio)

    await actors.serve(stream, codec, handler)             # the other end

    async with actors.open_supervisor(argv, codec, handler, heartbeat=Heartbeat) as sup:
        ...                                                # a worker process, restarted

Logging: every module logs to a logger under ``"actors"`` (``actors._responder``,
``actors._actor``), so ``logging.getLogger("actors")`` configures them all.
"""

from channel._util import fixup_module_metadata as _fixup_module_metadata
from channel._version import __version__ as __version__

from ._comms import Comms as Comms
from ._context import RequestInfo as RequestInfo
from ._context import current_request as current_request
from ._errors import ChannelClosed as ChannelClosed
from ._errors import HelloTimeout as HelloTimeout
from ._errors import LoopThreadError as LoopThreadError
from ._errors import PeerNotAnswering as PeerNotAnswering
from ._errors import PeerNotReading as PeerNotReading
from ._errors import PeerUnresponsive as PeerUnresponsive
from ._errors import RemoteError as RemoteError
from ._errors import ReplyTooLarge as ReplyTooLarge
from ._errors import RequestTimeout as RequestTimeout
from ._listeners import serve_listeners as serve_listeners
from ._observable import Observable as Observable
from ._open import open_comms as open_comms
from ._options import CommsOptions as CommsOptions
from ._options import SupervisorOptions as SupervisorOptions
from ._policy import ExitRecord as ExitRecord
from ._responder import HANDLER_TIMEOUT as HANDLER_TIMEOUT
from ._responder import Handler as Handler
from ._responder import serve as serve
from ._state import ChannelState as ChannelState
from ._stats import CommsStatistics as CommsStatistics
from ._supervisor import Supervisor as Supervisor
from ._supervisor import open_supervisor as open_supervisor
from ._supervisor_status import RestartIntensityExceeded as RestartIntensityExceeded
from ._supervisor_status import SupervisorStatus as SupervisorStatus
from ._supervisor_status import WorkerState as WorkerState
from ._thread_mode import ThreadedComms as ThreadedComms
from ._thread_mode import comms_in_thread as comms_in_thread
from ._worker import connect_to_supervisor as connect_to_supervisor
from ._worker import supervisor_socket as supervisor_socket

__all__ = [
    "HANDLER_TIMEOUT",
    "__version__",
    "ChannelClosed",
    "ChannelState",
    "Comms",
    "CommsOptions",
    "CommsStatistics",
    "ExitRecord",
    "Handler",
    "HelloTimeout",
    "LoopThreadError",
    "Observable",
    "PeerNotAnswering",
    "PeerNotReading",
    "PeerUnresponsive",
    "RemoteError",
    "ReplyTooLarge",
    "RequestInfo",
    "RequestTimeout",
    "RestartIntensityExceeded",
    "Supervisor",
    "SupervisorOptions",
    "SupervisorStatus",
    "ThreadedComms",
    "WorkerState",
    "comms_in_thread",
    "connect_to_supervisor",
    "current_request",
    "open_comms",
    "open_supervisor",
    "serve",
    "serve_listeners",
    "supervisor_socket",
]

_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
