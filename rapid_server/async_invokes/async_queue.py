"""The durable queue behind `Event` invokes: one SQLite database (standard library, WAL mode) per state dir.

An event is a row from the moment the Invoke API answers 202 until its outcome has been delivered. The
dispatcher *claims* due rows by writing its lease holder into them; a claimed row is in flight. A finished
row is deleted (in the same transaction that queues a `function:` destination's record, so the record
cannot be lost between the two); a row to be retried goes back with a new due time.

Durability (reference section 7, "at-least-once"): every write is its own committed transaction before
the caller goes on. `synchronous=NORMAL` in WAL mode: COMMIT returns once the transaction's frames are
written (write(2)) to the WAL file. They are then in the kernel's page cache, which a killed process
(SIGKILL, a crash, OOM) cannot take with it; only an OS crash or power loss before the next checkpoint's
fsync could. `FULL` would add an fsync per commit on the event loop thread for that last case, which a
local server does not need. The server's promise is: an event answered 202 survives the server's death.

Leases: each server holds an exclusive `flock` on `holders/<holder>.lock` for its whole life. The kernel
drops that lock when the process dies however it dies, so "the holder is gone" is exactly "its lock file
can be locked". `recover()` returns such holders' claimed rows to the queue; they are delivered again.
Several servers may share a state dir: a live server's leases are never taken.

Schema versions: 1 had no qualifier or tenant; 2 adds them (an Event invoke of `name:3`, `name:alias`, or a
tenant-isolated function's). A version 1 database is migrated in place when opened (`ALTER TABLE ... ADD
COLUMN`, in the same transaction as the version bump): its queued events keep running, as $LATEST's.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA_VERSION = 2
DATABASE_NAME = "queue.sqlite3"

_SCHEMA = """
CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,  -- enqueue order, never reused
    request_id     TEXT NOT NULL,   -- the 202's x-amzn-RequestId, the runtime's request id on every attempt
    function       TEXT NOT NULL,
    payload        BLOB NOT NULL,
    trace_id       TEXT NOT NULL,
    enqueued_at    REAL NOT NULL,   -- wall clock (s since the epoch): survives restarts, unlike monotonic
    due_at         REAL NOT NULL,
    attempts       INTEGER NOT NULL DEFAULT 0,   -- times the function ran (approximateInvokeCount)
    throttles      INTEGER NOT NULL DEFAULT 0,   -- consecutive throttles, for the backoff
    last_response  BLOB,            -- the last attempt's response or error body, for the failure record
    lease_holder   TEXT,            -- NULL: queued, else the server that is running it
    qualifier      TEXT NOT NULL DEFAULT '',  -- '' ($LATEST), a version ("3") or an alias, as invoked
    tenant_id      TEXT             -- the tenant of a tenant-isolated function's invoke
);
CREATE INDEX events_due ON events (function, due_at, id) WHERE lease_holder IS NULL;
"""
# From each older version to the next, run in the opening transaction.
_MIGRATIONS = {
    1: (
        "ALTER TABLE events ADD COLUMN qualifier TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE events ADD COLUMN tenant_id TEXT",
    ),
}

_COLUMNS = (
    "id, request_id, function, payload, trace_id, enqueued_at, due_at, attempts, throttles, last_response,"
    " qualifier, tenant_id"
)


class QueueError(Exception):
    """The queue's database cannot be used (a newer schema, a corrupt file)."""


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    id: int
    request_id: str
    function: str
    payload: bytes
    trace_id: str
    enqueued_at: float
    due_at: float
    attempts: int
    throttles: int
    last_response: bytes | None
    qualifier: str = ""
    tenant_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewEvent:
    """What enqueue needs: also a `function:` destination's record, queued when an event completes.
    `qualifier`: the version or alias invoked ("": $LATEST); an alias is resolved when the event runs."""

    request_id: str
    function: str
    payload: bytes
    trace_id: str
    qualifier: str = ""
    tenant_id: str | None = None


