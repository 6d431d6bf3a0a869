"""trio-comms' wire layer: bytes <-> frames <-> typed messages. Sans-IO; never imports trio.

::

    codec = channel.Codec([GetVariable, VariableResult])
    wire = channel.encode_frame(channel.RequestFrame(id=1, body=codec.encode(GetVariable(key="k"))))

    decoder = channel.FrameDecoder(channel.RequestFrame)
    decoder.receive_data(wire)
    frame = decoder.next_frame()          # RequestFrame(id=1, body={...}) or NEED_DATA
    message = codec.decode(frame.body)    # GetVariable(key='k')
"""


from ._bounds import DEFAULT_MAX_DEPTH as DEFAULT_MAX_DEPTH
from ._codec_protocol import MessageCodec as MessageCodec
from ._decoder import FrameDecoder as FrameDecoder
from ._error_body import GENERIC_ERROR as GENERIC_ERROR
from ._error_body import error_body as error_body
from ._error_body import read_error_body as read_error_body
from ._errors import ErrorReply as ErrorReply
from ._errors import FrameTooLarge as FrameTooLarge
from ._errors import LocalProtocolError as LocalProtocolError
from ._errors import MessageDecodeError as MessageDecodeError
from ._errors import MessageEncodeError as MessageEncodeError
from ._errors import MessageError as MessageError
from ._errors import ProtocolError as ProtocolError
from ._errors import RemoteProtocolError as RemoteProtocolError
from ._errors import TruncatedFrame as TruncatedFrame
from ._events import END_OF_STREAM as END_OF_STREAM
from ._events import NEED_DATA as NEED_DATA
from ._events import OversizedFrame as OversizedFrame
from ._events import RejectedFrame as RejectedFrame
from ._frames import DEFAULT_MAX_FRAME_SIZE as DEFAULT_MAX_FRAME_SIZE
from ._frames import FRAME_TOO_LARGE as FRAME_TOO_LARGE
from ._frames import RequestFrame as RequestFrame
from ._frames import ResponseFrame as ResponseFrame
from ._frames import encode_frame as encode_frame
from ._messages import TAG_KEY as TAG_KEY
from ._messages import Codec as Codec
from ._messages import Request as Request
from ._util import fixup_module_metadata as _fixup_module_metadata
from ._version import __version__ as __version__

__all__ = [
    "__version__",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_FRAME_SIZE",
    "END_OF_STREAM",
    "FRAME_TOO_LARGE",
    "GENERIC_ERROR",
    "NEED_DATA",
    "TAG_KEY",
    "Codec",
    "ErrorReply",
    "FrameDecoder",
    "FrameTooLarge",
    "LocalProtocolError",
    "MessageCodec",
    "MessageDecodeError",
    "MessageEncodeError",
    "MessageError",
    "OversizedFrame",
    "ProtocolError",
    "RejectedFrame",
    "RemoteProtocolError",
    "Request",
    "RequestFrame",
    "ResponseFrame",
    "TruncatedFrame",
    "encode_frame",
    "error_body",
    "read_error_body",
]

_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
