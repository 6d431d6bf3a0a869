"""Messages and the codec: attrs classes <-> body maps tagged with ``"type"``.

A message is an attrs class. A :class:`Codec` is built from the list of message
classes one side may send or receive; it turns a message into a body map carrying
its ``"type"`` tag and back, using a cattrs converter (cattrs' msgpack preconf
converter, made strict about primitive types so that a wrong field type is an error
rather than a silent ``int("5")``).

Every decode failure, whatever cattrs or the body did, becomes one
:class:`~channel.MessageDecodeError` naming the message type and the field path;
every encode failure becomes one :class:`~channel.MessageEncodeError`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, ForwardRef, Generic, TypeVar, get_args, get_origin

import attrs
import cattrs

from ._codec_protocol import wrong_reply
from ._converter import make_default_converter
from ._errors import MessageDecodeError, MessageEncodeError
from ._frames import PACKED_NIL, pack_value
from ._locate import DETAILED_MAX_VALUES, first_failure, holds_more_values_than
from ._util import short_repr

__all__ = ["TAG_KEY", "Codec", "Request", "message_type_of", "reply_type_of"]

ReplyT = TypeVar("ReplyT", covariant=True)

TAG_KEY = "type"
"""The body key that names the message class, as in Airflow's comms."""


def message_type_of(cls: type) -> str:
    """The ``"type"`` tag of a message class.

    The class name, unless the class sets ``__message_type__ = "OtherName"`` (for
    example to keep a wire name stable while the Python name changes).
    """
    tag = cls.__dict__.get("__message_type__", cls.__name__)
    if not isinstance(tag, str) or not tag:
        raise TypeError(f"{cls.__qualname__}.__message_type__ must be a non-empty str, not {tag!r}")
    return tag


class Request(Generic[ReplyT]):
    """Base for a request message that declares the type of its reply.

    ::

        @attrs.frozen
        class GetVariable(Request[VariableResult]):
            key: str

        reply = await comms.asend(GetVariable(key="k"))   # a VariableResult, to mypy too

    A reply of another type fails only that call, with a
    :class:`~channel.MessageDecodeError` ("expected VariableResult, got ...").
    ``Request[None]`` declares a reply without a body. Messages that do not derive
    from it keep working and their replies are not checked.
    """

    __slots__ = ()


def reply_type_of(cls: type) -> type | None:
    """The reply type a :class:`Request` subclass declares, or ``None`` if it declares none.

    ``Request[None]`` gives ``type(None)``. A forward reference (a string) is looked
    up in the module that defines the class.

    Raises:
        TypeError: the declared reply type is not a class, or a forward reference
            that names nothing in the class's module.
    """
    for klass in cls.__mro__:
        for base in klass.__dict__.get("__orig_bases__", ()):
            if get_origin(base) is Request:
                (declared,) = get_args(base)
                return _resolve_reply_type(klass, declared)
    return None


def _resolve_reply_type(cls: type, declared: object) -> type | None:
    if declared is None or declared is type(None):
        return type(None)
    if isinstance(declared, ForwardRef):
        declared = declared.__forward_arg__
    if isinstance(declared, str):
        namespace = vars(sys.modules[cls.__module__])
        if declared not in namespace:
            raise TypeError(f"{cls.__qualname__} declares a reply type {declared!r} that its module does not define")
        declared = namespace[declared]
    if isinstance(declared, TypeVar):
        return None  # a generic request class; its concrete subclasses declare
    if not isinstance(declared, type):
        raise TypeError(f"{cls.__qualname__} declares a reply type that is not a class: {declared!r}")
    return declared


