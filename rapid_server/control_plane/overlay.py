"""`serve --allow-updates`: the API's updates to a function of the template, the rapidboot.toml or the flags.

The definition file stays the source of truth. An update is applied to the running server (as any update)
and remembered here, in memory only: nothing is written to the store, so a restart serves the file's
function again, and so does a reload of the file (`--watch`) that changes that function. Only the settings
the API names are taken from it (code, handler, memory, timeout, environment, /tmp size, runtime); what only
the file can say (layers, reserved and provisioned concurrency, destinations, a command) is kept.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from ..config import FunctionConfig
from ..server_state import ServerState
from .store import StoredFunction

# The API's settings and the FunctionConfig fields they set.
_FIELDS = {
    "Handler": ("handler",),
    "MemorySize": ("memory_mb",),
    "Timeout": ("timeout_s",),
    "Environment": ("environment",),
    "EphemeralStorage": ("ephemeral_storage_mb",),
    "Runtime": ("runtime",),
}


class Overlay:
    def __init__(self, state: ServerState):
        self._state = state
        # name -> (what the API shows, the FunctionConfig the server ran when it was made)
        self._records: dict[str, tuple[StoredFunction, FunctionConfig]] = {}

    def get(self, name: str) -> StoredFunction | None:
        """The API's record of a configured function it updated, while the server still runs that update
        (a reload of the file that changed the function drops it)."""
        entry = self._records.get(name)
        function = self._state.functions.get(name)
        if entry is None or function is None or function.config is not entry[1]:
            self._records.pop(name, None)
            return None
        return entry[0]

    def record(self, name: str, last_modified: str) -> StoredFunction:
        """The record an update of configured function `name` starts from: its last update, or the file's."""
        current = self.get(name)
        if current is not None:
            return current
        function = self._state.functions[name]
        config = function.config
        settings: dict[str, object] = {"Handler": config.handler}
        if config.runtime == "provided":
            settings["Runtime"] = "provided.al2023"
        record = StoredFunction(
            name,
            settings,
            config.code,
            "",
            function.package.unzipped_bytes,
            str(uuid.uuid4()),
            last_modified,
        )
        self._records[name] = (record, config)
        return record

    def merged(
        self, name: str, api: FunctionConfig, settings: dict[str, object], code: Path
    ) -> FunctionConfig:
        """The file's function with what the API set: `api` is the same settings as the API validated them."""
        base = self._records[name][1] if name in self._records else self._state.functions[name].config
        changes: dict[str, object] = {"code": code}
        for key, fields in _FIELDS.items():
            if key in settings:
                changes.update({field: getattr(api, field) for field in fields})
        return dataclasses.replace(base, **changes)  # type: ignore[arg-type]

    def commit(self, record: StoredFunction) -> None:
        self._records[record.name] = (record, self._state.functions[record.name].config)
