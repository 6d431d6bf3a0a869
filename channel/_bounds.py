"""What one frame may cost to decode: the nesting and container bounds, no I/O.

A frame decodes to Python objects; msgpack alone lets a peer make that cost up to
80 times the frame's size (an empty map is one byte on the wire, 64 in memory) and
nest values deeper than Python code can walk. These bounds make it a small
multiple, and :class:`~channel.FrameDecoder` refuses a frame over them alone.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack

__all__ = [
    "CONTAINERS",
    "refuse_ext",
    "DEFAULT_MAX_DEPTH",
    "PLAIN_UNPACK_MAX",
    "TooDeep",
    "TooManyContainers",
    "UnsupportedExt",
    "budgeted_unpack",
    "check_depth",
    "max_containers",
]

_unpackb: Final = msgpack.unpackb

DEFAULT_MAX_DEPTH: Final = 32
"""How deep a frame's body, carrier or error may nest by default: the map itself is
level 1, a map or array inside it level 2, and so on."""

PLAIN_UNPACK_MAX: Final = 64 * 1024
"""Frames up to this size are unpacked at once; larger ones with a container budget.

A frame of ``n`` bytes decodes to at most ~80 ``n`` bytes of Python objects (an
empty map is one byte on the wire and 64 in memory): 5 MiB for a frame of this
size, so only larger frames need the budget's hooks."""


def max_containers(frame_size: int) -> int:
    """The most maps and arrays a frame of ``frame_size`` bytes may hold.

    One per 16 bytes, plus 1,024: generous for real messages, whose maps have keys,
    while a frame of nothing but empty maps (one byte each on the wire, 64 in
    memory) is refused long before it costs 80 times its size.
    """
    return 1024 + frame_size // 16


CONTAINERS: Final = frozenset({dict, list})


class TooManyContainers(Exception):
    """Raised by :func:`budgeted_unpack` past its budget (the decoder refuses the frame)."""


class UnsupportedExt(Exception):
    """Raised by :func:`refuse_ext` for any msgpack extension type but the timestamp
    (the decoder refuses the frame alone)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def refuse_ext(code: int, data: bytes) -> Any:
    """msgpack's ``ext_hook``: no message field is an extension type (a timestamp is
    decoded by msgpack itself), and each would cost an object of ~130 bytes for as
    little as 3 on the wire, decoded slowly (16 MiB of ``fixext1``: 27 times its size,
    6.7 s): refuse the first one."""
    raise UnsupportedExt(code)


class TooDeep(Exception):
    """Raised by :func:`check_depth` past ``max_depth`` (the decoder refuses the frame)."""


def budgeted_unpack(payload: memoryview | bytes, budget: int, **options: Any) -> Any:
    """``msgpack.unpackb`` that stops as soon as more than ``budget`` maps and arrays
    have been built (msgpack calls the hooks as each one is finished), so memory
    stays within a small multiple of the frame's size."""
    left = budget

    def count(container: Any) -> Any:
        nonlocal left
        left -= 1
        if left < 0:
            raise TooManyContainers
        return container

    return _unpackb(payload, list_hook=count, object_hook=count, ext_hook=refuse_ext, **options)


def check_depth(value: dict[str, Any] | None, max_depth: int) -> None:
    """Raise TooDeep if ``value`` (a body, carrier or error map) nests deeper than
    ``max_depth``; iterative, so it cannot itself run out of stack."""
    if value is None:
        return
    for item in value.values():
        if type(item) is dict or type(item) is list:
            break
    else:
        return  # the common case: a map of scalars
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        container, depth = stack.pop()
        if depth > max_depth:
            raise TooDeep
        items = container.values() if type(container) is dict else container
        for item in items:
            if type(item) is dict or type(item) is list:
                stack.append((item, depth + 1))
