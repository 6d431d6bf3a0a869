"""The converter a :class:`~channel.Codec` uses unless given one: cattrs' msgpack
preconf converter, made strict about what a peer may send for each field type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from types import UnionType
from typing import Any, Union, get_args, get_origin

import cattrs
from cattrs.preconf.msgpack import make_converter

__all__ = ["make_default_converter"]


def _strict(expected: type, accepted: tuple[type, ...]) -> Callable[[Any, type], Any]:
    """A structure hook that accepts only ``accepted`` (never bool as a number)."""

    def structure(value: Any, _: type) -> Any:
        if type(value) is expected:  # the common case first: one test per field
            return value
        if type(value) in accepted:
            return expected(value)
        raise TypeError(f"expected {expected.__name__}, got {type(value).__name__}")

    return structure


def _optional_factory(type_: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """``X | None``: cattrs' own hook looks up X's hook on every call; this one looks
    it up once, when cattrs builds the hook for a class."""
    args = get_args(type_)
    inner = args[0] if args[1] is type(None) else args[1]
    structure = converter.get_structure_hook(inner)

    def optional(value: Any, _: Any) -> Any:
        return None if value is None else structure(value, inner)

    return optional


def _structure_datetime(value: Any, _: type) -> datetime:
    # msgpack Timestamp extensions arrive as aware datetimes; numbers are what
    # cattrs' own msgpack preconf converter writes, so accept those too.
    if type(value) is datetime:
        return value
    if type(value) in (int, float):
        return datetime.fromtimestamp(value, UTC)
    raise TypeError(f"expected datetime, got {type(value).__name__}")


def _shape_guard(
    accepted: tuple[type, ...], what: str, inner: Callable[[Any, cattrs.Converter], Callable[[Any, Any], Any]]
) -> Callable[[Any, cattrs.Converter], Callable[[Any, Any], Any]]:
    """A structure hook factory that refuses a value whose msgpack kind is not
    ``accepted`` before cattrs' own hook (``inner``) iterates it: left alone, cattrs
    turns the string ``"ab"`` into ``["a", "b"]`` and a map into a list of its keys."""

    def factory(type_: Any, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
        structure = inner(type_, converter)

        def guarded(value: Any, type_: Any) -> Any:
            if type(value) not in accepted:
                raise TypeError(f"expected {what}, got {type(value).__name__}")
            return structure(value, type_)

        return guarded

    return factory


def _bound(method: str) -> Callable[[Any, cattrs.Converter], Callable[[Any, Any], Any]]:
    # cattrs' own set and tuple hooks are converter methods, not public factories.
    return lambda _type, converter: getattr(converter, method)


def _guard_containers(converter: cattrs.Converter) -> None:
    from cattrs.cols import (
        is_any_set,
        is_frozenset,
        is_mapping,
        is_sequence,
        list_structure_factory,
        mapping_structure_factory,
    )

    arrays = (list, tuple)
    # cattrs asks the factory registered last first: the narrower kinds come after.
    for predicate, factory in (
        (is_sequence, _shape_guard(arrays, "an array", list_structure_factory)),
        (_is_tuple, _shape_guard(arrays, "an array", _bound("_structure_tuple"))),
        (is_any_set, _shape_guard(arrays, "an array", _bound("_structure_set"))),
        (is_frozenset, _shape_guard(arrays, "an array", _bound("_structure_frozenset"))),
        (is_mapping, _shape_guard((dict,), "a map", mapping_structure_factory)),
    ):
        converter.register_structure_hook_factory(predicate, factory)


def _is_optional(type_: Any) -> bool:
    # A union of one type with None (``X | None`` or ``Optional[X]``), as cattrs'
    # own is_optional reads it.
    args = get_args(type_)
    return get_origin(type_) in (Union, UnionType) and len(args) == 2 and type(None) in args


def _is_tuple(type_: Any) -> bool:
    return type_ is tuple or get_origin(type_) is tuple


def make_default_converter() -> cattrs.Converter:
    """cattrs' msgpack preconf converter, strict: a primitive field takes only its own
    type (never a bool for a number, never ``int(\"5\")``), a container field only its own
    msgpack kind, and aware datetimes travel as msgpack Timestamps."""
    converter = make_converter()
    _guard_containers(converter)
    converter.register_structure_hook_factory(_is_optional, _optional_factory)
    for expected, accepted in (
        (int, (int,)),
        (float, (float, int)),
        (str, (str,)),
        (bool, (bool,)),
        (bytes, (bytes,)),
    ):
        converter.register_structure_hook(expected, _strict(expected, accepted))
    # Aware datetimes travel as msgpack Timestamp extensions (what msgspec, and so
    # Airflow, writes); pack_value rejects naive ones with a MessageEncodeError.
    converter.register_unstructure_hook(datetime, lambda value: value)
    converter.register_structure_hook(datetime, _structure_datetime)
    return converter
