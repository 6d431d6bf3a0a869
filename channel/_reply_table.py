"""What a requester looks a reply's expected type up in: the attrs codec's own table,
or one that asks any other codec (:class:`~channel.MessageCodec`) once per class."""

from __future__ import annotations

from collections.abc import Mapping

from ._codec_protocol import MessageCodec
from ._messages import Codec

__all__ = ["reply_table"]


class _AskedReplyTypes(dict[type, "type | None"]):
    """A codec's reply types, asked of it once per request class."""

    def __init__(self, codec: MessageCodec) -> None:
        super().__init__()
        self._codec = codec

    def get(self, request_class: type, default: type | None = None) -> type | None:  # type: ignore[override]
        try:
            return self[request_class]
        except KeyError:
            reply_type = self[request_class] = self._codec.reply_type(request_class)
            return reply_type


def reply_table(codec: MessageCodec) -> Mapping[type, type | None] | None:
    """What a requester looks a reply's expected type up in (``.get(request_class)``):
    an attrs codec's own table as it is (``None`` when it declares none: no lookup at
    all), or one that asks any other codec once per class."""
    if isinstance(codec, Codec):
        return codec.reply_types if codec.reply_types else None
    return _AskedReplyTypes(codec)
