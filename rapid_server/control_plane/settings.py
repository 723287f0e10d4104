"""A function's settings beyond its own configuration: reserved concurrency, tags and the event invoke
config (PutFunctionConcurrency, TagResource, PutFunctionEventInvokeConfig, ... and GetAccountSettings).

They live in the function's stored settings (`ReservedConcurrentExecutions`, `Tags`, `EventInvokeConfig`,
beside `Layers`), so each change is checked, applied to the running server and committed in one
transaction like any update (`ControlPlane.change_settings`), and survives a restart. `config_arguments`
turns them into the FunctionConfig the TOML file would give: `reserved_concurrency` for the concurrency
limiter, `maximum_retry_attempts` / `maximum_event_age` / `on_success` / `on_failure` for the Event queue's
dispatcher, exactly as `[functions.NAME]` keys do. None of them changes the RevisionId (the function's code
and configuration are unchanged).
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .. import errors
from ..config import DEFAULT_RETRY_BASE_DELAY_S
from ..errors import ServiceError
from ..paging import page_size

if TYPE_CHECKING:
    from ..config import FunctionConfig
    from ..data_plane.function import Function
    from .functions import ControlPlane
    from .store import StoredFunction

LATEST = "$LATEST"
# The service keeps at least this much of the account's concurrency unreserved (100 of a 1,000 account;
# accounts with a lower limit see lower minimums, e.g. [10]). Ours scales the same way with
# --max-concurrency, so that a small local limit still allows a reservation.
UNRESERVED_MINIMUM = 100
MAX_TAGS = 50
MAX_TAG_KEY, MAX_TAG_VALUE = 128, 256
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
# Event invokes of API functions retry after the service's 60 s, then 120 s; tests (whose API calls cannot
# carry the TOML file's `retry_base_delay`) shorten it with this variable, as RAPIDBOOT_MIN_EVENT_AGE does
# the minimum event age.
RETRY_BASE_DELAY_VARIABLE = "RAPIDBOOT_RETRY_BASE_DELAY"
FILE_DESTINATION = "file:"  # our extension: append the records to a local file (as the TOML file's file:)
_FUNCTION_ARN = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):function:"
    r"(?P<name>[a-zA-Z0-9\-_]+)(?::(?P<qualifier>[a-zA-Z0-9\-_$.]+))?"
)
_ARN_SERVICE = re.compile(r"arn:aws[a-zA-Z0-9-]*:(?P<service>[a-zA-Z0-9-]+):")
_SERVICES = {"sqs": "SQS", "sns": "SNS", "events": "EventBridge", "s3": "S3", "kafka": "Kafka"}


def _invalid(message: str) -> ServiceError:
    return ServiceError(400, errors.INVALID_PARAMETER_VALUE, message)


def config_arguments(settings: Mapping[str, object]) -> dict[str, Any]:
    """validate_function's keyword arguments for what these settings (and `Layers`) say."""
    arguments: dict[str, Any] = {"retry_base_delay": _retry_base_delay()}
    layers = settings.get("Layers")
    if isinstance(layers, list) and layers:
        arguments["layers"] = [entry["Path"] for entry in layers]
    if settings.get("ReservedConcurrentExecutions") is not None:
        arguments["reserved_concurrency"] = settings["ReservedConcurrentExecutions"]
    invoke = settings.get("EventInvokeConfig")
    if isinstance(invoke, dict):
        if "MaximumRetryAttempts" in invoke:
            arguments["maximum_retry_attempts"] = invoke["MaximumRetryAttempts"]
        if "MaximumEventAgeInSeconds" in invoke:
            arguments["maximum_event_age"] = invoke["MaximumEventAgeInSeconds"]
        destinations = invoke.get("DestinationConfig") or {}
        for key, argument in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
            target = destinations.get(key, {}).get("Destination")
            if target:
                arguments[argument] = _local_destination(target)
    return arguments


def _retry_base_delay() -> float:
    value = os.environ.get(RETRY_BASE_DELAY_VARIABLE)
    try:
        return float(value) if value else DEFAULT_RETRY_BASE_DELAY_S
    except ValueError:
        return DEFAULT_RETRY_BASE_DELAY_S


def request_settings(control: ControlPlane, body: Mapping[str, object], creating: bool) -> dict[str, object]:
    """What CreateFunction (Layers, Tags) and UpdateFunctionConfiguration (Layers) set of these, checked."""
    settings: dict[str, object] = {}
    if "Layers" in body:
        settings["Layers"] = control.layers.resolve(body["Layers"])
    if creating and body.get("Tags"):  # none, or an empty map: no tags
        settings["Tags"] = _tags(body["Tags"], {})
    return settings


