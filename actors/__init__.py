"""trio-comms' trio side: the comms actor, its caller-facing handle, and the responder.

::

    async with actors.open_comms(stream, codec, timeout=10) as comms:
        reply = await comms.asend(GetVariable(key="k"))   # trio task or asyncio coroutine
        reply = comms.send(GetVariable(key="k"))           # any other thread

    with actors.comms_in_thread(sock, codec) as comms:     # actor on its own loop in a thread
        ...

    await actors.serve(stream, codec, handler)             # the other end
"""

from channel import ErrorReply as ErrorReply
from channel import FrameTooLarge as FrameTooLarge
from channel import LocalProtocolError as LocalProtocolError
from channel import MessageDecodeError as MessageDecodeError
from channel import MessageEncodeError as MessageEncodeError
from channel import MessageError as MessageError
from channel import ProtocolError as ProtocolError
from channel import RemoteProtocolError as RemoteProtocolError
from channel import TruncatedFrame as TruncatedFrame

from ._errors import ChannelClosed as ChannelClosed
from ._errors import LoopThreadError as LoopThreadError
from ._errors import RemoteError as RemoteError
from ._errors import RequestTimeout as RequestTimeout
from ._handle import Comms as Comms
from ._handle import open_comms as open_comms
from ._responder import serve as serve
from ._stats import ChannelState as ChannelState
from ._stats import CommsStatistics as CommsStatistics
from ._thread_mode import comms_in_thread as comms_in_thread

__all__ = [
    "ChannelClosed",
    "ChannelState",
    "Comms",
    "CommsStatistics",
    "ErrorReply",
    "FrameTooLarge",
    "LocalProtocolError",
    "LoopThreadError",
    "MessageDecodeError",
    "MessageEncodeError",
    "MessageError",
    "ProtocolError",
    "RemoteError",
    "RemoteProtocolError",
    "RequestTimeout",
    "TruncatedFrame",
    "comms_in_thread",
    "open_comms",
    "serve",
]
