"""The wire layer's plumbing: what the trio side (:mod:`actors`) builds its hot path
from, public for anyone writing another driver over :mod:`channel`.

Most code never needs this module: :mod:`channel` has the frames, the decoder, the
codec and the errors. These are the pieces under them (trio keeps its own in
``trio.lowlevel`` for the same reason): ready-made frame heads and packed values,
the size arithmetic a writer checks before it sends, and the message-type helpers
the codec uses. They are stable, but shaped for speed rather than comfort.
"""

from ._bounds import max_containers as max_containers
from ._codec_protocol import wrong_reply as wrong_reply
from ._error_body import ERROR_RESPONSE_TYPE as ERROR_RESPONSE_TYPE
from ._error_body import pack_error_body as pack_error_body
from ._events import DecoderEvent as DecoderEvent
from ._events import FrameFields as FrameFields
from ._frames import PACKED_NIL as PACKED_NIL
from ._frames import check_request_size as check_request_size
from ._frames import frame_head as frame_head
from ._frames import max_request_body as max_request_body
from ._frames import pack_value as pack_value
from ._frames import response_bytes as response_bytes
from ._messages import message_type_of as message_type_of
from ._messages import reply_type_of as reply_type_of
from ._reply_table import reply_table as reply_table
from ._util import fixup_module_metadata as _fixup_module_metadata

__all__ = [
    "ERROR_RESPONSE_TYPE",
    "PACKED_NIL",
    "DecoderEvent",
    "FrameFields",
    "check_request_size",
    "frame_head",
    "max_containers",
    "max_request_body",
    "message_type_of",
    "pack_error_body",
    "pack_value",
    "reply_table",
    "reply_type_of",
    "response_bytes",
    "wrong_reply",
]

_fixup_module_metadata(__name__, globals())
del _fixup_module_metadata
