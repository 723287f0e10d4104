"""Layers through the API: PublishLayerVersion, GetLayerVersion(ByArn), ListLayers, ListLayerVersions and
DeleteLayerVersion, and the resolution of a function's `Layers` (version ARNs) to our local copies.

A version's zip is kept content-addressed beside the functions' (`code/<sha256>.zip`, fsynced before the row
that names it; written under the control plane's lock, so a refused function cannot remove a layer's
file), its metadata in `layers.sqlite3`. A function records the path of each of its layers' zips when it is
created or updated, so deleting a layer version keeps the functions that use it working, also across a
restart, as on Lambda ("a copy of the version remains in Lambda until no functions refer to it"); we keep
that copy for good, like a function's replaced code. Version numbers are never reused, also after a delete,
as on Lambda: `layer_names` counts them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import orjson

from rapidboot.layers import LayerCache, LayerError, Limits
from rapidboot.layers.limits import LAMBDA_MAX_LAYERS, Budget
from rapidboot.layers.merge import layer_sources

from .. import errors
from ..errors import ServiceError
from ..paging import page_after, page_size
from . import code_limits
from .store import open_database

if TYPE_CHECKING:
    from .functions import ControlPlane

ARCHITECTURES = ("x86_64", "arm64")
MAX_COMPATIBLE_RUNTIMES = 15
MAX_DESCRIPTION = 256
MAX_LICENSE_INFO = 512
LIST_PAGE_MAX = 50  # MaxLayerListItems: 1-50, and the page size when MaxItems is not given
_LAYER_NAME = re.compile(r"[a-zA-Z0-9\-_]{1,140}")
_LAYER_ARN = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):layer:"
    r"(?P<name>[a-zA-Z0-9\-_]+)(?::(?P<version>[0-9]+))?"
)
_RUNTIME = re.compile(r"[a-z0-9.]{1,32}")

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS layer_names (name TEXT PRIMARY KEY, last_version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS layer_versions (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        description TEXT NOT NULL,
        created TEXT NOT NULL,
        runtimes TEXT NOT NULL,        -- JSON list, CompatibleRuntimes as given
        architectures TEXT NOT NULL,   -- JSON list, CompatibleArchitectures as given
        license TEXT,
        code_sha256 TEXT NOT NULL,     -- base64, as the service reports CodeSha256
        code_size INTEGER NOT NULL,    -- the zip's bytes
        code_path TEXT NOT NULL,
        PRIMARY KEY (name, version)
    )""",
)
_COLUMNS = (
    "name, version, description, created, runtimes, architectures, license, code_sha256, code_size, code_path"
)


def _invalid(message: str) -> ServiceError:
    return ServiceError(400, errors.INVALID_PARAMETER_VALUE, message)


@dataclass(frozen=True, slots=True)
class LayerVersion:
    name: str
    version: int
    description: str
    created: str
    runtimes: tuple[str, ...]
    architectures: tuple[str, ...]
    license: str | None
    code_sha256: str
    code_size: int
    code_path: Path


