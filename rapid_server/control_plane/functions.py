"""What each function operation does to the running server and to the store.

A mutation is checked whole first (settings through `validate_function`, the zip extracted through the
layers/ code with its limits), then applied to the running server (`ServerState.apply`, as a reload is),
then committed to the store in one transaction. One mutation at a time (`_lock`): `apply` awaits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import sys
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path

from rapidboot.layers import LayerError, prepare_function
from rapidboot.layers.cache import LayerCache
from rapidboot.layers.function import directory_size

from .. import errors
from ..config import ConfigError, FunctionConfig, validate_function, with_snap_start
from ..data_plane.function import Function
from ..errors import ServiceError
from ..invoke.tenancy import tenancy_setting
from ..paging import page_after, page_size
from ..server_state import ServerState
from . import code_limits
from .layers import Layers, LayerStore
from .overlay import Overlay
from .settings import config_arguments, request_settings
from .store import FunctionStore, StoredFunction

RESOURCE_CONFLICT = "ResourceConflictException"
PAUSE_VARIABLE = "RAPIDBOOT_TEST_PAUSE_AT"  # tests only: ControlPlane.crash_point
TENANCY = "TenancyConfig"  # CreateFunction only
# A durable function (rapid_server/durable/): enabled by CreateFunction only, as on Lambda; a durable
# function's timeout and retention can be changed by UpdateFunctionConfiguration (new executions get them).
DURABLE = "DurableConfig"
DIRECTORY_EXTENSION = "RapidbootDirectory"  # our Code field: serve a local directory in place
_SETTINGS = (
    "Handler",
    "Runtime",
    "Role",
    "Description",
    "MemorySize",
    "Timeout",
    "Environment",
    "EphemeralStorage",
    "SnapStart",
)
SNAP_START_APPLY_ON = ("PublishedVersions", "None")  # botocore's SnapStartApplyOn
# validate_function's keys, as the API names them (its messages start "NAME.key: ...").
_FIELDS = {
    "memory": "MemorySize",
    "timeout": "Timeout",
    "environment": "Environment.Variables",
    "handler": "Handler",
    "ephemeral_storage": "EphemeralStorage.Size",
    "runtime": "Runtime",
    "code": "Code",
    "layers": "Layers",
    "reserved_concurrency": "ReservedConcurrentExecutions",
    "maximum_retry_attempts": "MaximumRetryAttempts",
    "maximum_event_age": "MaximumEventAgeInSeconds",
    "on_success": "DestinationConfig.OnSuccess.Destination",
    "on_failure": "DestinationConfig.OnFailure.Destination",
    "durable.execution_timeout": "DurableConfig.ExecutionTimeout",
    "durable.retention_period": "DurableConfig.RetentionPeriodInDays",
    "durable": "DurableConfig",
}


def _invalid(message: str) -> ServiceError:
    return ServiceError(400, errors.INVALID_PARAMETER_VALUE, message)


def snap_start_apply_on(settings: Mapping[str, object]) -> str:
    """`SnapStart.ApplyOn` ("None" when not set), or an InvalidParameterValueException naming it."""
    value = settings.get("SnapStart")
    if value is None:
        return "None"
    apply_on = value.get("ApplyOn") if isinstance(value, dict) else None
    if apply_on not in SNAP_START_APPLY_ON:
        raise _invalid(f"SnapStart.ApplyOn: {apply_on!r} is not one of {', '.join(SNAP_START_APPLY_ON)}")
    return str(apply_on)


def function_config(
    name: str, settings: dict[str, object], code: Path, published: bool = False
) -> FunctionConfig:
    """The API's settings as our FunctionConfig, checked by the same `validate_function` as the TOML file;
    a problem is an InvalidParameterValueException naming the API's field. `published`: a version's
    config, where `SnapStart: {ApplyOn: PublishedVersions}` takes effect (as on Lambda, never on
    $LATEST: PublishVersion makes the snapshot, here the template process)."""
    runtime = settings.get("Runtime", "python3.12")
    if not isinstance(runtime, str) or not runtime.startswith(("python3", "provided")):
        raise _invalid(f"Runtime: {runtime!r} is not served here (python3.x, provided.al2023, provided.al2)")
    environment = settings.get("Environment") or {}
    variables = environment.get("Variables", {}) if isinstance(environment, dict) else environment
    storage = settings.get("EphemeralStorage") or {"Size": 512}
    tenant_isolation = tenancy_setting(settings.get("TenancyConfig"))
    durable = settings.get(DURABLE)
    if durable is not None and not isinstance(durable, dict):
        raise _invalid(f"{DURABLE}: must be an object with ExecutionTimeout and RetentionPeriodInDays")
    try:
        config = validate_function(
            name,
            name,
            code,
            settings.get("Handler"),
            memory=settings.get("MemorySize", 128),
            timeout=settings.get("Timeout", 3),
            environment=variables,
            ephemeral_storage=storage.get("Size") if isinstance(storage, dict) else storage,
            runtime="provided" if runtime.startswith("provided") else "python",
            **config_arguments(settings),  # layers, reserved concurrency, event invoke config (settings.py)
            durable=None if durable is None else _durable_keys(durable),
        )
    except ConfigError as exc:
        message = str(exc)
        for key, field in _FIELDS.items():
            message = message.replace(f"{name}.{key}", field, 1)
        raise _invalid(message) from None
    if snap_start_apply_on(settings) == "PublishedVersions":
        try:  # checked at every change, applied to versions only
            snap_config = with_snap_start(config, "SnapStart")
        except ConfigError as exc:
            raise _invalid(f"{exc} (Runtime {runtime})".replace(f"functions.{name}: ", "")) from None
        if published:
            config = snap_config
    return dataclasses.replace(config, tenant_isolation=True) if tenant_isolation else config


def _durable_keys(durable: dict[str, object]) -> dict[str, object]:
    """A DurableConfig as the toml's `durable` table (KMSKeyArn is accepted and not used: nothing here is
    encrypted)."""
    keys: dict[str, object] = {}
    if "ExecutionTimeout" in durable:
        keys["execution_timeout"] = durable["ExecutionTimeout"]
    if "RetentionPeriodInDays" in durable:
        keys["retention_period"] = durable["RetentionPeriodInDays"]
    return keys


class ControlPlane:
    def __init__(self, state: ServerState, store: FunctionStore):
        self.state = state
        self.store = store
        self._lock = asyncio.Lock()
        self.layers = Layers(self, LayerStore(store.directory))
        state.api_functions = self.served
        state.recursion_allowed = store.recursion_allowed()
        self.overlay = Overlay(state)  # `serve --allow-updates`: updates of configured functions
        self._pause_at = os.environ.get(PAUSE_VARIABLE)  # tests only: crash_point()
        from .versions import Versions  # which imports this module

        self.versions = Versions(self)  # published versions, aliases, provisioned concurrency

    @property
    def lock(self) -> asyncio.Lock:
        """Held by every mutation, and by a layer's publish (whose zip shares the code directory)."""
        return self._lock

    def close(self) -> None:
        self.layers.store.close()
        self.store.close()

    def served(self) -> dict[str, FunctionConfig]:
        """The functions the API created and the server runs (not those a configured one shadows)."""
        running = self.state.functions
        return {
            record.name: running[record.name].config
            for record in self.store.all()
            if record.name in running and running[record.name].config.code == record.code_path.resolve()
        }

    # -- reads

    def find(self, raw_name: str) -> tuple[Function, StoredFunction | None]:
        name = _bare_name(raw_name)
        function = self.state.functions.get(name)
        if function is None:
            raise ServiceError(
                404, errors.RESOURCE_NOT_FOUND, f"Function not found: {self.state.function_arn(name)}"
            )
        stored = self.store.get(name)
        if stored is None and self.state.config.allow_updates:
            stored = self.overlay.record(name, _now())
        return function, stored

    def list(self, marker: str | None, max_items: str | None) -> dict[str, object]:
        from . import shapes

        limit = page_size(max_items)
        page, next_marker = page_after(list(self.state.functions), str, marker, limit)
        stored = {record.name: record for record in self.store.all()}
        body: dict[str, object] = {
            "Functions": [
                shapes.configuration(self.state, self.state.functions[name], stored.get(name))
                for name in page
            ]
        }
        if next_marker is not None:
            body["NextMarker"] = next_marker
        return body

    # -- mutations

    async def create(self, body: dict[str, object]) -> tuple[str, Function, StoredFunction]:
        name = body.get("FunctionName")
        if not isinstance(name, str) or not name:
            raise _invalid("FunctionName: required")
        name = _bare_name(name)
        async with self._lock:
            if name in self.state.functions:
                raise ServiceError(409, RESOURCE_CONFLICT, f"Function already exist: {name}")
            code = body.get("Code")
            if not isinstance(code, dict):
                raise _invalid("Code: required, with ZipFile (base64) or RapidbootDirectory")
            settings = {key: body[key] for key in _SETTINGS if key in body}
            if body.get(TENANCY) is not None:  # set at creation only (tenancy.py)
                settings[TENANCY] = body[TENANCY]
            settings.update(request_settings(self, body, creating=True))
            if body.get(DURABLE) is not None:
                settings[DURABLE] = body[DURABLE]
            record = await self._prepare(name, settings, code)
            function = await self._commit(record)
            return name, function, record

    async def update(
        self, raw_name: str, body: dict[str, object], code: bool
    ) -> tuple[Function, StoredFunction]:
        name = _bare_name(raw_name)
        async with self._lock:
            current = self._writable(name)
            revision = body.get("RevisionId")
            if revision is not None and revision != current.revision_id:
                raise errors.stale_revision(revision, current.revision_id)
            if code:
                record = await self._prepare(name, current.settings, body, "UpdateFunctionCode")
            else:
                if TENANCY in body:
                    raise _invalid(
                        f"{TENANCY}: a function's tenant isolation is set when it is created and cannot be "
                        "changed: create a new function"
                    )
                settings = dict(current.settings)
                settings.update({key: body[key] for key in _SETTINGS if key in body})
                if body.get(DURABLE) is not None:
                    if current.settings.get(DURABLE) is None:
                        raise _invalid(
                            f"{DURABLE}: durable execution can only be enabled when a function is created; "
                            "it cannot be enabled on an existing function"
                        )
                    settings[DURABLE] = body[DURABLE]
                settings.update(request_settings(self, body, creating=False))
                function_config(name, settings, current.code_path)  # checked before anything changes
                if "Layers" in body:  # code and layers together within the unzipped limit
                    await self._check_package(name, settings, current.code_path)
                record = _record(name, settings, current.code_path, current.code_sha256, current.code_size)
            return await self._commit(record), record

    async def change_settings(
        self, raw_name: str, change: Callable[[StoredFunction], dict[str, object]]
    ) -> tuple[Function, StoredFunction]:
        """The settings of settings.py (tags, reserved concurrency, event invoke config): `change` returns
        the new settings from the current record, or raises to refuse; checked, applied and committed as
        an update is, keeping the RevisionId."""
        name = _bare_name(raw_name)
        async with self._lock:
            current = self._writable(name)
            record = dataclasses.replace(current, settings=change(current))
            return await self._commit(record), record

    async def delete(self, raw_name: str) -> None:
        name = _bare_name(raw_name)
        async with self._lock:
            self._writable(name, configured=False)
            functions = {key: f.config for key, f in self.state.functions.items() if key != name}
            await self._apply(functions)
            self.store.delete(name)
            self.versions.forget(name)

    # -- for the other operations' modules (recursion_config.py)

    def mutation(self) -> asyncio.Lock:
        """Held for the whole of a mutation: one at a time."""
        return self._lock

    def writable(self, name: str) -> StoredFunction:
        return self._writable(name)

    # -- steps

    def _writable(self, name: str, configured: bool = True) -> StoredFunction:
        """The function's record, if the API may change it: one it created, or (with `--allow-updates`,
        and `configured`) one of the definition's."""
        self.find(name)
        stored = self.store.get(name)
        if stored is None:
            if configured and self.state.config.allow_updates:
                return self.overlay.record(name, _now())
            remedy = "change it there" if configured else "remove it there"
            if configured:
                remedy += " (or serve with --allow-updates to update it through the API until a reload)"
            raise ServiceError(
                409,
                RESOURCE_CONFLICT,
                f"Function {name} is defined by the server's configuration (rapidboot.toml, flags or a "
                f"template), so it is read-only through the API: {remedy}",
            )
        return stored

    async def _prepare(
        self,
        name: str,
        settings: dict[str, object],
        code: dict[str, object],
        operation: str = "CreateFunction",
    ) -> StoredFunction:
        """Store the package and extract it (safely, within the limits) before anything changes."""
        if "S3Bucket" in code or "S3Key" in code:
            raise _invalid("Code.S3Bucket/S3Key: there is no S3 here; send Code.ZipFile (base64) instead")
        if "ImageUri" in code:
            raise _invalid(
                "Code.ImageUri: container images are not deployed through this API; send Code.ZipFile"
            )
        if DIRECTORY_EXTENSION in code:
            directory = code[DIRECTORY_EXTENSION]
            if (
                not isinstance(directory, str)
                or not Path(directory).is_absolute()
                or not Path(directory).is_dir()
            ):
                raise _invalid(
                    f"Code.{DIRECTORY_EXTENSION}: {directory!r} must be an existing absolute directory"
                )
            path, sha, size, fresh = Path(directory), "", directory_size(Path(directory)), False
        else:
            zipped = code_limits.zip_bytes(code.get("ZipFile"), "Code.ZipFile", operation)
            code_limits.check_storage(self, len(zipped))
            digest = hashlib.sha256(zipped).hexdigest()
            path = self.store.code_dir / f"{digest}.zip"
            # Extracted from the decoded bytes while the same bytes are written and made durable (fsync:
            # milliseconds, the bulk of a CreateFunction on a busy disk), each on a thread of its own;
            # both done before the row (the commit) may name the file.
            stored, checked = await asyncio.gather(
                asyncio.to_thread(self._store_code, zipped, digest),
                self._check_package(name, settings, path, zipped, digest),
                return_exceptions=True,
            )
            for outcome in (checked, stored):
                if isinstance(outcome, BaseException):
                    if not isinstance(stored, BaseException) and stored[2]:
                        path.unlink(missing_ok=True)  # a refused package leaves nothing behind
                    raise outcome
            assert not isinstance(stored, BaseException)
            return _record(name, settings, path, stored[1], len(zipped))
        try:
            await self._check_package(name, settings, path)
        except BaseException:
            if fresh:
                path.unlink(missing_ok=True)
            raise
        return _record(name, settings, path, sha, size)

    def _store_code(self, zipped: bytes, digest: str) -> tuple[Path, str, bool]:
        """Make the package durable (FunctionStore.put_code), then tell the layer cache its digest, which
        keys a zip by content and remembers it by path: `apply` then finds the extracted tree without
        reading the zip again."""
        stored = self.store.put_code(zipped)
        LayerCache(self.state.config.state_dir / "layers").remember_digest(stored[0], digest)
        return stored

    async def _check_package(
        self,
        name: str,
        settings: dict[str, object],
        path: Path,
        zipped: bytes | None = None,
        digest: str | None = None,
    ) -> None:
        """Extract (into the layer cache) and check the package and layers against the limits; `zipped`:
        the package's bytes, when `path` is a zip still being written."""
        # The settings, before the extraction; with `zipped`, against the store's directory: the file
        # `path` names may not be written yet (validate_function wants an existing code path).
        config = function_config(name, settings, path if zipped is None else self.store.code_dir)
        try:
            await asyncio.to_thread(
                prepare_function,
                path,
                config.layers,
                self.state.config.state_dir / "layers",
                zipped=zipped,
                zipped_digest=digest,
            )
        except LayerError as exc:
            names = {f"code '{path}'": "Code.ZipFile"}
            layers = settings.get("Layers")
            for number, entry in enumerate(layers if isinstance(layers, list) else [], start=1):
                names[f"layer {number} '{entry['Path']}'"] = f"layer {entry['Arn']}"
            raise code_limits.refusal(str(exc), names) from None

    async def _commit(self, record: StoredFunction) -> Function:
        """Into the running server first (everything that can fail is checked there), then one transaction
        (for a configured function with `--allow-updates`, into the overlay: memory only)."""
        name = record.name
        configured = name in self.state.functions and self.store.get(name) is None
        functions = {key: f.config for key, f in self.state.functions.items()}
        functions[name] = function_config(name, record.settings, record.code_path)
        if configured:
            functions[name] = self.overlay.merged(name, functions[name], record.settings, record.code_path)
        await self._apply(functions)
        if configured:
            self.overlay.commit(record)
        else:
            self.crash_point("control-write")  # the code is in place, the row not yet
            self.store.put(record)
            self.crash_point("control-commit")  # committed, not yet answered
        return self.state.functions[name]

    def crash_point(self, point: str) -> None:
        """Tests only (`RAPIDBOOT_TEST_PAUSE_AT=POINT`): at `point`, say so on stderr (the test's gate) and
        block the whole server there, for the test to SIGKILL it. A string comparison when unset."""
        if self._pause_at != point:
            return
        print(f"rapidboot: paused at {point} ({PAUSE_VARIABLE})", file=sys.stderr, flush=True)
        threading.Event().wait()  # the event loop stops here, mid-operation, until the process is killed

    async def _apply(self, functions: dict[str, FunctionConfig]) -> None:
        try:
            await self.state.apply(functions)
        except ConfigError as exc:
            raise _invalid(str(exc)) from None


def _record(name: str, settings: dict[str, object], path: Path, sha: str, size: int) -> StoredFunction:
    return StoredFunction(name, settings, path, sha, size, str(uuid.uuid4()), _now())


def _now() -> str:
    """LastModified, as the service writes it."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def _bare_name(raw: str) -> str:
    """`name`, `arn:aws:lambda:REGION:ACCOUNT:function:name` or `ACCOUNT:function:name`: the name."""
    if ":function:" in raw or raw.startswith("function:"):
        return raw.split("function:", 1)[1].split(":", 1)[0]
    return raw


def stored_functions(store: FunctionStore) -> dict[str, FunctionConfig]:
    """What the API created, as the server's functions at start."""
    return {
        record.name: function_config(record.name, record.settings, record.code_path) for record in store.all()
    }
