"""What the channel asks of a codec: the contract a codec for messages that are not
attrs classes (pydantic models, msgspec structs, plain maps) implements.

:class:`~channel.Codec` (attrs + cattrs) is the default and implements it; anything
with these four methods can be passed wherever a codec is taken
(:func:`actors.open_comms`, :func:`actors.serve`, :func:`actors.open_supervisor`, ...)::

    class PlainCodec:
        def pack(self, message):                 # message -> msgpack bytes of its body
            return msgpack.packb({"type": type(message).__name__, **message.fields})
        def decode(self, body):                  # body map -> message, or MessageDecodeError
            ...
        def reply_type(self, request_class):     # what a request's reply must be, or None
            return REPLIES.get(request_class)
        def message_type(self, message_class):   # the class's "type" tag on the wire
            return message_class.__name__
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from ._errors import MessageDecodeError

__all__ = ["MessageCodec", "wrong_reply"]


@runtime_checkable
class MessageCodec(Protocol):
    """Turns messages into the body of a frame and bodies back into messages.

    A body is a msgpack map whose ``"type"`` key (:data:`~channel.TAG_KEY`) names the
    message, as in Airflow's supervisor comms; the channel reads that key only to find
    priority requests (a supervisor's heartbeat), and leaves everything else to the
    codec. The channel calls ``pack`` in the caller's thread, once per request or
    reply, and ``decode`` on the channel's thread, once per frame: both should be
    quick, and neither may block.
    """

    def pack(self, message: Any) -> bytes:
        """The msgpack bytes of ``message``'s body (``None``: ``b"\\xc0"``, no body).

        Raises:
            MessageEncodeError: ``message`` is not one of this codec's messages, or
                cannot be encoded; the caller sees it and nothing is written.
        """
        ...

    def decode(self, body: object) -> Any:
        """The message a decoded body (a map, in practice) stands for.

        Raises:
            MessageDecodeError: the body is not a message of this codec (its type
                unknown, a field missing or wrong); only that call or request fails
                (a requester's call raises it; ``serve`` answers ``GENERIC_ERROR``).
        """
        ...

    def reply_type(self, request_class: type) -> type | None:
        """The class a reply to a ``request_class`` must be (``type(None)``: no body),
        or ``None`` to accept any reply. A reply of another class fails that call
        with :class:`~channel.MessageDecodeError`. Asked at most once per class."""
        ...

    def message_type(self, message_class: type) -> str:
        """The ``"type"`` tag that bodies of ``message_class`` carry on the wire."""
        ...


def wrong_reply(codec: MessageCodec, request_class: type, expected: type, reply: object) -> MessageDecodeError:
    """The error for a ``reply`` that is not the ``expected`` class its request's
    ``request_class`` declares ("expected VariableResult in reply to GetVariable,
    got GetVariable")."""
    got = "no body" if reply is None else codec.message_type(type(reply))
    want = "no body" if expected is type(None) else expected.__qualname__
    return MessageDecodeError(
        None if reply is None else got, "$",
        f"expected {want} in reply to {codec.message_type(request_class)}, got {got}",
    )