class LayerStore:
    """The layer versions' metadata; one connection, used from the event loop only."""

    def __init__(self, directory: Path):
        self._db = open_database(directory / "layers.sqlite3", _SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, draft: LayerVersion) -> LayerVersion:
        """Insert `draft` as the layer's next version (its `version` is ignored): one transaction."""
        with self._db:
            self._db.execute(
                "INSERT INTO layer_names VALUES (?, 1) "
                "ON CONFLICT (name) DO UPDATE SET last_version = last_version + 1",
                (draft.name,),
            )
            (version,) = self._db.execute(
                "SELECT last_version FROM layer_names WHERE name = ?", (draft.name,)
            ).fetchone()
            self._db.execute(
                f"INSERT INTO layer_versions ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    draft.name,
                    version,
                    draft.description,
                    draft.created,
                    orjson.dumps(draft.runtimes).decode(),
                    orjson.dumps(draft.architectures).decode(),
                    draft.license,
                    draft.code_sha256,
                    draft.code_size,
                    str(draft.code_path),
                ),
            )
        return self.get(draft.name, version) or draft

    def get(self, name: str, version: int) -> LayerVersion | None:
        row = self._db.execute(
            f"SELECT {_COLUMNS} FROM layer_versions WHERE name = ? AND version = ?", (name, version)
        ).fetchone()
        return _version(row) if row is not None else None

    def versions(self, name: str | None = None) -> list[LayerVersion]:
        """Every version (of one layer), by name, newest version first."""
        where, args = ("WHERE name = ?", (name,)) if name is not None else ("", ())
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM layer_versions {where} ORDER BY name, version DESC", args
        ).fetchall()
        return [_version(row) for row in rows]

    def delete(self, name: str, version: int) -> None:
        with self._db:
            self._db.execute("DELETE FROM layer_versions WHERE name = ? AND version = ?", (name, version))

    def total_code_size(self) -> int:
        (total,) = self._db.execute("SELECT coalesce(sum(code_size), 0) FROM layer_versions").fetchone()
        return int(total)


def _version(row: tuple[str, int, str, str, str, str, str | None, str, int, str]) -> LayerVersion:
    name, version, description, created, runtimes, architectures, license_info, sha, size, path = row
    return LayerVersion(
        name,
        version,
        description,
        created,
        tuple(orjson.loads(runtimes)),
        tuple(orjson.loads(architectures)),
        license_info,
        sha,
        size,
        Path(path),
    )