def _unpackable_path(value: object, path: str) -> tuple[str, str] | None:
    """Where in an unstructured body msgpack fails, and why: the first such leaf."""
    if type(value) is dict:
        for key, item in value.items():
            found = _unpackable_path(item, f"{path}.{key}")
            if found is not None:
                return found
        return None
    if type(value) in (list, tuple):
        for index, item in enumerate(value):  # type: ignore[arg-type]
            found = _unpackable_path(item, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    try:
        pack_value(value)
    except MessageEncodeError as exc:
        return path, str(exc.__cause__ or exc)
    return None


_NAMED_FAILURES = 5  # the most fields one error names; a hostile body may have thousands


def _failures(error: Exception) -> tuple[str, str]:
    """Path and reason of the first leaf failure inside a cattrs error, the reason
    naming up to :data:`_NAMED_FAILURES` - 1 more fields and counting the rest."""
    try:
        messages = cattrs.transform_error(error, path="$")
    except Exception:  # transform_error only knows cattrs' own error types
        messages = []
    if not messages:
        return "$", f"{type(error).__name__}: {error}"
    failures = [message.rpartition(" @ ") for message in messages]
    reason, _, path = failures[0]
    others = [f"{other_path}: {other_reason}" for other_reason, _, other_path in failures[1:_NAMED_FAILURES]]
    if others:
        reason += "; also " + "; ".join(others)
    if len(failures) > _NAMED_FAILURES:
        reason += f" (and {len(failures) - _NAMED_FAILURES} more)"
    return path or "$", reason or messages[0]


class Codec:
    """Turns messages into body maps with a ``"type"`` tag, and back.

    ::

        @attrs.frozen
        class GetVariable:
            key: str

        codec = Codec([GetVariable, VariableResult])
        codec.encode(GetVariable(key="k"))      # {"key": "k", "type": "GetVariable"}
        codec.decode({"type": "GetVariable", "key": "k"})  # GetVariable(key='k')

    Nested attrs classes, optional fields, lists, dicts, sets and aware datetimes
    work. Keys in a body that the class does not have are ignored, so a peer may add
    fields without breaking an older reader.

    Args:
        message_classes: the attrs classes this codec knows.
        converter: a cattrs converter to use instead of the default (cattrs' msgpack
            preconf converter with strict primitive types).

    Raises:
        TypeError: a class is not an attrs class, or has a ``"type"`` field (the tag
            key would shadow it).
        ValueError: two classes have the same ``"type"`` tag, or the list is empty.
    """

    def __init__(
        self, message_classes: Iterable[type], *, converter: cattrs.Converter | None = None
    ) -> None:
        self._converter = converter if converter is not None else make_default_converter()
        # Decoding runs once per reply: a copy without cattrs' detailed validation
        # structures a good body in two thirds of the time; a body it rejects is
        # structured again by the detailed one, whose error names the field path.
        self._fast_converter = self._converter.copy(detailed_validation=False)
        self._classes: dict[str, type] = {}
        self._tags: dict[type, str] = {}
        self._unstructure: dict[type, Callable[[Any], Any]] = {}
        self._structure: dict[type, Callable[[Any, type], Any]] = {}
        self._detailed_structure: dict[type, Callable[[Any, type], Any]] = {}
        self._reply_types: dict[type, type] = {}
        # cattrs' configure_tagged_union would do this dispatch for us, but it needs
        # a union of at least two classes and reports an unknown or missing tag as a
        # bare KeyError; owning the tag -> hook table gives one error type with the tag.
        for cls in message_classes:
            if not (isinstance(cls, type) and attrs.has(cls)):
                raise TypeError(f"message classes must be attrs classes, not {cls!r}")
            if any(field.name == TAG_KEY for field in attrs.fields(cls)):
                raise TypeError(f"{cls.__qualname__} has a field named {TAG_KEY!r}, the tag key")
            tag = message_type_of(cls)
            if tag in self._classes:
                raise ValueError(
                    f"{cls.__qualname__} and {self._classes[tag].__qualname__} share the tag {tag!r}"
                )
            self._classes[tag] = cls
            self._tags[cls] = tag
            self._unstructure[cls] = self._converter.get_unstructure_hook(cls)
            self._structure[cls] = self._fast_converter.get_structure_hook(cls)
            self._detailed_structure[cls] = self._converter.get_structure_hook(cls)
            reply_type = reply_type_of(cls)
            if reply_type is not None:
                self._reply_types[cls] = reply_type
        if not self._classes:
            raise ValueError("a codec needs at least one message class")
        self._reply_types_view = MappingProxyType(self._reply_types)
        for cls, reply_type in self._reply_types.items():
            if reply_type is not type(None) and reply_type not in self._tags:
                raise ValueError(
                    f"{cls.__qualname__} declares replies of {reply_type.__qualname__}, "
                    "which is not a message class of this codec"
                )

    @property
    def message_types(self) -> Mapping[str, type]:
        """The known classes by their ``"type"`` tag."""
        return dict(self._classes)

    @property
    def reply_types(self) -> Mapping[type, type]:
        """The declared reply type of each request class that declares one (read-only)."""
        return self._reply_types_view

    def reply_type(self, request_class: type) -> type | None:
        """The reply type ``request_class`` declares (see :class:`Request`), or ``None``."""
        return self._reply_types.get(request_class)

    def check_reply(self, request_class: type, reply: object) -> None:
        """Check a decoded reply against the type its request declared.

        Raises:
            MessageDecodeError: the request declares a reply type and ``reply`` is
                not of it ("expected VariableResult, got GetVariable").
        """
        expected = self._reply_types.get(request_class)
        if expected is None or isinstance(reply, expected):
            return
        raise self.wrong_reply(request_class, expected, reply)

    def wrong_reply(self, request_class: type, expected: type, reply: object) -> MessageDecodeError:
        """The error for a ``reply`` that is not the ``expected`` type ``request_class`` declares."""
        return wrong_reply(self, request_class, expected, reply)

    def message_type(self, message_class: type) -> str:
        """The ``"type"`` tag of one of this codec's classes (of another class, its
        qualified name: what an error about it says)."""
        return self._tags.get(message_class) or message_class.__qualname__

    def encode(self, message: object) -> dict[str, Any]:
        """Turn a message into its body map, ``"type"`` tag included.

        Raises:
            MessageEncodeError: ``message`` is not an instance of one of this
                codec's classes, or cattrs cannot unstructure one of its fields.
        """
        cls = type(message)
        unstructure = self._unstructure.get(cls)
        if unstructure is None:
            raise MessageEncodeError(f"{cls.__qualname__} is not a message class of this codec")
        try:
            body: dict[str, Any] = unstructure(message)
        except Exception as exc:
            raise MessageEncodeError(f"cannot encode {cls.__qualname__} at $: {exc!r}") from exc
        body[TAG_KEY] = self._tags[cls]
        return body

    def pack(self, message: object) -> bytes:
        """Encode a message and pack its body into msgpack bytes, ready to frame.

        This is what a caller does once per request: the channel sends these bytes
        as they are and never packs the body again. ``None`` packs as nil, an
        empty body.

        Raises:
            MessageEncodeError: as :meth:`encode`, or a field value msgpack cannot
                carry (an int over 64 bits, a naive datetime, an unknown object); the
                message names the class and the field path, as
                ``cannot encode GetVariable at $.key: ...``.
        """
        if message is None:
            return PACKED_NIL
        body = self.encode(message)
        try:
            return pack_value(body)
        except MessageEncodeError as exc:
            found = _unpackable_path(body, "$")
            path, reason = found if found is not None else ("$", str(exc))
            raise MessageEncodeError(f"cannot encode {type(message).__qualname__} at {path}: {reason}") from exc

    def decode(self, body: object) -> Any:
        """Turn a body map back into its message.

        Raises:
            MessageDecodeError: ``body`` is not a map; its ``"type"`` is missing, not
                a string or not one of this codec's tags; a field is missing or has
                the wrong type. The error names the type and the field path.
        """
        if type(body) is not dict:
            raise MessageDecodeError(None, "$", f"body is a {type(body).__name__}, not a map")
        tag = body.get(TAG_KEY)
        if type(tag) is not str:
            reason = "missing" if tag is None else f"a {type(tag).__name__}, not a str"
            raise MessageDecodeError(None, f"$.{TAG_KEY}", f"the type tag is {reason}")
        cls = self._classes.get(tag)
        if cls is None:
            raise MessageDecodeError(tag, f"$.{TAG_KEY}", f"unknown message type {short_repr(tag)}")
        try:
            return self._structure[cls](body, cls)
        except Exception:
            pass  # say exactly where: structure it again, with detailed validation
        if holds_more_values_than(body, DETAILED_MAX_VALUES):
            # Detailed validation would build one exception per bad value: find the
            # first failure at the cost of acceptance instead.
            path, reason = first_failure(self._fast_converter, cls, body) or ("$", "does not structure")
            raise MessageDecodeError(
                tag, path, f"{reason} (the first failure only: the body holds over {DETAILED_MAX_VALUES:,} values)"
            )
        try:
            return self._detailed_structure[cls](body, cls)
        except Exception as exc:
            path, reason = _failures(exc)
            raise MessageDecodeError(tag, path, reason) from exc

