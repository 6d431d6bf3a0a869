"""A value that changes over time, typed: trio-util's ``AsyncValue`` behind a small
generic wrapper, so ``supervisor.status.value.state`` and ``comms.state.value`` have
real types under ``mypy --strict`` (trio-util ships no type information)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, TypeVar, cast, final

from trio_util import AsyncValue

__all__ = ["Observable"]

T = TypeVar("T")


@final
class Observable(Generic[T]):
    """The current value of something, and ways to wait for it to change.

    ::

        status = supervisor.status.value                  # a SupervisorStatus
        await supervisor.status.wait_value(lambda s: s.state is actors.WorkerState.RUNNING)
        async for status in supervisor.status.eventual_values():
            ...

    Each method is trio-util ``AsyncValue``'s of the same name (the docs there say
    how quick changes may be seen coalesced); :attr:`async_value` is that object,
    for trio-util's other helpers. Only the library sets the value.
    """

    __slots__ = ("_inner",)

    def __init__(self, value: T) -> None:
        self._inner = AsyncValue(value)

    @property
    def value(self) -> T:
        """The value now."""
        return cast(T, self._inner.value)

    def _set(self, value: T) -> None:
        self._inner.value = value

    @property
    def async_value(self) -> Any:
        """The underlying ``trio_util.AsyncValue``."""
        return self._inner

    async def wait_value(self, predicate: Callable[[T], bool], *, held_for: float = 0) -> T:
        """Wait until ``predicate(value)`` holds (for ``held_for`` seconds); return that value."""
        return cast(T, await self._inner.wait_value(predicate, held_for=held_for))

    async def wait_transition(self, predicate: Callable[[T, T], bool] | None = None) -> tuple[T, T]:
        """Wait for the next change (one for which ``predicate(new, old)`` holds); return ``(new, old)``."""
        # (trio-util reads a None argument as "until the value is None")
        new, old = await (self._inner.wait_transition() if predicate is None else self._inner.wait_transition(predicate))
        return cast(T, new), cast(T, old)

    async def eventual_values(
        self, predicate: Callable[[T], bool] | None = None, *, held_for: float = 0
    ) -> AsyncIterator[T]:
        """The value now and each later one (that satisfies ``predicate``), coalesced
        while the consumer is busy."""
        values = (
            self._inner.eventual_values(held_for=held_for)
            if predicate is None
            else self._inner.eventual_values(predicate, held_for=held_for)
        )
        async for value in values:
            yield cast(T, value)

    async def transitions(self, predicate: Callable[[T, T], bool] | None = None) -> AsyncIterator[tuple[T, T]]:
        """Each later change (that satisfies ``predicate(new, old)``) as ``(new, old)``,
        coalesced while the consumer is busy."""
        changes = self._inner.transitions() if predicate is None else self._inner.transitions(predicate)
        async for new, old in changes:
            yield cast(T, new), cast(T, old)