# -- concurrency ------------------------------------------------------------------------------------------


def unreserved_minimum(account_limit: int) -> int:
    return min(UNRESERVED_MINIMUM, max(1, account_limit // 10))


def _reserved_elsewhere(control: ControlPlane, name: str) -> int:
    return sum(
        function.config.reserved_concurrency or 0
        for other, function in control.state.functions.items()
        if other != name
    )


async def put_concurrency(control: ControlPlane, raw_name: str, body: Mapping[str, object]) -> dict[str, int]:
    value = body.get("ReservedConcurrentExecutions")
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _invalid(f"ReservedConcurrentExecutions: required, a whole number 0 or more, got {value!r}")
    reserved = value

    def change(current: StoredFunction) -> dict[str, object]:
        limit = control.state.config.max_concurrency
        minimum = unreserved_minimum(limit)
        elsewhere = _reserved_elsewhere(control, current.name)
        previous = current.settings.get("ReservedConcurrentExecutions")
        lowered = isinstance(previous, int) and reserved <= previous  # never refused: it frees concurrency
        if limit - elsewhere - reserved < minimum and not lowered:
            raise _invalid(
                "Specified ReservedConcurrentExecutions for function decreases account's "
                f"UnreservedConcurrentExecution below its minimum value of [{minimum}]. "
                f"(account limit {limit} (--max-concurrency), {elsewhere} reserved by other functions)"
            )
        return {**current.settings, "ReservedConcurrentExecutions": reserved}

    await control.change_settings(raw_name, change)
    return {"ReservedConcurrentExecutions": reserved}


def get_concurrency(control: ControlPlane, raw_name: str) -> dict[str, int]:
    function, _ = control.find(raw_name)
    return _concurrency(function)


def _concurrency(function: Function) -> dict[str, int]:
    reserved = function.config.reserved_concurrency
    return {} if reserved is None else {"ReservedConcurrentExecutions": reserved}


async def delete_concurrency(control: ControlPlane, raw_name: str) -> None:
    def change(current: StoredFunction) -> dict[str, object]:
        return {
            key: value for key, value in current.settings.items() if key != "ReservedConcurrentExecutions"
        }

    await control.change_settings(raw_name, change)


def account_settings(control: ControlPlane) -> dict[str, object]:
    """GetAccountSettings: the server's limits and what it holds now."""
    from rapidboot.layers import LAMBDA_MAX_UNZIPPED_BYTES

    from . import code_limits

    limit = control.state.config.max_concurrency
    reserved = _reserved_elsewhere(control, "")
    return {
        "AccountLimit": {
            "TotalCodeSize": code_limits.TOTAL_CODE_SIZE,
            "CodeSizeUnzipped": LAMBDA_MAX_UNZIPPED_BYTES,
            "CodeSizeZipped": code_limits.MAX_ZIPPED_BYTES,
            "ConcurrentExecutions": limit,
            "UnreservedConcurrentExecutions": max(0, limit - reserved),
        },
        "AccountUsage": {
            "TotalCodeSize": code_limits.stored_code_size(control),
            "FunctionCount": len(control.state.functions),
        },
    }


# -- tags -------------------------------------------------------------------------------------------------


def _tagged_function(control: ControlPlane, arn: str) -> str:
    """The function a taggable resource ARN names: ours, unqualified."""
    match = _FUNCTION_ARN.fullmatch(arn)
    if match is None:
        raise _invalid(
            f"Resource: {arn!r} is not a function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME); only "
            "functions are tagged here"
        )
    if match["qualifier"] is not None:
        raise _invalid(
            f"Resource: {arn}: tags on function aliases and versions are not supported. Please specify a "
            "function ARN."
        )
    config = control.state.config
    name = match["name"]
    if (match["region"], match["account"]) != (config.region, config.account_id):
        raise ServiceError(404, errors.RESOURCE_NOT_FOUND, f"Function not found: {arn}")
    control.find(name)
    return name


def _tags(value: object, current: Mapping[str, str]) -> dict[str, str]:
    """`current` with `value` merged in, checked as the service checks tags."""
    import unicodedata  # only tagging needs it

    if not isinstance(value, dict) or not value:
        raise _invalid("Tags: must be a map of at least one key to a value")
    for key, tag in value.items():
        if not isinstance(key, str) or not 1 <= len(key) <= MAX_TAG_KEY:
            raise _invalid(f"Tags: key {key!r} must be 1-{MAX_TAG_KEY} characters")
        if not isinstance(tag, str) or len(tag) > MAX_TAG_VALUE:
            raise _invalid(f"Tags.{key}: the value must be a string of at most {MAX_TAG_VALUE} characters")
        if key.lower().startswith("aws:"):
            raise _invalid(f"Tags: key {key!r}: the aws: prefix is reserved for AWS use")
        for text, what in ((key, "key"), (tag, "value")):
            bad = [
                char
                for char in text
                if char not in _TAG_PUNCTUATION and unicodedata.category(char)[0] not in "LZN"
            ]
            if bad:
                raise _invalid(
                    f"Tags: {what} {text!r} has {bad[0]!r}: letters, digits, spaces and _ . : / = + - @ only"
                )
    merged = {**current, **value}
    if len(merged) > MAX_TAGS:
        raise _invalid(f"Tags: {len(merged)} tags would be more than the {MAX_TAGS} a resource may have")
    return merged


async def tag(control: ControlPlane, arn: str, body: Mapping[str, object]) -> None:
    name = _tagged_function(control, arn)

    def change(current: StoredFunction) -> dict[str, object]:
        return {**current.settings, "Tags": _tags(body.get("Tags"), _current_tags(current.settings))}

    await control.change_settings(name, change)


async def untag(control: ControlPlane, arn: str, keys: list[str]) -> None:
    name = _tagged_function(control, arn)
    if not keys:
        raise _invalid("TagKeys: required, at least one tagKeys= in the query")

    def change(current: StoredFunction) -> dict[str, object]:
        tags = {key: value for key, value in _current_tags(current.settings).items() if key not in keys}
        return {**current.settings, "Tags": tags}

    await control.change_settings(name, change)


def list_tags(control: ControlPlane, arn: str) -> dict[str, object]:
    name = _tagged_function(control, arn)
    stored = control.store.get(name)
    return {"Tags": _current_tags(stored.settings) if stored is not None else {}}


def _current_tags(settings: Mapping[str, object]) -> dict[str, str]:
    tags = settings.get("Tags")
    return dict(tags) if isinstance(tags, dict) else {}


# -- event invoke config ----------------------------------------------------------------------------------


QUALIFIED_CONFIGS = "QualifiedEventInvokeConfigs"  # a version's or alias's, by qualifier


def _qualified(control: ControlPlane, raw_name: str, qualifier: str | None) -> tuple[str, str]:
    """The function's name and the qualifier whose event invoke config is meant ("" for $LATEST, which
    the unqualified function's is): a published version or an alias of it, else a 404."""
    qualifiers = {qualifier} if qualifier else set()
    name = raw_name
    if ":function:" in raw_name or raw_name.startswith("function:"):
        parts = raw_name.split("function:", 1)[1].split(":", 1)
        name = parts[0]
        if len(parts) > 1:
            qualifiers.add(parts[1])
    elif ":" in raw_name:
        name, extra = raw_name.split(":", 1)
        qualifiers.add(extra)
    if len(qualifiers) > 1:
        found = sorted(qualifiers)
        raise _invalid(
            f"The derived qualifier from the function name ({found[0]}) does not match the specified "
            f"qualifier ({found[1]})."
        )
    function, _ = control.find(name)
    found_qualifier = next(iter(qualifiers), LATEST)
    if found_qualifier == LATEST:
        return name, ""
    versions = control.versions
    alias = versions.aliases.get_or_none(name, found_qualifier)
    if not versions.exists(name, found_qualifier) and alias is None:
        raise ServiceError(
            404, errors.RESOURCE_NOT_FOUND, f"Function not found: {function.arn}:{found_qualifier}"
        )
    return name, found_qualifier


def _stored_config(settings: Mapping[str, object], qualifier: str) -> dict[str, Any] | None:
    if not qualifier:
        config = settings.get("EventInvokeConfig")
    else:
        configs = settings.get(QUALIFIED_CONFIGS)
        config = configs.get(qualifier) if isinstance(configs, dict) else None
    return config if isinstance(config, dict) else None


def _with_config(
    settings: Mapping[str, object], qualifier: str, config: dict[str, object] | None
) -> dict[str, object]:
    """`settings` with the qualifier's event invoke config set (None: removed)."""
    if not qualifier:
        changed = {key: value for key, value in settings.items() if key != "EventInvokeConfig"}
        if config is not None:
            changed["EventInvokeConfig"] = config
        return changed
    configs = settings.get(QUALIFIED_CONFIGS)
    others = {q: c for q, c in (configs.items() if isinstance(configs, dict) else ()) if q != qualifier}
    if config is not None:
        others[qualifier] = config
    changed = {key: value for key, value in settings.items() if key != QUALIFIED_CONFIGS}
    if others:
        changed[QUALIFIED_CONFIGS] = others
    return changed


def qualified_event_config(
    settings: Mapping[str, object], qualifier: str, config: FunctionConfig
) -> FunctionConfig:
    """The settings an Event invoke of `name:qualifier` retries and delivers by: that version's or alias's
    event invoke config, or the service's defaults when it has none (a version does not inherit the
    config of the $LATEST it was published from)."""
    from pathlib import Path

    from ..config import EVENT_AGE_MAX_S, RETRY_ATTEMPTS_MAX, Destination

    stored = _stored_config(settings, qualifier) or {}
    destinations: dict[str, Destination | None] = {"OnSuccess": None, "OnFailure": None}
    for key, entry in (stored.get("DestinationConfig") or {}).items():
        target = entry.get("Destination") if isinstance(entry, dict) else None
        if not target:
            continue
        local = _local_destination(target)
        kind, _, where = local.partition(":")
        destinations[key] = (
            Destination("file", path=Path(where))
            if kind == "file"
            else Destination("function", function=where)
        )
    return dataclasses.replace(
        config,
        maximum_retry_attempts=stored.get("MaximumRetryAttempts", RETRY_ATTEMPTS_MAX),
        maximum_event_age_s=float(stored.get("MaximumEventAgeInSeconds", EVENT_AGE_MAX_S)),
        on_success=destinations["OnSuccess"],
        on_failure=destinations["OnFailure"],
    )


async def put_event_invoke_config(
    control: ControlPlane, raw_name: str, qualifier: str | None, body: Mapping[str, object], replace: bool
) -> dict[str, object]:
    """PutFunctionEventInvokeConfig (`replace`: what is not given goes back to the default) and
    UpdateFunctionEventInvokeConfig (what is not given is kept), of $LATEST, a version or an alias."""
    name, found = _qualified(control, raw_name, qualifier)
    given = _event_invoke_fields(control, body)

    def change(current: StoredFunction) -> dict[str, object]:
        previous = _stored_config(current.settings, found)
        config: dict[str, object] = {} if replace or previous is None else dict(previous)
        destinations = dict(config.get("DestinationConfig") or {})  # type: ignore[call-overload]
        destinations.update(given.pop("DestinationConfig", {}))
        config.update(given)
        config["DestinationConfig"] = destinations
        config["LastModified"] = time.time()
        return _with_config(current.settings, found, config)

    await control.change_settings(name, change)
    return get_event_invoke_config(control, name, found or None)


def _event_invoke_fields(control: ControlPlane, body: Mapping[str, object]) -> dict[str, object]:
    fields: dict[str, object] = {}
    for key, low, high in (("MaximumRetryAttempts", 0, 2), ("MaximumEventAgeInSeconds", 60, 21600)):
        value = body.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _invalid(f"{key}: {value!r} must be a whole number {low}-{high}")
        fields[key] = value
    destinations = body.get("DestinationConfig")
    if destinations is not None:
        if not isinstance(destinations, dict):
            raise _invalid("DestinationConfig: must be {OnSuccess: {Destination}, OnFailure: {Destination}}")
        checked: dict[str, object] = {}
        for key in ("OnSuccess", "OnFailure"):
            if key in destinations:
                entry = destinations[key]
                target = entry.get("Destination") if isinstance(entry, dict) else None
                target = "" if target is None else target
                _check_destination(control, f"DestinationConfig.{key}.Destination", target)
                checked[key] = {"Destination": target} if target else {}
        fields["DestinationConfig"] = checked
    return fields


def _check_destination(control: ControlPlane, field: str, target: object) -> None:
    if not isinstance(target, str):
        raise _invalid(f"{field}: must be an ARN")
    if not target:
        return  # none: the service's way of removing one
    if target.startswith(FILE_DESTINATION):
        path = target[len(FILE_DESTINATION) :]
        if not os.path.isabs(path) or not os.path.isdir(os.path.dirname(path)) or os.path.isdir(path):
            raise _invalid(f"{field}: {target!r}: file:PATH needs an absolute path in an existing directory")
        return
    match = _FUNCTION_ARN.fullmatch(target)
    if match is not None:
        config = control.state.config
        if (match["region"], match["account"]) != (config.region, config.account_id):
            raise _invalid(
                f"{field}: {target}: not a function of this server ({config.region}, {config.account_id})"
            )
        if match["name"] not in control.state.functions:
            raise _invalid(f"{field}: {target}: no such function here")
        if match["qualifier"] not in (None, LATEST):
            raise _invalid(
                f"{field}: {target}: only unqualified (or $LATEST) function destinations are served"
            )
        return
    service = _ARN_SERVICE.match(target)
    what = _SERVICES.get(service["service"], service["service"]) if service else "that service"
    if target.startswith("kafka://"):
        what = "Kafka"
    raise _invalid(
        f"{field}: {target}: {what} is not served here; use a function ARN of this server, or file:/PATH "
        "(ours: one JSON record per line)"
    )


def _local_destination(target: str) -> str:
    """A checked destination as the TOML file writes it: `function:NAME` or `file:PATH`."""
    if target.startswith(FILE_DESTINATION):
        return target
    match = _FUNCTION_ARN.fullmatch(target)
    assert match is not None
    return f"function:{match['name']}"


def get_event_invoke_config(control: ControlPlane, raw_name: str, qualifier: str | None) -> dict[str, object]:
    name, found = _qualified(control, raw_name, qualifier)
    function, stored = control.find(name)
    config = _stored_config(stored.settings, found) if stored is not None else None
    arn = f"{function.arn}:{found or LATEST}"
    if config is None:
        raise ServiceError(
            404, errors.RESOURCE_NOT_FOUND, f"The function {arn} doesn't have an EventInvokeConfig"
        )
    body: dict[str, object] = {
        "LastModified": config["LastModified"],
        "FunctionArn": arn,
        "DestinationConfig": {
            "OnSuccess": config["DestinationConfig"].get("OnSuccess", {}),
            "OnFailure": config["DestinationConfig"].get("OnFailure", {}),
        },
    }
    for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
        if key in config:
            body[key] = config[key]
    return body


async def forget_qualified(control: ControlPlane, name: str, qualifier: str) -> None:
    """A deleted version's or alias's event invoke config goes with it: an alias made again under the
    same name starts with none."""
    stored = control.store.get(name)
    if stored is None or _stored_config(stored.settings, qualifier) is None:
        return

    def change(current: StoredFunction) -> dict[str, object]:
        return _with_config(current.settings, qualifier, None)

    await control.change_settings(name, change)


def list_event_invoke_configs(
    control: ControlPlane, raw_name: str, query: Mapping[str, list[str]]
) -> dict[str, object]:
    values = query.get("MaxItems")
    limit = page_size(values[-1] if values else None, 50)
    name, found = _qualified(control, raw_name, None)
    if found:
        raise _invalid(f"FunctionName: {raw_name!r}: the configs are listed for the unqualified function")
    _, stored = control.find(name)
    settings = stored.settings if stored is not None else {}
    configured = settings.get(QUALIFIED_CONFIGS)
    qualifiers = ["", *sorted(configured if isinstance(configured, dict) else ())]
    configs = [
        get_event_invoke_config(control, name, qualifier or None)
        for qualifier in qualifiers
        if _stored_config(settings, qualifier) is not None
    ]
    return {"FunctionEventInvokeConfigs": configs[:limit]}


async def delete_event_invoke_config(control: ControlPlane, raw_name: str, qualifier: str | None) -> None:
    name, found = _qualified(control, raw_name, qualifier)
    get_event_invoke_config(control, name, found or None)  # 404 when there is none

    def change(current: StoredFunction) -> dict[str, object]:
        return _with_config(current.settings, found, None)

    await control.change_settings(name, change)


# -- in GetFunction and FunctionConfiguration --------------------------------------------------------------


def function_extras(function: Function, settings: Mapping[str, object] | None) -> dict[str, object]:
    """GetFunctionResponse's Tags and Concurrency."""
    extras: dict[str, object] = {}
    tags = _current_tags(settings or {})
    if tags:
        extras["Tags"] = tags
    concurrency = _concurrency(function)
    if concurrency:
        extras["Concurrency"] = concurrency
    return extras


def configuration_layers(settings: Mapping[str, object]) -> list[dict[str, object]]:
    """FunctionConfiguration.Layers: each layer's ARN and size (not our path)."""
    layers = settings.get("Layers")
    if not isinstance(layers, list):
        return []
    return [{"Arn": entry["Arn"], "CodeSize": entry["CodeSize"]} for entry in layers]
