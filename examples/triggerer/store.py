"""The store: SQLite, the source of truth. A trigger is terminal only when it says so.

One connection, owned by one thread: a single-worker executor runs every query,
and trio tasks wait for it in ``trio.to_thread``. WAL mode, one transaction per
operation. Completions are fenced on the *owner* that holds the trigger: the job's
id (a row in ``jobs``, new for every start of the job on this store) and the
runner's incarnation in that job, so a stale incarnation, or any incarnation of a
job that died before this one started, can never give a trigger a second outcome.

A store is a SQLite file marked with our ``application_id``. A new or empty file
becomes one; any other file is refused (:class:`StoreError`) before anything is
written to it.

A store that fails later (a full disk, a damaged page, a lock another process holds
for over ``LOCK_TIMEOUT``) fails every operation from then on with one
:class:`StoreError`, whose message is one line for the user: the store's failure is
the job's, never the runner's (see ``job.py``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from typing import TypeVar

import attrs
import trio

from .messages import TriggerEvent, TriggerSpec

T = TypeVar("T")

APPLICATION_ID = 0x54524752  # "TRGR", in the SQLite header: this file is a triggerer store

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    started TEXT    NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS triggers (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    state       TEXT    NOT NULL CHECK (state IN ('queued', 'running', 'succeeded', 'failed')),
    attempts    INTEGER NOT NULL DEFAULT 0,
    incarnation INTEGER,  -- the owner: job id << 32 | the runner's incarnation in that job
    result      TEXT,
    error       TEXT,
    blocks      INTEGER NOT NULL DEFAULT 0,
    outcomes    INTEGER NOT NULL DEFAULT 0
)
"""

MAX_BLOCKS = 3  # a trigger that blocked the runner this many times fails

LOCK_TIMEOUT = 5.0
"""Seconds an operation waits for a lock another process holds on the store, then fails."""

# What SQLite's primary result codes mean for the user of a store.
_MEANINGS = {
    "SQLITE_BUSY": f"is locked by another process (held for over {LOCK_TIMEOUT:g} s)",
    "SQLITE_LOCKED": f"is locked by another process (held for over {LOCK_TIMEOUT:g} s)",
    "SQLITE_FULL": "cannot grow: the disk is full",
    "SQLITE_CORRUPT": "is damaged",
    "SQLITE_NOTADB": "is not a SQLite file",
    "SQLITE_IOERR": "cannot be read or written (an I/O error)",
    "SQLITE_READONLY": "is read-only",
    "SQLITE_CANTOPEN": "cannot be opened",
    "SQLITE_PERM": "may not be accessed (permission denied)",
}


@attrs.frozen
class TriggerRow:
    """One trigger as the store has it."""

    id: int
    kind: str
    state: str  # queued, running, succeeded or failed
    attempts: int  # how many runs were started
    blocks: int  # how many times it was charged with blocking the runner
    error: str | None  # why it failed, if it did
    outcomes: int  # how many terminal outcomes it was given (1, when all is well)
    owner: int  # the fencing token of whoever ran it last (see owner())


class StoreError(Exception):
    """The ``--db`` file cannot be used as a store: it cannot be opened, it is
    another application's file, or an operation on it failed (see the module's
    docstring). The message is one line for the user."""