class AsyncQueue:
    """All operations are short single-statement transactions, run on the caller's (the event loop's)
    thread: an enqueue measured about 0.1 ms on a local disk, below what an executor hop would cost."""

    def __init__(self, directory: Path, holder: str | None = None):
        self.directory = directory
        self.holder = holder or f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self._holders = directory / "holders"
        self._holders.mkdir(parents=True, exist_ok=True)
        self._lock_path = self._holders / f"{self.holder}.lock"
        self._lock_fd = _lock(self._lock_path)  # ours until we close it or die
        try:
            self._db = sqlite3.connect(directory / DATABASE_NAME, isolation_level=None, timeout=5.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            self._release_lock()
            raise QueueError(f"{directory / DATABASE_NAME}: {exc}") from None

    def _migrate(self) -> None:
        with self._transaction():  # IMMEDIATE: two servers starting at once do not both create it
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version == SCHEMA_VERSION:
                return
            if version in _MIGRATIONS:
                for older in range(version, SCHEMA_VERSION):
                    for statement in _MIGRATIONS[older]:
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                return
            if version != 0:
                raise QueueError(
                    f"schema version {version} is not {SCHEMA_VERSION} (written by another rapidboot "
                    "version); move it away or use another --state-dir"
                )
            # Not executescript(): it would commit the transaction this runs in.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # The queue's operations ----------------------------------------------------------------------------

    def enqueue(self, event: NewEvent, now: float) -> None:
        """Committed when this returns: the event survives the process from here on."""
        self._insert(event, now)

    def _insert(self, event: NewEvent, now: float) -> None:
        self._db.execute(
            "INSERT INTO events (request_id, function, payload, trace_id, enqueued_at, due_at, qualifier,"
            " tenant_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.request_id,
                event.function,
                event.payload,
                event.trace_id,
                now,
                now,
                event.qualifier,
                event.tenant_id,
            ),
        )

    def claim_due(self, function: str, now: float, limit: int) -> list[QueuedEvent]:
        """Lease up to `limit` queued events of `function` due by `now`, earliest due first (then in
        enqueue order)."""
        if limit <= 0:
            return []
        rows = self._db.execute(
            f"UPDATE events SET lease_holder = ? WHERE id IN ("
            f" SELECT id FROM events WHERE lease_holder IS NULL AND function = ? AND due_at <= ?"
            f" ORDER BY due_at, id LIMIT ?) RETURNING {_COLUMNS}",
            (self.holder, function, now, limit),
        ).fetchall()
        events = [QueuedEvent(*row) for row in rows]
        events.sort(key=lambda event: (event.due_at, event.id))  # RETURNING's order is unspecified
        return events

    def complete(self, event_id: int, follow_up: NewEvent | None = None, now: float = 0.0) -> None:
        """The event is done; `follow_up` (a record for a `function:` destination) is queued atomically."""
        with self._transaction():
            if follow_up is not None:
                self._insert(follow_up, now)
            self._db.execute("DELETE FROM events WHERE id = ?", (event_id,))

    def retry_at(
        self, event_id: int, due_at: float, attempts: int, throttles: int, last_response: bytes | None
    ) -> None:
        """Back to the queue, due at `due_at`, with its counts so far."""
        self._db.execute(
            "UPDATE events SET lease_holder = NULL, due_at = ?, attempts = ?, throttles = ?,"
            " last_response = coalesce(?, last_response) WHERE id = ?",
            (due_at, attempts, throttles, last_response, event_id),
        )

    def release(self, event_id: int) -> None:
        """Back to the queue unchanged (the attempt was cut short by our own shutdown)."""
        self._db.execute("UPDATE events SET lease_holder = NULL WHERE id = ?", (event_id,))

    def recover(self) -> int:
        """Return the events leased by servers that are gone; the number of events returned."""
        holders = [
            holder
            for (holder,) in self._db.execute(
                "SELECT DISTINCT lease_holder FROM events WHERE lease_holder IS NOT NULL"
            ).fetchall()
        ]
        recovered = 0
        for holder in holders:
            if holder == self.holder or self._holder_alive(holder):
                continue
            cursor = self._db.execute(
                "UPDATE events SET lease_holder = NULL WHERE lease_holder = ?", (holder,)
            )
            recovered += cursor.rowcount
        for lock_file in self._holders.glob("*.lock"):  # the lock files dead servers left behind
            if lock_file != self._lock_path and not self._holder_alive(lock_file.stem):
                with contextlib.suppress(OSError):
                    lock_file.unlink()
        return recovered

    def next_due(self, function: str) -> float | None:
        (due_at,) = self._db.execute(
            "SELECT min(due_at) FROM events WHERE lease_holder IS NULL AND function = ?", (function,)
        ).fetchone()
        return float(due_at) if due_at is not None else None

    def queued_functions(self) -> dict[str, int]:
        """Events per function name, queued or in flight."""
        rows = self._db.execute("SELECT function, count(*) FROM events GROUP BY function").fetchall()
        return {name: count for name, count in rows}

    def close(self) -> None:
        self._db.close()
        self._release_lock()

    def _release_lock(self) -> None:
        with contextlib.suppress(OSError):
            self._lock_path.unlink()
        os.close(self._lock_fd)

    def _holder_alive(self, holder: str) -> bool:
        if not holder.replace("-", "").isalnum():
            return False  # not a name we write: nobody can hold it
        try:
            fd = os.open(self._holders / f"{holder}.lock", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the lock we may just have taken
        return False


def _lock(path: Path) -> int:
    """Create and flock `path`. Retried if another server's recover() unlinked the file between our open
    and our flock: a lock on an unlinked file would make us look dead to everyone else."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)
