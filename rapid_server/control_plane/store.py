"""Functions created through the API, kept under `--state-dir`: their metadata in one SQLite database,
their code as content-addressed zip files (`code/<sha256>.zip`), written before the row that names them.

An update is one transaction after its code is in place, so a restart (or a SIGKILL between the write
and the answer) sees the function whole as it was, or whole as it became; a code file no row names is
only unused space.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import orjson

_SCHEMA = """
CREATE TABLE IF NOT EXISTS functions (
    name TEXT PRIMARY KEY,
    settings TEXT NOT NULL,      -- JSON: Handler, Runtime, MemorySize, Timeout, Environment, ...
    code_path TEXT NOT NULL,     -- a content-addressed zip of ours, or a local directory (our extension)
    code_sha256 TEXT NOT NULL,   -- base64, as the service reports CodeSha256
    code_size INTEGER NOT NULL,
    revision_id TEXT NOT NULL,
    last_modified TEXT NOT NULL
)
"""


# PutFunctionRecursionConfig: a row only for a function that is not the default (Terminate). Keyed by name
# alone, so it also holds for a function from the configuration (with `serve --allow-updates`).
_RECURSION_SCHEMA = """
CREATE TABLE IF NOT EXISTS recursion (
    name TEXT PRIMARY KEY,
    recursive_loop TEXT NOT NULL  -- Allow
)
"""


@dataclass(frozen=True, slots=True)
class StoredFunction:
    name: str
    settings: dict[str, object]
    code_path: Path
    code_sha256: str
    code_size: int
    revision_id: str
    last_modified: str


def open_database(path: Path, schema: Sequence[str]) -> sqlite3.Connection:
    """A control plane database (functions, versions, layers): one connection, used from the event loop
    only; autocommit off, one `with` per transaction; WAL, so two connections to one file can both commit,
    and FULL sync, so a committed answer survives a power cut. `schema`'s statements run once, together."""
    db = sqlite3.connect(path, isolation_level="IMMEDIATE")
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    with db:
        for statement in schema:
            db.execute(statement)
    return db


class FunctionStore:
    def __init__(self, directory: Path):
        self.directory = directory
        self.code_dir = directory / "code"
        self.code_dir.mkdir(parents=True, exist_ok=True)
        self._db = open_database(directory / "functions.sqlite3", (_SCHEMA, _RECURSION_SCHEMA))

    def close(self) -> None:
        self._db.close()

    def put_code(self, zipped: bytes) -> tuple[Path, str, bool]:
        """Write a zip under its sha256 (fsynced, then renamed into place); returns its path, its
        CodeSha256 (base64 of the digest, as the service reports it) and whether it is new."""
        digest = hashlib.sha256(zipped)
        path = self.code_dir / f"{digest.hexdigest()}.zip"
        fresh = not path.exists()
        if fresh:
            fd, staging = tempfile.mkstemp(dir=self.code_dir, suffix=".partial")
            try:
                with os.fdopen(fd, "wb") as file:
                    file.write(zipped)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(staging, path)
                _fsync_directory(self.code_dir)  # the rename itself, before a row may name the file
            except BaseException:
                Path(staging).unlink(missing_ok=True)
                raise
        return path, base64.b64encode(digest.digest()).decode(), fresh

    def all(self) -> list[StoredFunction]:
        rows = self._db.execute(
            "SELECT name, settings, code_path, code_sha256, code_size, revision_id, last_modified "
            "FROM functions ORDER BY name"
        ).fetchall()
        return [_stored(row) for row in rows]

    def get(self, name: str) -> StoredFunction | None:
        row = self._db.execute(
            "SELECT name, settings, code_path, code_sha256, code_size, revision_id, last_modified "
            "FROM functions WHERE name = ?",
            (name,),
        ).fetchone()
        return _stored(row) if row is not None else None

    def put(self, function: StoredFunction) -> None:
        """Insert or replace one function: one transaction."""
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO functions VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    function.name,
                    orjson.dumps(function.settings).decode(),
                    str(function.code_path),
                    function.code_sha256,
                    function.code_size,
                    function.revision_id,
                    function.last_modified,
                ),
            )

    def delete(self, name: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM functions WHERE name = ?", (name,))
            self._db.execute("DELETE FROM recursion WHERE name = ?", (name,))

    def recursion_allowed(self) -> set[str]:
        """The functions whose RecursiveLoop is Allow."""
        return {name for (name,) in self._db.execute("SELECT name FROM recursion")}

    def put_recursion(self, name: str, allowed: bool) -> None:
        with self._db:
            if allowed:
                self._db.execute("INSERT OR REPLACE INTO recursion VALUES (?, 'Allow')", (name,))
            else:
                self._db.execute("DELETE FROM recursion WHERE name = ?", (name,))


def _stored(row: tuple[str, str, str, str, int, str, str]) -> StoredFunction:
    name, settings, code_path, sha, size, revision, modified = row
    return StoredFunction(name, orjson.loads(settings), Path(code_path), sha, size, revision, modified)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
