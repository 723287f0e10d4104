"""The durable executions' log: one SQLite database (WAL) under `--state-dir/durable/`.

Every change to an execution (its start, a checkpoint, a callback's outcome, a wait that ended, its end)
is one committed transaction before anyone is answered. `synchronous=NORMAL` in WAL mode, as the Event
queue (async_queue.py): a commit is in the kernel's page cache when it returns, which a killed server
(SIGKILL, OOM) cannot take with it; an fsync per checkpoint would be for an OS crash only, and would
cost more than the 2 ms a step may add.

The execution row holds what GetDurableExecution shows and the current checkpoint token; each operation
is one row (its JSON, and the sequence number of its last change, from which a checkpoint's answer is
the operations changed since the function last saw them); history events are appended rows.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

DATABASE_NAME = "executions.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    arn TEXT PRIMARY KEY,
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    start_ms INTEGER NOT NULL,
    UNIQUE (function, name)
);
CREATE TABLE IF NOT EXISTS operations (
    arn TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (arn, id)
);
CREATE TABLE IF NOT EXISTS events (
    arn TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (arn, event_id)
);
CREATE TABLE IF NOT EXISTS callbacks (
    callback_id TEXT PRIMARY KEY,
    arn TEXT NOT NULL,
    operation_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS callbacks_by_execution ON callbacks (arn);
"""


@dataclass(slots=True)
class Write:
    """One transaction's worth of changes to one execution."""

    arn: str
    execution: dict[str, Any] | None = None  # the execution row's body, when it changed
    operations: Iterable[tuple[int, dict[str, Any]]] = ()  # (seq, operation)
    events: Iterable[tuple[int, dict[str, Any]]] = ()  # (event id, event)
    callbacks: Iterable[tuple[str, str]] = ()  # (callback id, operation id)


class DurableStore:
    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(directory / DATABASE_NAME, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def create(self, execution: dict[str, Any], write: Write) -> bool:
        """A new execution, with its first operation and event; False when its name is taken."""
        try:
            with self._transaction():
                self._db.execute(
                    "INSERT INTO executions (arn, function, name, body, status, start_ms) "
                    "VALUES (?,?,?,?,?,?)",
                    (
                        execution["DurableExecutionArn"],
                        execution["_Function"],
                        execution["DurableExecutionName"],
                        orjson.dumps(execution).decode(),
                        execution["Status"],
                        execution["StartTimestamp"],
                    ),
                )
                self._write(write)
        except sqlite3.IntegrityError:
            return False
        return True

    def write(self, write: Write) -> None:
        with self._transaction():
            self._write(write)

    def _write(self, write: Write) -> None:
        if write.execution is not None:
            self._db.execute(
                "UPDATE executions SET body = ?, status = ? WHERE arn = ?",
                (orjson.dumps(write.execution).decode(), write.execution["Status"], write.arn),
            )
        self._db.executemany(
            "INSERT OR REPLACE INTO operations (arn, id, seq, body) VALUES (?,?,?,?)",
            [(write.arn, op["Id"], seq, orjson.dumps(op).decode()) for seq, op in write.operations],
        )
        self._db.executemany(
            "INSERT INTO events (arn, event_id, body) VALUES (?,?,?)",
            [(write.arn, event_id, orjson.dumps(event).decode()) for event_id, event in write.events],
        )
        self._db.executemany(
            "INSERT OR REPLACE INTO callbacks (callback_id, arn, operation_id) VALUES (?,?,?)",
            [(callback_id, write.arn, op_id) for callback_id, op_id in write.callbacks],
        )

    def delete(self, arns: Iterable[str]) -> None:
        """Executions and everything logged for them, in one transaction."""
        rows = [(arn,) for arn in arns]
        with self._transaction():
            for table in ("executions", "operations", "events", "callbacks"):
                self._db.executemany(f"DELETE FROM {table} WHERE arn = ?", rows)

    def ended_before(self, now_ms: int, day_ms: float) -> list[str]:
        """The ended executions whose retention (`RetentionPeriodInDays` days of `day_ms`) is over."""
        found = []
        for arn, body in self._db.execute(
            "SELECT arn, body FROM executions WHERE status NOT IN ('RUNNING', 'PAUSING', 'PAUSED')"
        ):
            record = orjson.loads(body)
            days = record.get("DurableConfig", {}).get("RetentionPeriodInDays", 14)
            if record.get("EndTimestamp", now_ms) + days * day_ms <= now_ms:
                found.append(arn)
        return found

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    # -- reads -----------------------------------------------------------------------------------------

    def execution(self, arn: str) -> dict[str, Any] | None:
        row = self._db.execute("SELECT body FROM executions WHERE arn = ?", (arn,)).fetchone()
        return orjson.loads(row[0]) if row else None

    def executions(
        self, function: str | None = None, statuses: Iterable[str] | None = None
    ) -> list[dict[str, Any]]:
        query, args = "SELECT body FROM executions WHERE 1=1", []
        if function is not None:
            query += " AND function = ?"
            args.append(function)
        if statuses is not None:
            wanted = list(statuses)
            query += f" AND status IN ({','.join('?' * len(wanted))})"
            args.extend(wanted)
        query += " ORDER BY start_ms, rowid"
        return [orjson.loads(row[0]) for row in self._db.execute(query, args)]

    def operations(self, arn: str) -> Iterator[tuple[int, dict[str, Any]]]:
        for seq, body in self._db.execute(
            "SELECT seq, body FROM operations WHERE arn = ? ORDER BY rowid", (arn,)
        ):
            yield seq, orjson.loads(body)

    def events(self, arn: str) -> list[dict[str, Any]]:
        rows = self._db.execute("SELECT event_id, body FROM events WHERE arn = ? ORDER BY event_id", (arn,))
        return [{"EventId": event_id, **orjson.loads(body)} for event_id, body in rows]

    def event_count(self, arn: str) -> int:
        row = self._db.execute("SELECT max(event_id) FROM events WHERE arn = ?", (arn,)).fetchone()
        return int(row[0] or 0)

    def callback(self, callback_id: str) -> tuple[str, str] | None:
        row = self._db.execute(
            "SELECT arn, operation_id FROM callbacks WHERE callback_id = ?", (callback_id,)
        ).fetchone()
        return (row[0], row[1]) if row else None


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on an exception."""

    __slots__ = ("_db",)

    def __init__(self, db: sqlite3.Connection):
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")
