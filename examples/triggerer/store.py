"""The store: SQLite, the source of truth. A trigger is terminal only when it says so.

One connection, owned by one thread: a single-worker executor runs every query,
and trio tasks wait for it in ``trio.to_thread``. WAL mode, one transaction per
operation. Completions are fenced on the incarnation that holds the trigger, so a
stale incarnation can never give a trigger a second outcome.
"""

from __future__ import annotations

import concurrent.futures
import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

import trio

from .messages import TriggerEvent, TriggerSpec

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS triggers (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    incarnation INTEGER,
    result      TEXT,
    error       TEXT,
    blocks      INTEGER NOT NULL DEFAULT 0,
    outcomes    INTEGER NOT NULL DEFAULT 0
)
"""

MAX_BLOCKS = 3  # a trigger that blocked the runner this many times fails


class Store:
    """The triggers table, reached from trio through the one thread that owns it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="store", initializer=self._connect
        )
        self.stale_completions = 0

    def _connect(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)  # transactions by hand
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(SCHEMA)
        self._db = db

    async def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        def in_transaction() -> T:
            assert self._db is not None
            self._db.execute("BEGIN IMMEDIATE")
            try:
                result = operation(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return result

        future = self._executor.submit(in_transaction)
        return await trio.to_thread.run_sync(future.result)

    def close(self) -> None:
        def close_db() -> None:
            if self._db is not None:
                self._db.close()

        self._executor.submit(close_db).result()
        self._executor.shutdown()

    # ------------------------------------------------------------------ operations

    async def add(self, kinds: Sequence[str]) -> None:
        await self._run(
            lambda db: db.executemany(
                "INSERT INTO triggers (kind, state) VALUES (?, 'queued')", [(kind,) for kind in kinds]
            )
        )

    async def sync(
        self, incarnation: int, events: Sequence[TriggerEvent], running: Sequence[int], free: int
    ) -> tuple[list[TriggerSpec], list[int], int]:
        """Apply a runner's events (fenced), requeue dead incarnations' triggers, and
        hand out up to ``free`` queued ones. Returns (start, cancel, stale events)."""

        def operation(db: sqlite3.Connection) -> tuple[list[TriggerSpec], list[int], int]:
            stale = 0
            for event in events:
                changed = db.execute(
                    "UPDATE triggers SET state = ?, result = ?, error = ?, outcomes = outcomes + 1 "
                    "WHERE id = ? AND state = 'running' AND incarnation = ?",
                    ("succeeded" if event.succeeded else "failed", event.result, event.error, event.id, incarnation),
                ).rowcount
                stale += 1 - changed
            # A trigger held by an incarnation that is no longer the current one
            # belongs to a dead runner: it runs again on this one, with no penalty.
            db.execute("UPDATE triggers SET state = 'queued' WHERE state = 'running' AND incarnation != ?", (incarnation,))
            cancel = []
            if running:
                marks = ",".join("?" * len(running))
                still = {
                    row[0]
                    for row in db.execute(
                        f"SELECT id FROM triggers WHERE id IN ({marks}) AND state = 'running' AND incarnation = ?",
                        (*running, incarnation),
                    )
                }
                cancel = [trigger_id for trigger_id in running if trigger_id not in still]
            start = []
            if free > 0:
                rows = db.execute(
                    "SELECT id, kind, attempts FROM triggers WHERE state = 'queued' ORDER BY id LIMIT ?", (free,)
                ).fetchall()
                db.executemany(
                    "UPDATE triggers SET state = 'running', incarnation = ?, attempts = attempts + 1 WHERE id = ?",
                    [(incarnation, row[0]) for row in rows],
                )
                start = [TriggerSpec(id=row[0], kind=row[1], attempt=row[2] + 1) for row in rows]
            return start, cancel, stale

        start, cancel, stale = await self._run(operation)
        self.stale_completions += stale
        return start, cancel, stale

    async def charge_block(self, trigger_id: int, incarnation: int | None) -> bool:
        """Charge a blocked loop to one trigger; fail it at MAX_BLOCKS. True if it failed now."""

        def operation(db: sqlite3.Connection) -> bool:
            db.execute("UPDATE triggers SET blocks = blocks + 1 WHERE id = ?", (trigger_id,))
            return (
                db.execute(
                    "UPDATE triggers SET state = 'failed', error = 'blocked the runner', outcomes = outcomes + 1 "
                    "WHERE id = ? AND blocks >= ? AND state = 'running' AND incarnation = ?",
                    (trigger_id, MAX_BLOCKS, incarnation),
                ).rowcount
                == 1
            )

        return await self._run(operation)

    async def counts(self) -> dict[str, int]:
        def operation(db: sqlite3.Connection) -> dict[str, int]:
            found = dict(db.execute("SELECT state, COUNT(*) FROM triggers GROUP BY state").fetchall())
            return {state: found.get(state, 0) for state in ("queued", "running", "succeeded", "failed")}

        return await self._run(operation)

    async def rows(self) -> list[tuple[int, str, str, int, int, str | None, int, int]]:
        """Every trigger: id, kind, state, attempts, blocks, error, outcomes, incarnation."""
        return await self._run(
            lambda db: db.execute(
                "SELECT id, kind, state, attempts, blocks, error, outcomes, COALESCE(incarnation, 0) FROM triggers ORDER BY id"
            ).fetchall()
        )
