"""Airflow's own comms messages (pydantic models) as a :class:`channel.MessageCodec`."""

from __future__ import annotations

from typing import Any

from channel import MessageDecodeError, MessageEncodeError

__all__ = ["AirflowCodec"]


class AirflowCodec:
    """Carries the pydantic messages of Airflow's supervisor comms on a trio-comms
    channel, exactly as Airflow puts them on the wire: a request's body is its
    ``model_dump()`` packed with Airflow's own msgspec encoder (datetimes, pendulum
    and paths as Airflow sends them), and a reply's body is validated by a pydantic
    ``TypeAdapter`` of the union the runner may receive (``ToTriggerRunner``). ::

        codec = AirflowCodec(TypeAdapter(ToTriggerRunner), _new_encoder())

    Replies are not checked against their request (Airflow declares no reply
    types): a reply is whatever member of the union its body names.
    """

    def __init__(self, receive: Any, encoder: Any) -> None:
        self._receive = receive
        self._encoder = encoder

    def pack(self, message: Any) -> bytes:
        """The msgpack bytes of ``message.model_dump()`` (``None``: no body).

        Raises:
            MessageEncodeError: ``message`` is not a pydantic model, or Airflow's
                encoder cannot carry one of its values; nothing is sent.
        """
        if message is None:
            return b"\xc0"
        dump = getattr(message, "model_dump", None)
        if dump is None:
            raise MessageEncodeError(f"{type(message).__qualname__} is not an Airflow comms message (a pydantic model)")
        try:
            packed: bytes = self._encoder.encode(dump())
        except Exception as exc:  # msgspec's and the enc_hook's errors, whatever they are
            raise MessageEncodeError(f"cannot encode {type(message).__qualname__}: {exc}") from exc
        return packed

    def decode(self, body: object) -> Any:
        """The Airflow message ``body`` stands for.

        Raises:
            MessageDecodeError: ``body`` is not one of the messages the runner may
                receive (an unknown ``type``, a field missing or of the wrong type).
        """
        try:
            return self._receive.validate_python(body)
        except Exception as exc:  # pydantic's ValidationError, and what a validator raises
            tag = body.get("type") if isinstance(body, dict) else None
            raise MessageDecodeError(tag if isinstance(tag, str) else None, "$", _first_line(exc)) from None

    def reply_type(self, request_class: type) -> type | None:
        """Always ``None``: any message of the union is accepted as a reply."""
        return None

    def message_type(self, message_class: type) -> str:
        """The model's ``type`` tag (the default of its ``type`` field), else its class name."""
        field = getattr(message_class, "model_fields", {}).get("type")
        default = getattr(field, "default", None)
        return default if isinstance(default, str) else message_class.__name__


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:300] if text else type(error).__qualname__
