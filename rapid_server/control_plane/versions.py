"""Published versions: PublishVersion, ListVersionsByFunction, GetFunction / GetFunctionConfiguration /
DeleteFunction with a Qualifier, and what an invoke of `name:3`, `name:alias` or `Qualifier=` runs.

On the data plane a version is a function of its own: a `Function` (a pool of environments) built from
the snapshot of settings and code taken at publishing, with a qualified ARN and `version` "3" (the
runtime's AWS_LAMBDA_FUNCTION_VERSION). It is kept here, not in `ServerState.functions`: that mapping is
$LATEST's, which a reload or an update refreshes; a version never changes. A version counts against its
function's concurrency (the limiter counts by name), as the service counts a function's versions together.

A version shares its content-addressed zip with the $LATEST it was published from, and its extracted
task root too (the layer cache keys by content), so publishing copies nothing and its first invoke is
as quick as $LATEST's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rapidboot.layers import LayerError, prepare_function

from .. import errors
from ..async_invokes.dispatcher import EventTarget, latest_only
from ..config import ConfigError
from ..data_plane.function import Function
from ..errors import ServiceError
from ..paging import page_size
from . import settings, shapes
from .functions import _invalid, function_config
from .version_store import StoredVersion, VersionStore

if TYPE_CHECKING:
    from .aliases import Aliases
    from .functions import ControlPlane
    from .provisioned import ProvisionedConcurrency

LATEST = "$LATEST"
RESOURCE_CONFLICT = "ResourceConflictException"


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def not_found(arn: str) -> ServiceError:
    return ServiceError(404, errors.RESOURCE_NOT_FOUND, f"Function not found: {arn}")


def split_qualifier(raw: str) -> tuple[str, str]:
    """`name`, `name:Q`, `ACCOUNT:function:name[:Q]` or a full ARN: the name and the qualifier ("")."""
    rest = raw.split("function:", 1)[1] if ":function:" in raw or raw.startswith("function:") else raw
    name, _, qualifier = rest.partition(":")
    return name, qualifier


def _marker_version(marker: str) -> str:
    if marker != LATEST and not marker.isdigit():
        raise _invalid(f"Marker: {marker!r} is not a marker this operation gave")
    return marker


def _rank(version: str) -> int:
    """$LATEST first, then the versions by number."""
    return 0 if version == LATEST else int(version)


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """What one invoke runs: the pool, the version it reports (X-Amz-Executed-Version) and the ARN it
    was invoked by (the runtime's `invoked_function_arn`)."""

    function: Function
    executed_version: str
    invoked_arn: str


class Versions:
    def __init__(self, control: ControlPlane):
        from .aliases import Aliases  # these import this module
        from .provisioned import ProvisionedConcurrency

        self.control = control
        self.state = control.state
        self.store = VersionStore(control.store.directory)
        self._records: dict[str, dict[str, StoredVersion]] = {}  # function -> "3" -> its snapshot
        self._pools: dict[tuple[str, str], Function] = {}  # (function, "3") -> its environments
        self._drained: list[Function] = []  # deleted versions perhaps finishing an invoke
        self._lock = asyncio.Lock()  # one version or alias mutation at a time: each awaits
        self.aliases: Aliases = Aliases(self)
        self.provisioned: ProvisionedConcurrency = ProvisionedConcurrency(self)

    async def start(self) -> None:
        """Serve the stored versions of the functions the API created and the server serves (one that a
        configured function of the same name shadows is kept, unserved). Provisioned ones are ready when
        this returns."""
        served = self.control.served()
        names = {record.name for record in self.control.store.all()}
        for version in self.store.versions():
            name = version.function.name
            if name not in names:  # its function was deleted and the server stopped before this forgot it
                self.store.forget(name)
                continue
            if name in served:
                self._records.setdefault(name, {})[str(version.number)] = version
        self.aliases.load(served)
        self.provisioned.load(served)
        await asyncio.gather(
            *(self._open(version) for records in self._records.values() for version in records.values())
        )

    async def stop(self) -> None:
        await asyncio.gather(*(pool.stop() for pool in (*self._pools.values(), *self._drained)))
        self.store.close()

    # -- the invoke path

    def resolve(self, name: str, qualifier: str) -> Target | None:
        """The pool an invoke of `name:qualifier` runs in (a version, or an alias's pick), None if neither."""
        pool = self._pools.get((name, qualifier))
        if pool is not None:
            return Target(pool, qualifier, pool.arn)
        version = self.aliases.pick(name, qualifier)
        if version is None:
            return None
        alias_arn = f"{self.state.function_arn(name)}:{qualifier}"
        pool = self.state.functions.get(name) if version == LATEST else self._pools.get((name, version))
        return Target(pool, version, alias_arn) if pool is not None else None

    def event_target(self, latest: Function, qualifier: str) -> EventTarget | None:
        """Where a queued Event invoke of `name:qualifier` runs (dispatcher.py), resolved when it runs: an
        alias picks its version then. None if the version or alias is gone."""
        if qualifier in ("", LATEST):
            return latest_only(latest, "")
        name = latest.config.name
        target = self.resolve(name, qualifier)
        if target is None:
            return None
        stored = self.control.store.get(name)
        config = settings.qualified_event_config(
            stored.settings if stored is not None else {}, qualifier, target.function.config
        )
        return EventTarget(target.function, config, target.invoked_arn, target.executed_version)

    # -- reads

    def exists(self, name: str, version: str) -> bool:
        return version == LATEST or version in self._records.get(name, {})

    def numbers(self, name: str) -> Iterator[str]:
        return iter(self._records.get(name, {}))

    def configuration(self, raw_name: str, query_qualifier: str | None) -> dict[str, object]:
        """GetFunctionConfiguration of a version or an alias (whose FunctionArn is the alias's)."""
        name, qualifier = self._qualified(raw_name, query_qualifier)
        function, stored = self.control.find(name)
        if qualifier == LATEST:
            body = shapes.configuration(self.state, function, stored)
            body["FunctionArn"] = f"{function.arn}:{LATEST}"
            return body
        version = self._records.get(name, {}).get(qualifier)
        if version is not None:
            return self.render(version)
        alias = self.aliases.get(name, qualifier)
        body = (
            shapes.configuration(self.state, function, stored)
            if alias.function_version == LATEST
            else self.render(self._records[name][alias.function_version])
        )
        body["FunctionArn"] = f"{function.arn}:{qualifier}"
        return body

    def get_function(self, raw_name: str, query_qualifier: str | None) -> dict[str, object]:
        configuration = self.configuration(raw_name, query_qualifier)
        name, _ = split_qualifier(raw_name)
        version = self._records.get(name, {}).get(str(configuration["Version"]))
        function, stored = self.control.find(name)
        if version is not None:
            code = version.function.code_path
        else:
            code = stored.code_path if stored is not None else function.config.code
        return {"Configuration": configuration, "Code": {"RepositoryType": "S3", "Location": code.as_uri()}}

    def list(self, raw_name: str, marker: str | None, max_items: str | None) -> dict[str, object]:
        """ListVersionsByFunction: $LATEST, then the versions oldest first; the marker is the last Version
        of the page before."""
        limit = page_size(max_items)
        name, _ = split_qualifier(raw_name)
        function, stored = self.control.find(name)
        order = [LATEST, *self._records.get(name, {})]
        if marker:  # by position, so that a version deleted between two pages changes nothing
            order = [version for version in order if _rank(version) > _rank(_marker_version(marker))]
        page = order[:limit]
        versions = [
            shapes.configuration(self.state, function, stored)
            if version == LATEST
            else self.render(self._records[name][version])
            for version in page
        ]
        body: dict[str, object] = {"Versions": versions}
        if len(order) > limit:
            body["NextMarker"] = page[-1]
        return body

    def list_all(self, marker: str | None, max_items: str | None) -> dict[str, object]:
        """ListFunctions with FunctionVersion=ALL: each function's $LATEST, then its versions; the marker
        is the last `name:version` of the page before."""
        limit = page_size(max_items)
        entries = [
            (name, version)
            for name in sorted(self.state.functions)
            for version in (LATEST, *self._records.get(name, {}))
        ]
        if marker:
            after = marker.rpartition(":")
            last = (after[0], _rank(_marker_version(after[2])))
            entries = [(name, version) for name, version in entries if (name, _rank(version)) > last]
        page = entries[:limit]
        body: dict[str, object] = {
            "Functions": [
                shapes.configuration(self.state, self.state.functions[name], self.control.store.get(name))
                if version == LATEST
                else self.render(self._records[name][version])
                for name, version in page
            ]
        }
        if len(entries) > limit:
            body["NextMarker"] = ":".join(page[-1])
        return body

    def render(self, version: StoredVersion) -> dict[str, object]:
        record = version.function
        pool = self._pools[(record.name, str(version.number))]
        body = shapes.configuration(self.state, pool, record)
        body.update(Version=str(version.number), Description=version.description)
        return body

    # -- mutations

    async def publish(self, raw_name: str, body: dict[str, object]) -> StoredVersion:
        """PublishVersion: a snapshot of $LATEST's code and settings, or the latest version if neither
        changed since it was published (as the service answers)."""
        name, qualifier = split_qualifier(raw_name)
        if qualifier:
            raise _invalid(
                f"FunctionName: {raw_name!r}: a version is published from the unqualified function"
            )
        for field in ("CodeSha256", "Description", "RevisionId"):
            if field in body and not isinstance(body[field], str):
                raise _invalid(f"{field}: must be a string")
        async with self._lock:
            current = self.control._writable(name)
            revision = body.get("RevisionId")
            if revision is not None and revision != current.revision_id:
                raise errors.stale_revision(revision, current.revision_id)
            sha = body.get("CodeSha256")
            if sha is not None and sha != current.code_sha256:
                raise _invalid(
                    f"CodeSha256: {sha} is different from the current CodeSha256 of $LATEST "
                    f"({current.code_sha256}); publish with the CodeSha256 of $LATEST"
                )
            if not current.code_sha256:
                raise _invalid(
                    f"FunctionName: {name} serves a local directory in place (RapidbootDirectory), which has "
                    "no immutable package to publish; deploy it with Code.ZipFile to publish versions"
                )
            records = self._records.get(name, {})
            if records:
                latest = records[max(records, key=int)]
                if (latest.function.settings, latest.function.code_sha256) == (
                    current.settings,
                    current.code_sha256,
                ):
                    return latest
            description = body.get("Description", current.settings.get("Description", ""))
            snapshot = dataclasses.replace(current, revision_id=str(uuid.uuid4()), last_modified=now())
            version = StoredVersion(snapshot, self.store.next_number(name), str(description))
            await self._open(version)  # the pool is up (provisioned environments too) before the row
            if self.control.store.get(name) is None:  # the function was deleted meanwhile
                self._close(name, str(version.number))
                raise not_found(self.state.function_arn(name))
            self.store.put_version(version)
            self._records.setdefault(name, {})[str(version.number)] = version
            return version

    async def delete(self, raw_name: str, query_qualifier: str | None) -> None:
        """DeleteFunction with a Qualifier: one version, not one an alias routes to."""
        name, qualifier = self._qualified(raw_name, query_qualifier)
        async with self._lock:
            self.control._writable(name)
            if qualifier == LATEST:
                raise _invalid("Qualifier: $LATEST version cannot be deleted without deleting the function")
            if qualifier not in self._records.get(name, {}):
                if self.aliases.get_or_none(name, qualifier) is not None:
                    raise _invalid(f"Qualifier: {qualifier} is an alias; delete it with DeleteAlias")
                raise not_found(f"{self.state.function_arn(name)}:{qualifier}")
            referring = self.aliases.referring_to(name, qualifier)
            if referring:
                raise ServiceError(
                    409,
                    RESOURCE_CONFLICT,
                    "Unable to delete version because the following aliases reference it: "
                    f"[{', '.join(referring)}]",
                )
            self.store.delete_version(name, int(qualifier))
            del self._records[name][qualifier]
            self.provisioned.forget(name, qualifier)
            self._close(name, qualifier)
            await settings.forget_qualified(self.control, name, qualifier)

    def forget(self, name: str) -> None:
        """DeleteFunction without a Qualifier: its versions and aliases go with it."""
        self.store.forget(name)
        for number in list(self._records.pop(name, {})):
            self._close(name, number)
        self.aliases.forget(name)
        self.provisioned.forget(name)

    # -- steps

    def _qualified(self, raw_name: str, query_qualifier: str | None) -> tuple[str, str]:
        name, qualifier = split_qualifier(raw_name)
        if qualifier and query_qualifier and qualifier != query_qualifier:
            raise _invalid(
                f"The derived qualifier from the function name ({qualifier}) does not match the specified "
                f"qualifier ({query_qualifier})."
            )
        qualifier = qualifier or query_qualifier or LATEST
        if (
            qualifier != LATEST
            and qualifier not in self._records.get(name, {})
            and self.aliases.get_or_none(name, qualifier) is None
        ):
            self.control.find(name)  # an unknown function first
            raise not_found(f"{self.state.function_arn(name)}:{qualifier}")
        return name, qualifier

    async def _open(self, version: StoredVersion) -> None:
        record = version.function
        number = str(version.number)
        config = dataclasses.replace(
            function_config(record.name, record.settings, record.code_path, published=True),
            version=number,
            provisioned_concurrency=self.provisioned.count_for(record.name, number),
        )
        try:
            package = await asyncio.to_thread(
                prepare_function, config.code, config.layers, self.state.config.state_dir / "layers"
            )
        except (LayerError, ConfigError) as exc:
            raise _invalid(str(exc)) from None
        pool = self.state.new_function(config, package, f"{self.state.function_arn(record.name)}:{number}")
        self._pools[(record.name, number)] = pool
        await pool.start()

    def _close(self, name: str, number: str) -> None:
        pool = self._pools.pop((name, number), None)
        if pool is not None:
            pool.drain()  # an invoke in flight finishes; the next one is a 404
            self._drained = [old for old in self._drained if old.environments]
            self._drained.append(pool)

    async def set_provisioned(self, name: str, number: str, count: int) -> None:
        """A version's provisioned environments (its own and its aliases'), ready when this returns."""
        pool = self._pools.get((name, number))
        if pool is None or pool.config.provisioned_concurrency == count:
            return
        config = dataclasses.replace(pool.config, provisioned_concurrency=count)
        await pool.refresh(config, pool.package)