class Layers:
    """The layer operations, on the control plane's store and lock."""

    def __init__(self, control: ControlPlane, store: LayerStore):
        self.control = control
        self.store = store

    # -- names and ARNs

    def layer_arn(self, name: str) -> str:
        config = self.control.state.config
        return f"arn:aws:lambda:{config.region}:{config.account_id}:layer:{name}"

    def version_arn(self, layer: LayerVersion) -> str:
        return f"{self.layer_arn(layer.name)}:{layer.version}"

    def layer_name(self, raw: str) -> str:
        """A LayerName path parameter: a name, or the layer's ARN (ours: this server's region and account)."""
        if _LAYER_NAME.fullmatch(raw):
            return raw
        match = _LAYER_ARN.fullmatch(raw)
        if match is None or match["version"] is not None:
            raise _invalid(
                f"LayerName: {raw!r} is neither a layer name (1-140 of a-z A-Z 0-9 - _) nor a layer ARN"
            )
        self._check_ours(raw, match)
        return match["name"]

    def _check_ours(self, arn: str, match: re.Match[str]) -> None:
        config = self.control.state.config
        if match["region"] != config.region:
            raise _invalid(
                f"Layers are not in the same region as the function. Layers are expected to be in region "
                f"{config.region}. ({arn})"
            )
        if match["account"] != config.account_id:
            raise _invalid(
                f"Layer version {arn} does not exist. Only this server's layers (account "
                f"{config.account_id}) are served here: publish it with PublishLayerVersion"
            )

    # -- operations

    async def publish(self, raw_name: str, body: dict[str, object]) -> dict[str, object]:
        name = self.layer_name(raw_name)
        content = body.get("Content")
        if not isinstance(content, dict):
            raise _invalid("Content: required, with ZipFile (base64)")
        if "S3Bucket" in content or "S3Key" in content:
            raise _invalid(
                "Content.S3Bucket/S3Key: there is no S3 here; send Content.ZipFile (base64) instead"
            )
        description = _text(body, "Description", MAX_DESCRIPTION) or ""
        license_info = _text(body, "LicenseInfo", MAX_LICENSE_INFO)
        runtimes = _names(body, "CompatibleRuntimes", MAX_COMPATIBLE_RUNTIMES, None)
        architectures = _names(body, "CompatibleArchitectures", len(ARCHITECTURES), ARCHITECTURES)
        zipped = code_limits.zip_bytes(content.get("ZipFile"), "Content.ZipFile", "PublishLayerVersion")
        control = self.control
        async with control.lock:
            code_limits.check_storage(control, len(zipped))
            path, sha, fresh = await asyncio.to_thread(control.store.put_code, zipped)
            try:
                await asyncio.to_thread(self._check_zip, path)
            except BaseException:
                if fresh:
                    path.unlink(missing_ok=True)  # a refused layer leaves nothing behind
                raise
            created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
            draft = LayerVersion(
                name, 0, description, created, runtimes, architectures, license_info, sha, len(zipped), path
            )
            return self.render(self.store.add(draft))

    def _check_zip(self, path: Path) -> None:
        """Extracted once, with the service's limits: a broken or oversized zip is refused now, and a
        function using this layer alone finds its /opt already in the cache."""
        cache = LayerCache(self.control.state.config.state_dir / "layers")
        try:
            cache.tree(layer_sources([path]), Budget(Limits()))
        except LayerError as exc:
            raise code_limits.refusal(str(exc), {f"layer 1 '{path}'": "Content.ZipFile"}) from None

    def get(self, raw_name: str, raw_version: str) -> dict[str, object]:
        return self.render(self._find(self.layer_name(raw_name), _version_number(raw_version)))

    def get_by_arn(self, arn: str | None) -> dict[str, object]:
        match = _LAYER_ARN.fullmatch(arn or "")
        if match is None or match["version"] is None:
            raise _invalid(
                f"Arn: {arn!r} is not a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:N)"
            )
        self._check_ours(arn or "", match)
        return self.render(self._find(match["name"], int(match["version"])))

    async def delete(self, raw_name: str, raw_version: str) -> None:
        """Idempotent: deleting a version that is not there answers 204 too, as the service does."""
        name, version = self.layer_name(raw_name), _version_number(raw_version)
        async with self.control.lock:
            self.store.delete(name, version)

    def list_layers(self, query: dict[str, list[str]]) -> dict[str, object]:
        runtime, architecture, marker, limit = _list_query(query)
        latest: dict[str, LayerVersion] = {}
        for layer in self.store.versions():  # newest first within each name
            if layer.name not in latest and _matches(layer, runtime, architecture):
                latest[layer.name] = layer
        page, next_marker = page_after(list(latest), str, marker, limit)
        body: dict[str, object] = {
            "Layers": [
                {
                    "LayerName": name,
                    "LayerArn": self.layer_arn(name),
                    "LatestMatchingVersion": self._item(latest[name]),
                }
                for name in page
            ]
        }
        if next_marker is not None:
            body["NextMarker"] = next_marker
        return body

    def list_versions(self, raw_name: str, query: dict[str, list[str]]) -> dict[str, object]:
        runtime, architecture, marker, limit = _list_query(query)
        name = self.layer_name(raw_name)
        if marker and not marker.isdigit():
            raise _invalid(f"Marker: {marker!r} is not a NextMarker of ListLayerVersions")
        before = int(marker) if marker else None
        versions = [
            layer
            for layer in self.store.versions(name)
            if _matches(layer, runtime, architecture) and (before is None or layer.version < before)
        ]
        page = versions[:limit]
        body: dict[str, object] = {"LayerVersions": [self._item(layer) for layer in page]}
        if len(versions) > limit:
            body["NextMarker"] = str(page[-1].version)
        return body

    def resolve(self, value: object) -> list[dict[str, object]]:
        """A function's `Layers`: what its settings keep of each (ARN, size, and the path of our copy)."""
        if not isinstance(value, list) or not all(isinstance(arn, str) for arn in value):
            raise _invalid("Layers: must be a list of layer version ARNs")
        if len(value) > LAMBDA_MAX_LAYERS:
            raise _invalid(
                f"Layers: Cannot reference more than {LAMBDA_MAX_LAYERS} layers ({len(value)} given)."
            )
        resolved: list[dict[str, object]] = []
        seen: dict[str, str] = {}
        for arn in value:
            match = _LAYER_ARN.fullmatch(arn)
            if match is None or match["version"] is None:
                raise _invalid(
                    f"Layers: {arn!r} is not a layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:N)"
                )
            self._check_ours(arn, match)
            if match["name"] in seen:
                raise _invalid(
                    "Two different versions of the same layer are not allowed to be referenced in the same "
                    f"function. {seen[match['name']]} and {arn} are versions of the same layer."
                )
            seen[match["name"]] = arn
            layer = self.store.get(match["name"], int(match["version"]))
            if layer is None:
                raise _invalid(f"Layer version {arn} does not exist.")
            resolved.append(
                {"Arn": self.version_arn(layer), "CodeSize": layer.code_size, "Path": str(layer.code_path)}
            )
        return resolved

    # -- rendering

    def _find(self, name: str, version: int) -> LayerVersion:
        layer = self.store.get(name, version)
        if layer is None:
            raise ServiceError(
                404,
                errors.RESOURCE_NOT_FOUND,
                f"The resource you requested does not exist: layer version {self.layer_arn(name)}:{version}",
            )
        return layer

    def render(self, layer: LayerVersion) -> dict[str, object]:
        """GetLayerVersionResponse (and PublishLayerVersion's)."""
        body: dict[str, object] = {
            "Content": {
                "Location": layer.code_path.as_uri(),
                "CodeSha256": layer.code_sha256,
                "CodeSize": layer.code_size,
            },
            "LayerArn": self.layer_arn(layer.name),
            **self._item(layer),
        }
        return body

    def _item(self, layer: LayerVersion) -> dict[str, object]:
        """LayerVersionsListItem."""
        item: dict[str, object] = {
            "LayerVersionArn": self.version_arn(layer),
            "Version": layer.version,
            "Description": layer.description,
            "CreatedDate": layer.created,
            "CompatibleRuntimes": list(layer.runtimes),
            "CompatibleArchitectures": list(layer.architectures),
        }
        if layer.license is not None:
            item["LicenseInfo"] = layer.license
        return item


