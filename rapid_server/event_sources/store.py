"""The mappings the API created, under --state-dir, so that they survive a restart as the functions the API
created do. One small JSON file, replaced whole and atomically (write, fsync, rename) on every change: a
server has a handful of mappings, changed by hand, and a crash leaves the old file or the new one."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from .mapping import API, EventSourceMapping, MappingError, check_source

FILE_NAME = "mappings.json"


class StoreError(Exception):
    pass


class MappingStore:
    def __init__(self, directory: Path):
        self._path = directory / FILE_NAME
        directory.mkdir(parents=True, exist_ok=True)

    def load(self) -> list[EventSourceMapping]:
        try:
            raw = self._path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            records = orjson.loads(raw)
            return [_mapping(record) for record in records]
        except (orjson.JSONDecodeError, MappingError, KeyError, TypeError) as exc:
            raise StoreError(f"{self._path}: not a mapping store: {exc}") from None

    def save(self, mappings: list[EventSourceMapping]) -> None:
        temporary = self._path.with_suffix(".tmp")
        with open(temporary, "wb") as file:
            file.write(orjson.dumps([_record(m) for m in mappings], option=orjson.OPT_INDENT_2))
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, self._path)


def _record(mapping: EventSourceMapping) -> dict[str, Any]:
    source = mapping.source
    return {
        "UUID": mapping.uuid,
        "FunctionName": mapping.function_name,
        "EventSourceArn": source.queue.arn,
        "BatchSize": source.batch_size,
        "MaximumBatchingWindowInSeconds": source.batching_window_s,
        "FunctionResponseTypes": source.function_response_types,
        "MaximumConcurrency": source.maximum_concurrency,
        "Enabled": source.enabled,
        "EndpointUrl": source.endpoint_url,
        "LastModified": mapping.last_modified,
    }


def _mapping(record: dict[str, Any]) -> EventSourceMapping:
    source = check_source(
        record["EventSourceArn"],
        record["BatchSize"],
        record["MaximumBatchingWindowInSeconds"],
        record["FunctionResponseTypes"],
        record["MaximumConcurrency"],
        record["Enabled"],
        record["EndpointUrl"],
    )
    return EventSourceMapping(
        str(record["UUID"]), str(record["FunctionName"]), source, float(record["LastModified"]), API
    )
