"""Every event source mapping of the server: the definition's (from its functions' configurations) and the
API's (store.py), the pollers that run the enabled ones, and the API's operations on them.

A mapping polls while it is enabled and its function exists; `reconcile` makes the running pollers match
that after every change (an API call, a reload of the definition, a function created or deleted through
the API). A definition's mapping is read-only through the API, as a definition's function is: change it
in the template or rapidboot.toml.

States, as the API renders them (botocore's model: Creating, Enabling, Enabled, Disabling, Disabled,
Updating, Deleting): the answer to a call shows the transition it started (Creating, Updating, Enabling,
Disabling, Deleting) and the next read the state it ends in (Enabled or Disabled; a deleted mapping is
gone: 404), since here each change is in place when the call returns.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .. import errors
from ..errors import ServiceError
from ..paging import page_after, page_size
from .mapping import (
    API,
    DEFINITION,
    EventSourceMapping,
    MappingError,
    check_source,
    definition_uuid,
    scaling_config,
)
from .poller import MappingPoller
from .sqs import LONG_POLL_S
from .store import MappingStore

if TYPE_CHECKING:
    from ..data_plane.function import Function
    from ..server_state import ServerState

RESOURCE_CONFLICT = "ResourceConflictException"
CREATING, ENABLING, ENABLED, DISABLING, DISABLED, UPDATING, DELETING = (
    "Creating",
    "Enabling",
    "Enabled",
    "Disabling",
    "Disabled",
    "Updating",
    "Deleting",
)
LONG_POLL_VARIABLE = "RAPIDBOOT_SQS_LONG_POLL"
DEFAULT_PAGE = 100  # ListEventSourceMappings' page without MaxItems
MAX_PAGE = 10_000
# The request members we act on (botocore's model); the model's others (FilterCriteria, the stream and
# Kafka settings...) are refused by name rather than ignored. `RapidbootEndpointUrl` is ours: raw HTTP only.
_CREATE_KEYS = frozenset(
    {
        "EventSourceArn",
        "FunctionName",
        "Enabled",
        "BatchSize",
        "MaximumBatchingWindowInSeconds",
        "FunctionResponseTypes",
        "ScalingConfig",
        "RapidbootEndpointUrl",
    }
)
_UPDATE_KEYS = _CREATE_KEYS - {"EventSourceArn"}


def long_poll_from_environment(environ: Mapping[str, str]) -> int:
    """`RAPIDBOOT_SQS_LONG_POLL`: a shorter long poll than the service's 20 s, for tests that must see
    pollers scale down on an empty queue (never needed in real use). Read once, at server start."""
    value = environ.get(LONG_POLL_VARIABLE, "")
    if not value:
        return LONG_POLL_S
    if not value.isdigit() or not 1 <= int(value) <= LONG_POLL_S:
        raise ValueError(
            f"${LONG_POLL_VARIABLE}: {value!r} must be a whole number of seconds 1-{LONG_POLL_S}"
        )
    return int(value)


class EventSources:
    def __init__(
        self,
        state: ServerState,
        store: MappingStore,
        notice: Callable[[str], None],
        on_error: Callable[[BaseException], None],
        long_poll_s: int = LONG_POLL_S,
    ):
        self._state = state
        self._long_poll_s = long_poll_s
        self._store = store
        self._notice = notice
        self._on_error = on_error
        self._api: dict[str, EventSourceMapping] = {m.uuid: m for m in store.load()}
        self._pollers: dict[str, MappingPoller] = {}
        self._defined_at = time.time()
        self._running = False

    # -- lifecycle

    def start(self) -> None:
        self._running = True
        self.reconcile()

    def stop(self) -> None:
        """Stop every poller; returns at once (a long poll in flight is not waited for)."""
        self._running = False
        for poller in self._pollers.values():
            poller.stop()
        self._pollers.clear()

    def reconcile(self) -> None:
        """Run a poller for each enabled mapping whose function exists, and only those."""
        if not self._running:
            return
        wanted = {
            key: mapping
            for key, mapping in self.mappings().items()
            if mapping.source.enabled and mapping.function_name in self._state.functions
        }
        for key, poller in list(self._pollers.items()):
            if wanted.get(key) != poller.mapping:
                poller.stop()
                del self._pollers[key]
        for key, mapping in wanted.items():
            if key not in self._pollers:
                poller = MappingPoller(
                    mapping, self._function, self._notice, self._on_error, self._long_poll_s
                )
                self._pollers[key] = poller
                poller.start()

    def pollers(self) -> Mapping[str, MappingPoller]:
        return self._pollers

    def _function(self, name: str) -> Function | None:
        return self._state.functions.get(name)

    # -- what there is

    def mappings(self) -> dict[str, EventSourceMapping]:
        defined: dict[str, EventSourceMapping] = {}
        for function in self._state.functions.values():
            for source in function.config.event_sources:
                key = definition_uuid(function.config.name, source.queue.arn)
                defined[key] = EventSourceMapping(
                    key, function.config.name, source, self._defined_at, DEFINITION
                )
        return {**self._api, **defined}

    def render(self, mapping: EventSourceMapping, state: str | None = None) -> dict[str, Any]:
        """EventSourceMappingConfiguration, as the service renders an SQS mapping."""
        source = mapping.source
        config = self._state.config
        poller = self._pollers.get(mapping.uuid)
        body: dict[str, Any] = {
            "UUID": mapping.uuid,
            "BatchSize": source.batch_size,
            "MaximumBatchingWindowInSeconds": source.batching_window_s,
            "EventSourceArn": source.queue.arn,
            "FunctionArn": self._state.function_arn(mapping.function_name),
            "LastModified": mapping.last_modified,
            "State": state or (ENABLED if source.enabled else DISABLED),
            "StateTransitionReason": "USER_INITIATED",
            "FunctionResponseTypes": source.function_response_types,
            "EventSourceMappingArn": (
                f"arn:aws:lambda:{config.region}:{config.account_id}:event-source-mapping:{mapping.uuid}"
            ),
        }
        if source.maximum_concurrency is not None:
            body["ScalingConfig"] = {"MaximumConcurrency": source.maximum_concurrency}
        if poller is not None:
            body["LastProcessingResult"] = poller.last_result
        if source.endpoint_url is not None:
            body["RapidbootEndpointUrl"] = source.endpoint_url
        return body

    # -- the API's operations

    def get(self, key: str) -> EventSourceMapping:
        mapping = self.mappings().get(key)
        if mapping is None:
            raise ServiceError(404, errors.RESOURCE_NOT_FOUND, "The resource you requested does not exist.")
        return mapping

    def list(
        self, function_name: str | None, source_arn: str | None, marker: str | None, max_items: str | None
    ) -> dict[str, Any]:
        limit = page_size(max_items, MAX_PAGE, DEFAULT_PAGE)
        name = _bare_name(function_name) if function_name else None
        chosen = [
            mapping
            for mapping in self.mappings().values()
            if (name is None or mapping.function_name == name)
            and (source_arn is None or mapping.source.queue.arn == source_arn)
        ]
        page, next_marker = page_after(chosen, _uuid, marker, limit)
        body: dict[str, Any] = {"EventSourceMappings": [self.render(mapping) for mapping in page]}
        if next_marker is not None:
            body["NextMarker"] = next_marker
        return body

    def create(self, body: dict[str, Any]) -> EventSourceMapping:
        _refuse_unknown(body, _CREATE_KEYS)
        name = self._existing_function(body.get("FunctionName"))
        if "EventSourceArn" not in body:
            raise _invalid("EventSourceArn: required, the SQS queue's ARN")
        source = _checked(
            body.get("EventSourceArn"),
            body.get("BatchSize"),
            body.get("MaximumBatchingWindowInSeconds"),
            body.get("FunctionResponseTypes"),
            body.get("ScalingConfig"),
            body.get("Enabled", True),
            body.get("RapidbootEndpointUrl"),
        )
        self._refuse_duplicate(name, source.queue.arn, "")
        mapping = EventSourceMapping(str(uuid.uuid4()), name, source, time.time(), API)
        self._commit({**self._api, mapping.uuid: mapping})
        return mapping

    def _refuse_duplicate(self, name: str, arn: str, key: str) -> None:
        """One mapping per function and queue, as the service allows."""
        for other in self.mappings().values():
            if other.uuid != key and other.function_name == name and other.source.queue.arn == arn:
                raise ServiceError(
                    409,
                    RESOURCE_CONFLICT,
                    f'An event source mapping with SQS arn (" {arn} ") and function '
                    f'(" {name} ") already exists. Please update or delete the existing mapping with UUID '
                    f"{other.uuid}",
                )

    def update(self, key: str, body: dict[str, Any]) -> tuple[EventSourceMapping, str]:
        """The updated mapping, and the transition to render (Updating, Enabling or Disabling)."""
        current = self._writable(key)
        _refuse_unknown(body, _UPDATE_KEYS)
        old = current.source
        name = current.function_name
        if "FunctionName" in body:
            name = self._existing_function(body["FunctionName"])
        scaling = body["ScalingConfig"] if "ScalingConfig" in body else _scaling(old.maximum_concurrency)
        source = _checked(
            old.queue.arn,
            body.get("BatchSize", old.batch_size),
            body.get("MaximumBatchingWindowInSeconds", old.batching_window_s),
            body.get("FunctionResponseTypes", old.function_response_types),
            scaling,
            body.get("Enabled", old.enabled),
            body.get("RapidbootEndpointUrl", old.endpoint_url),
        )
        if name != current.function_name:
            self._refuse_duplicate(name, source.queue.arn, key)
        mapping = EventSourceMapping(key, name, source, time.time(), API)
        self._commit({**self._api, key: mapping})
        if source.enabled != old.enabled:
            return mapping, ENABLING if source.enabled else DISABLING
        return mapping, UPDATING

    def delete(self, key: str) -> EventSourceMapping:
        mapping = self._writable(key)
        self._commit({k: m for k, m in self._api.items() if k != key})
        return mapping

    # -- steps

    def _writable(self, key: str) -> EventSourceMapping:
        mapping = self.get(key)
        if mapping.origin == DEFINITION:
            raise ServiceError(
                409,
                RESOURCE_CONFLICT,
                f"Event source mapping {key} is defined by the server's configuration (a template or "
                "rapidboot.toml), so it is read-only through the API: change it there",
            )
        return mapping

    def _existing_function(self, value: object) -> str:
        if not isinstance(value, str) or not value:
            raise _invalid("FunctionName: required, the function's name or ARN")
        name = _bare_name(value)
        if name not in self._state.functions:
            raise ServiceError(
                404, errors.RESOURCE_NOT_FOUND, f"Function not found: {self._state.function_arn(name)}"
            )
        return name

    def _commit(self, api: dict[str, EventSourceMapping]) -> None:
        """Store first: a mapping the store refused changes nothing."""
        try:
            self._store.save(list(api.values()))
        except OSError as exc:
            raise ServiceError(
                500, errors.SERVICE_EXCEPTION, f"cannot store the event source mappings: {exc}"
            ) from None
        self._api = api
        self.reconcile()


def _checked(
    arn: object,
    batch_size: object,
    window: object,
    response_types: object,
    scaling: object,
    enabled: object,
    endpoint_url: object,
) -> Any:
    try:
        return check_source(
            arn, batch_size, window, response_types, scaling_config(scaling), enabled, endpoint_url
        )
    except MappingError as exc:
        raise _invalid(str(exc)) from None


def _scaling(maximum_concurrency: int | None) -> dict[str, int] | None:
    return None if maximum_concurrency is None else {"MaximumConcurrency": maximum_concurrency}


def _refuse_unknown(body: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _invalid(
            f"{', '.join(unknown)}: not supported by rapidboot's SQS event source mappings "
            f"(supported: {', '.join(sorted(allowed))})"
        )


def _uuid(mapping: EventSourceMapping) -> str:
    return mapping.uuid


def _invalid(message: str) -> ServiceError:
    return ServiceError(400, errors.INVALID_PARAMETER_VALUE, message)


def _bare_name(raw: str) -> str:
    """`name`, `arn:aws:lambda:REGION:ACCOUNT:function:name` or `ACCOUNT:function:name`: the name."""
    if ":function:" in raw or raw.startswith("function:"):
        return raw.split("function:", 1)[1].split(":", 1)[0]
    return raw