def _matches(layer: LayerVersion, runtime: str | None, architecture: str | None) -> bool:
    return (runtime is None or runtime in layer.runtimes) and (
        architecture is None or architecture in layer.architectures
    )


def _list_query(query: dict[str, list[str]]) -> tuple[str | None, str | None, str | None, int]:
    def one(key: str) -> str | None:
        values = query.get(key)
        return values[-1] if values else None

    architecture = one("CompatibleArchitecture")
    if architecture is not None and architecture not in ARCHITECTURES:
        raise _invalid(f"CompatibleArchitecture: {architecture!r} is not one of {', '.join(ARCHITECTURES)}")
    limit = page_size(one("MaxItems"), LIST_PAGE_MAX, LIST_PAGE_MAX)
    return one("CompatibleRuntime"), architecture, one("Marker"), limit


def _version_number(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) < 2**63:
        raise _invalid(f"VersionNumber: {raw!r} must be a layer version number (1, 2, ...)")
    return int(raw)


def _text(body: dict[str, object], key: str, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _invalid(f"{key}: must be a string of at most {limit} characters")
    return value


def _names(body: dict[str, object], key: str, limit: int, allowed: Sequence[str] | None) -> tuple[str, ...]:
    value = body.get(key, [])
    if not isinstance(value, list) or len(value) > limit or not all(isinstance(v, str) for v in value):
        raise _invalid(f"{key}: must be a list of at most {limit} names")
    for item in value:
        if (allowed is not None and item not in allowed) or (
            allowed is None and not _RUNTIME.fullmatch(item)
        ):
            expected = ", ".join(allowed) if allowed is not None else "a runtime identifier, e.g. python3.12"
            raise _invalid(f"{key}: {item!r} is not {expected}")
    return tuple(value)
