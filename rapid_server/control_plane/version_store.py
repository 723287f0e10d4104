"""Published versions, aliases and provisioned-concurrency settings of the functions the API created, in
the function store's database (`functions.sqlite3` under `--state-dir`), each change one transaction.

A version names its code by the same content-addressed zip as the function it was published from, so
publishing copies no code. Version numbers are never reused while the function exists (the service's
rule), so the last number given is kept apart from the versions themselves (`version_counters`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from .store import StoredFunction, open_database

_SCHEMA = (
    """
CREATE TABLE IF NOT EXISTS versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    settings TEXT NOT NULL,      -- JSON: the function's settings when published
    code_path TEXT NOT NULL,     -- the content-addressed zip ($LATEST's at the time)
    code_sha256 TEXT NOT NULL,
    code_size INTEGER NOT NULL,
    description TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (name, version)
)""",
    "CREATE TABLE IF NOT EXISTS version_counters (name TEXT PRIMARY KEY, last INTEGER NOT NULL)",
    """
CREATE TABLE IF NOT EXISTS aliases (
    name TEXT NOT NULL,
    alias TEXT NOT NULL,
    function_version TEXT NOT NULL,
    description TEXT NOT NULL,
    weights TEXT NOT NULL,       -- JSON: RoutingConfig.AdditionalVersionWeights ({} without routing)
    revision_id TEXT NOT NULL,
    PRIMARY KEY (name, alias)
)""",
    """
CREATE TABLE IF NOT EXISTS provisioned_concurrency (
    name TEXT NOT NULL,
    qualifier TEXT NOT NULL,     -- a version number or an alias
    requested INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (name, qualifier)
)""",
)


@dataclass(frozen=True, slots=True)
class StoredVersion:
    function: StoredFunction  # the snapshot: its settings, code, RevisionId and LastModified
    number: int
    description: str


@dataclass(frozen=True, slots=True)
class StoredAlias:
    name: str  # the function's
    alias: str
    function_version: str
    description: str
    weights: dict[str, float]
    revision_id: str


@dataclass(frozen=True, slots=True)
class StoredProvisioned:
    name: str
    qualifier: str
    requested: int
    last_modified: str


class VersionStore:
    def __init__(self, directory: Path):
        # Its own connection to the function store's database (WAL lets both commit).
        self._db = open_database(directory / "functions.sqlite3", _SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- versions

    def versions(self) -> list[StoredVersion]:
        rows = self._db.execute(
            "SELECT name, version, settings, code_path, code_sha256, code_size, description, revision_id,"
            " last_modified FROM versions ORDER BY name, version"
        ).fetchall()
        return [
            StoredVersion(
                StoredFunction(name, orjson.loads(settings), Path(path), sha, size, revision, modified),
                number,
                description,
            )
            for name, number, settings, path, sha, size, description, revision, modified in rows
        ]

    def next_number(self, name: str) -> int:
        row = self._db.execute("SELECT last FROM version_counters WHERE name = ?", (name,)).fetchone()
        return (row[0] if row is not None else 0) + 1

    def put_version(self, version: StoredVersion) -> None:
        """The version and the function's counter, in one transaction."""
        function = version.function
        with self._db:
            self._db.execute(
                "INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    function.name,
                    version.number,
                    orjson.dumps(function.settings).decode(),
                    str(function.code_path),
                    function.code_sha256,
                    function.code_size,
                    version.description,
                    function.revision_id,
                    function.last_modified,
                ),
            )
            self._db.execute(
                "INSERT OR REPLACE INTO version_counters VALUES (?, ?)", (function.name, version.number)
            )

    def delete_version(self, name: str, number: int) -> None:
        with self._db:
            self._db.execute("DELETE FROM versions WHERE name = ? AND version = ?", (name, number))
            self._db.execute(
                "DELETE FROM provisioned_concurrency WHERE name = ? AND qualifier = ?", (name, str(number))
            )

    def forget(self, name: str) -> None:
        """Everything of a deleted function (its version numbers start again at 1 if it is created anew)."""
        with self._db:
            for table in ("versions", "version_counters", "aliases", "provisioned_concurrency"):
                self._db.execute(f"DELETE FROM {table} WHERE name = ?", (name,))

    # -- aliases

    def aliases(self) -> list[StoredAlias]:
        rows = self._db.execute(
            "SELECT name, alias, function_version, description, weights, revision_id FROM aliases"
            " ORDER BY name, alias"
        ).fetchall()
        return [
            StoredAlias(name, alias, version, description, orjson.loads(weights), revision)
            for name, alias, version, description, weights, revision in rows
        ]

    def put_alias(self, alias: StoredAlias) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO aliases VALUES (?, ?, ?, ?, ?, ?)",
                (
                    alias.name,
                    alias.alias,
                    alias.function_version,
                    alias.description,
                    orjson.dumps(alias.weights).decode(),
                    alias.revision_id,
                ),
            )

    def delete_alias(self, name: str, alias: str) -> None:
        with self._db:
            self._db.execute("DELETE FROM aliases WHERE name = ? AND alias = ?", (name, alias))
            self._db.execute(
                "DELETE FROM provisioned_concurrency WHERE name = ? AND qualifier = ?", (name, alias)
            )

    # -- provisioned concurrency

    def provisioned(self) -> list[StoredProvisioned]:
        rows = self._db.execute(
            "SELECT name, qualifier, requested, last_modified FROM provisioned_concurrency"
            " ORDER BY name, qualifier"
        ).fetchall()
        return [StoredProvisioned(*row) for row in rows]

    def put_provisioned(self, setting: StoredProvisioned) -> None:
        with self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO provisioned_concurrency VALUES (?, ?, ?, ?)",
                (setting.name, setting.qualifier, setting.requested, setting.last_modified),
            )

    def delete_provisioned(self, name: str, qualifier: str) -> None:
        with self._db:
            self._db.execute(
                "DELETE FROM provisioned_concurrency WHERE name = ? AND qualifier = ?", (name, qualifier)
            )
