"""The FunctionConfiguration shape of botocore's `lambda` model, rendered in one place for every
operation that answers with it (CreateFunction, GetFunction, ListFunctions, the updates)."""

from __future__ import annotations

import math

from ..data_plane.function import Function
from ..server_state import ServerState
from .settings import configuration_layers, function_extras
from .store import StoredFunction

LATEST = "$LATEST"

# The states the service reports while a create or an update settles (the answer to the call itself);
# by the time we answer, the function is in place, so every later read says Active / Successful.
CREATING = {
    "State": "Pending",
    "StateReason": "The function is being created.",
    "StateReasonCode": "Creating",
}
# (no LastUpdateStatusReasonCode: the model's enum for it names only failures)
UPDATING = {"LastUpdateStatus": "InProgress", "LastUpdateStatusReason": "The function is being updated."}
SETTLED = {"State": "Active", "LastUpdateStatus": "Successful"}


def configuration(
    state: ServerState, function: Function, stored: StoredFunction | None, status: dict[str, str] = SETTLED
) -> dict[str, object]:
    """A function as the service describes it; `stored` is None for one from the TOML file, flags or a
    template (read-only here: it has no RevisionId to update against, and no zip of ours to hash)."""
    config = function.config
    body: dict[str, object] = {
        "FunctionName": config.name,
        "FunctionArn": function.arn,
        "Runtime": state.runtime_name(config),
        "Role": f"arn:aws:iam::{state.config.account_id}:role/rapidboot-local",
        "Handler": config.handler,
        "CodeSize": function.package.unzipped_bytes,
        "Description": "",
        "Timeout": math.ceil(config.timeout_s),
        "MemorySize": config.memory_mb,
        "LastModified": state.started_at,
        "CodeSha256": "",
        "Version": LATEST,
        "Environment": {"Variables": dict(config.environment)},
        "TracingConfig": {"Mode": "PassThrough"},
        "PackageType": "Zip",
        "Architectures": [state.architecture],
        "EphemeralStorage": {"Size": config.ephemeral_storage_mb},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{config.name}"},
        **SETTLED,
    }
    if stored is not None:
        settings = stored.settings
        body.update(
            Runtime=settings.get("Runtime", body["Runtime"]),
            Role=settings.get("Role", body["Role"]),
            Description=settings.get("Description", ""),
            CodeSize=stored.code_size,
            CodeSha256=stored.code_sha256,
            LastModified=stored.last_modified,
            RevisionId=stored.revision_id,
        )
        layers = configuration_layers(settings)
        if layers:
            body["Layers"] = layers
    if config.tenant_isolation:
        body["TenancyConfig"] = {"TenantIsolationMode": "PER_TENANT"}
    if config.durable is not None:
        body["DurableConfig"] = {
            "ExecutionTimeout": config.durable.execution_timeout_s,
            "RetentionPeriodInDays": config.durable.retention_days,
        }
    # SnapStartResponse: what was asked (ApplyOn) and whether this version runs from a snapshot (On only
    # for a published version, or a configured function with snap_start = true).
    asked = stored.settings.get("SnapStart") if stored is not None else None
    apply_on = asked.get("ApplyOn", "None") if isinstance(asked, dict) else "None"
    body["SnapStart"] = {
        "ApplyOn": "PublishedVersions" if config.snap_start else apply_on,
        "OptimizationStatus": "On" if config.snap_start else "Off",
    }
    body.update(status)
    return body


def get_function(state: ServerState, function: Function, stored: StoredFunction | None) -> dict[str, object]:
    """GetFunctionResponse: the configuration and where the code is (a local path: there is no S3)."""
    code_path = stored.code_path if stored is not None else function.config.code
    return {
        "Configuration": configuration(state, function, stored),
        "Code": {"RepositoryType": "S3", "Location": code_path.as_uri()},
        **function_extras(function, stored.settings if stored is not None else None),  # Tags, Concurrency
    }