def describe(path: str, exc: sqlite3.Error) -> str:
    """One line saying what went wrong with the store at ``path``, from SQLite's error."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    meaning = _MEANINGS.get("_".join(name.split("_")[:2]), "failed")  # SQLITE_IOERR_WRITE: SQLITE_IOERR
    return f"the store {path!r} {meaning} ({exc}{', ' + name if name else ''})"


def owner(job_id: int, incarnation: int) -> int:
    """The fencing token of one runner incarnation of one job: unique in a store."""
    return job_id << 32 | incarnation


def check_store_file(path: str) -> None:
    """Make sure ``path`` is our store, or a new or empty SQLite file to become one.

    Raises:
        StoreError: it cannot be opened as SQLite, or it is another application's
            database (its ``application_id`` is not ours, or it has tables of its
            own). Nothing has been written to it then.
    """
    try:
        db = sqlite3.connect(path, timeout=LOCK_TIMEOUT)
    except sqlite3.Error as exc:
        raise StoreError(describe(path, exc)) from None
    try:
        application_id = db.execute("PRAGMA application_id").fetchone()[0]
        tables = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
    except sqlite3.Error as exc:
        raise StoreError(describe(path, exc) + "; refusing to use it as the store") from None
    finally:
        db.close()
    if application_id != APPLICATION_ID and (application_id != 0 or tables):
        raise StoreError(f"{path!r} is another application's SQLite file, not a triggerer store; refusing to touch it")


class Store:
    """The triggers table, reached from trio through the one thread that owns it."""

    def __init__(self, path: str) -> None:
        """Open (or create) the store at ``path``.

        Raises:
            StoreError: see :func:`check_store_file`.
        """
        check_store_file(path)
        self.path = path
        self._db: sqlite3.Connection | None = None
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self.stale_completions = 0
        self.failure: StoreError | None = None
        """The first failure; every operation after it raises it again."""

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=LOCK_TIMEOUT)  # transactions by hand
        try:
            db.execute(f"PRAGMA application_id={APPLICATION_ID}")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    async def _run(self, operation: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``operation`` in one transaction on the store's thread.

        Raises:
            StoreError: this or an earlier operation failed (the first failure, again).
        """

        def in_transaction() -> T:
            if self.failure is not None:
                raise self.failure
            try:
                if self._db is None:
                    self._db = self._connect()
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    result = operation(self._db)
                except BaseException:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self.failure = StoreError(describe(self.path, exc))
                raise self.failure from None
            return result

        future = self._executor.submit(in_transaction)
        return await trio.to_thread.run_sync(future.result)

    def close(self) -> None:
        def close_db() -> None:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()

        self._executor.submit(close_db).result()
        self._executor.shutdown()

    # ------------------------------------------------------------------ operations

    async def start_job(self) -> int:
        """Register a start of the job on this store; its id, new every time."""
        return await self._run(lambda db: db.execute("INSERT INTO jobs DEFAULT VALUES").lastrowid or 0)

    async def unfinished(self) -> int:
        """How many triggers are not terminal: queued, or running for a job that may be gone."""
        return await self._run(
            lambda db: db.execute("SELECT COUNT(*) FROM triggers WHERE state IN ('queued', 'running')").fetchone()[0]
        )

    async def total(self) -> int:
        return await self._run(lambda db: db.execute("SELECT COUNT(*) FROM triggers").fetchone()[0])

    async def add(self, kinds: Sequence[str]) -> None:
        await self._run(
            lambda db: db.executemany(
                "INSERT INTO triggers (kind, state) VALUES (?, 'queued')", [(kind,) for kind in kinds]
            )
        )

    async def sync(
        self, incarnation: int, events: Sequence[TriggerEvent], running: Sequence[int], free: int
    ) -> tuple[list[TriggerSpec], list[int], int]:
        """Apply a runner's events (fenced on ``incarnation``, an :func:`owner`),
        requeue the triggers of every other owner (dead incarnations, dead jobs),
        and hand out up to ``free`` queued ones. Returns (start, cancel, stale events)."""

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

    async def charge_block(self, trigger_id: int, incarnation: int) -> bool:
        """Charge a blocked loop to one trigger; fail it at MAX_BLOCKS if ``incarnation``
        (an :func:`owner`) still holds it. True if it failed now."""

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

    async def rows(self) -> list[TriggerRow]:
        """Every trigger, by id."""
        rows = await self._run(
            lambda db: db.execute(
                "SELECT id, kind, state, attempts, blocks, error, outcomes, COALESCE(incarnation, 0) FROM triggers ORDER BY id"
            ).fetchall()
        )
        return [TriggerRow(*row) for row in rows]
