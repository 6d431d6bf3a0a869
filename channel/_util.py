"""Small helpers shared by both packages; no I/O."""

from __future__ import annotations

import reprlib
from typing import Any

__all__ = ["NoPublicConstructor", "clip", "fixup_module_metadata", "short_repr"]


def fixup_module_metadata(module_name: str, namespace: dict[str, Any]) -> None:
    """Make public names say where users import them from, as trio's own do.

    Each public class and function re-exported by a package's ``__init__`` gets
    that package as its ``__module__`` (and a ``__qualname__`` without the private
    module), so reprs and tracebacks show ``actors.Comms``, not ``actors._comms.Comms``.
    """
    seen: set[int] = set()

    def fix(name: str, obj: Any) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        mod = getattr(obj, "__module__", None)
        if mod is None or not mod.startswith(f"{module_name}._"):
            return
        obj.__module__ = module_name
        if isinstance(obj, type):
            obj.__qualname__ = name
            for attr_name, attr_value in obj.__dict__.items():
                fix(f"{name}.{attr_name}", attr_value)
        elif callable(obj) and hasattr(obj, "__qualname__"):
            obj.__qualname__ = name

    for name in namespace["__all__"]:
        if not name.startswith("_"):
            fix(name, namespace[name])


class NoPublicConstructor(type):
    """A metaclass for handles that only the library may build (as trio's own).

    ``Cls(...)`` raises ``TypeError``; the library calls ``Cls._create(...)``.
    """

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{cls.__module__}.{cls.__qualname__} has no public constructor")

    def _create(cls, *args: Any, **kwargs: Any) -> Any:
        return super().__call__(*args, **kwargs)


_short = reprlib.Repr()
_short.maxlevel = 3
_short.maxdict = 6
_short.maxlist = 6
_short.maxtuple = 6
_short.maxset = 6
_short.maxstring = 60
_short.maxother = 60
_short.maxlong = 40


def short_repr(value: object) -> str:
    """A repr of a peer's value that is safe to put in an error message: at most a
    few hundred characters and three levels deep, however large or deeply nested
    ``value`` is (a plain ``repr`` of a deep value raises ``RecursionError``)."""
    return _short.repr(value)


def clip(text: str, limit: int = 200) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"
