"""Where a body fails to structure, found at the cost of accepting it, not per bad value.

cattrs' detailed validation collects one exception for every bad value: a list of a
million wrong values costs a million exceptions (seconds and gigabytes) to refuse.
:func:`first_failure` walks the message's types with the fast converter instead: each
value is structured once, and only the first failing one is descended into, so refusing
costs about what accepting costs. The codec uses it for bodies too large for the
detailed walk (:data:`DETAILED_MAX_VALUES`); smaller ones still name every bad field.
"""

from __future__ import annotations

import collections.abc
import types
import typing
from typing import Any, Final

import attrs
import cattrs
from cattrs.v import format_exception

__all__ = ["DETAILED_MAX_VALUES", "first_failure", "holds_more_values_than"]

DETAILED_MAX_VALUES: Final = 10_000
"""A body holding more values than this (in all its maps and arrays) is refused with
its first failure only, found by :func:`first_failure`."""

_SEQUENCES: Final = frozenset({
    list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.MutableSequence,
    collections.abc.Set, collections.abc.MutableSet,
})
_MAPPINGS: Final = frozenset({dict, collections.abc.Mapping, collections.abc.MutableMapping})


def holds_more_values_than(body: dict[str, Any], limit: int) -> bool:
    """Whether ``body``'s maps and arrays hold more than ``limit`` values in all;
    stops counting as soon as they do."""
    count = 0
    stack: list[Any] = [body]
    while stack:
        container = stack.pop()
        items = container.values() if type(container) is dict else container
        count += len(items)
        if count > limit:
            return True
        stack.extend(item for item in items if type(item) is dict or type(item) is list)
    return False


def first_failure(converter: cattrs.Converter, type_: Any, value: Any, path: str = "$") -> tuple[str, str] | None:
    """The path and reason of the first value in ``value`` that does not structure as
    ``type_``, or ``None`` if it all does. ``converter`` should be a fast one
    (``detailed_validation=False``). Containers are looked into first (a list by
    halves, with the converter's own list hook), so the search costs about two
    acceptances of the body, whatever is wrong with it."""
    looked, found = _inside(converter, type_, value, path)
    if found is not None or (looked and not (isinstance(type_, type) and attrs.has(type_))):
        return found  # every item of the container is good: so is the container
    try:
        converter.structure(value, type_)
    except Exception as exc:
        return path, format_exception(exc, type_)
    return None


def _first_bad(
    converter: cattrs.Converter, container_type: Any, items: list[Any], rebuild: Any = None
) -> int | None:
    """The index of the first of ``items`` that does not structure as part of a
    ``container_type`` (items rebuilt into one by ``rebuild``, if given), by halving:
    about one pass of the converter's own hook for the container."""
    hook = converter.get_structure_hook(container_type)

    def good(start: int, stop: int) -> bool:
        part = items[start:stop]
        try:
            hook(part if rebuild is None else rebuild(part), container_type)
        except Exception:
            return False
        return True

    low, high = 0, len(items)  # if any item is bad, the first is in [low, high)
    while high - low > 1:
        middle = (low + high) // 2
        if good(low, middle):
            low = middle
        else:
            high = middle
    return low if high > low and not good(low, high) else None


def _inside(converter: cattrs.Converter, type_: Any, value: Any, path: str) -> tuple[bool, tuple[str, str] | None]:
    """Whether ``type_`` says where to look inside ``value``, and the first failing
    value found there."""
    if isinstance(type_, type) and attrs.has(type_) and type(value) is dict:
        hints = typing.get_type_hints(type_)
        for field in attrs.fields(type_):
            if field.name not in value:
                if field.default is attrs.NOTHING:
                    return True, (f"{path}.{field.name}", "required field missing")
                continue
            found = first_failure(converter, hints.get(field.name, Any), value[field.name], f"{path}.{field.name}")
            if found is not None:
                return True, found
        return True, None
    origin, args = typing.get_origin(type_), typing.get_args(type_)
    if origin in (typing.Union, types.UnionType):
        arms = [arm for arm in args if arm is not type(None)]
        if len(arms) == 1 and value is not None:
            return _inside(converter, arms[0], value, path)
        return False, None
    if origin in _SEQUENCES and type(value) is list and args:
        if origin is tuple and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                return False, None
            for position, (item, item_type) in enumerate(zip(value, args, strict=True)):
                found = first_failure(converter, item_type, item, f"{path}[{position}]")
                if found is not None:
                    return True, found
            return True, None
        bad = _first_bad(converter, list[args[0]], value)  # type: ignore[valid-type]
        if bad is None:
            return True, None
        return True, first_failure(converter, args[0], value[bad], f"{path}[{bad}]")
    if origin in _MAPPINGS and type(value) is dict and len(args) == 2:
        pairs = list(value.items())
        bad_pair = _first_bad(converter, dict[args[0], args[1]], pairs, dict)  # type: ignore[valid-type]
        if bad_pair is None:
            return True, None
        key, item = pairs[bad_pair]
        found = first_failure(converter, args[0], key, f"{path}[{key!r}]")
        return True, found or first_failure(converter, args[1], item, f"{path}[{key!r}]")
    return False, None
