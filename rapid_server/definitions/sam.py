"""AWS SAM's expansion, by SAM's own translator: `AWS::Serverless::*`, `Globals` and `Events` into plain
CloudFormation, so that one reader serves SAM, CloudFormation and `cdk synth` templates alike.

aws-sam-translator is the library SAM CLI and CloudFormation's SAM transform use. We call its public
`Translator` with an empty managed-policy map (policy names are an IAM concern: no AWS call is made) and a
boto3 session pinned to our region (no credentials, no network). It only accepts S3 locations for code, so
each local path (`CodeUri`, `ContentUri`, `DefinitionUri`) is swapped for a placeholder `s3://` URI before the
call and mapped back after, as SAM CLI's own local-URI plugin does.

Imported only when a template has the SAM transform: the translator and boto3 cost ~350 ms of import
(`python -X importtime`), which neither the runtime nor a `--code`/`--config` server pays.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError
from .documents import Document, Path_

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
PLACEHOLDER_BUCKET = "rapidboot-local-path"

# Which property of which SAM resource names a local path.
_LOCAL_URI_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::Api": "DefinitionUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}
_GLOBALS_SECTIONS = {
    "AWS::Serverless::Function": "Function",
    "AWS::Serverless::Api": "Api",
    "AWS::Serverless::HttpApi": "HttpApi",
}
_RESOURCE_ID = re.compile(r"Resource with id \[([^\]]+)\]")
_EVENT_ID = re.compile(r"Event with id \[([^\]]+)\]")


@dataclass(frozen=True, slots=True)
class LocalPath:
    """A local path the translator saw as a placeholder S3 key: where it was written."""

    value: str
    source: Path_  # its path in the document, for messages


def has_sam_transform(data: Mapping[str, Any]) -> bool:
    transform = data.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    return SAM_TRANSFORM in transforms


def expand(
    document: Document, parameters: Mapping[str, Any], region: str
) -> tuple[dict[str, Any], dict[str, LocalPath]]:
    """The template as plain CloudFormation, and the local paths behind its placeholder S3 keys."""
    import boto3
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
    from samtranslator.model.exceptions import InvalidDocumentException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(document.data)
    local_paths = _swap_local_paths(template)
    # Its usage metrics go nowhere; published here so that it does not warn about them on stderr.
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    session = boto3.Session(region_name=region)
    translator = Translator({}, Parser(), metrics=metrics, boto_session=session)
    try:
        expanded = translator.translate(template, dict(parameters), get_managed_policy_map=lambda: {})
    except InvalidDocumentException as exc:
        raise ConfigError(_describe(document, exc.causes[0] if exc.causes else exc)) from None
    finally:
        metrics.publish()
    return expanded, local_paths


def _swap_local_paths(template: dict[str, Any]) -> dict[str, LocalPath]:
    local_paths: dict[str, LocalPath] = {}

    def swap(holder: Any, key: str, source: Path_) -> None:
        value = holder.get(key) if isinstance(holder, dict) else None
        if isinstance(value, str) and not value.startswith("s3://"):
            placeholder = str(len(local_paths))
            local_paths[placeholder] = LocalPath(value, source)
            holder[key] = f"s3://{PLACEHOLDER_BUCKET}/{placeholder}"

    resources = template.get("Resources")
    for logical_id, resource in (resources if isinstance(resources, dict) else {}).items():
        kind = resource.get("Type") if isinstance(resource, dict) else None
        if kind in _LOCAL_URI_PROPERTIES:
            key = _LOCAL_URI_PROPERTIES[kind]
            swap(resource.get("Properties"), key, ("Resources", logical_id, "Properties", key))
    globals_ = template.get("Globals")
    if isinstance(globals_, dict):
        for kind, section in _GLOBALS_SECTIONS.items():
            key = _LOCAL_URI_PROPERTIES[kind]
            swap(globals_.get(section), key, ("Globals", section, key))
    return local_paths


def _describe(document: Document, cause: Any) -> str:
    """The translator's message, with the file, the line, the resource and the property it is about."""
    message = str(getattr(cause, "message", cause))
    resources = document.data.get("Resources") or {}
    resource_match = _RESOURCE_ID.search(message)
    event_match = _EVENT_ID.search(message)
    logical_id = resource_match[1] if resource_match else None
    prop: tuple[str | int, ...] = ()
    if event_match:
        for candidate, resource in resources.items():
            events = (resource.get("Properties") or {}).get("Events") if isinstance(resource, dict) else None
            if logical_id in (None, candidate) and isinstance(events, dict) and event_match[1] in events:
                logical_id, prop = candidate, ("Events", event_match[1])
    if logical_id is None or logical_id not in resources:
        return f"{document.path}:1: resource (template), property Transform: {message}"
    key_path = getattr(cause, "key_path", None)
    if not prop and isinstance(key_path, str):
        parts = key_path.split(".")
        prop = tuple(parts[1:] if parts[0] == "Properties" else parts)
    properties = resources[logical_id].get("Properties") if isinstance(resources[logical_id], dict) else None
    if not prop and isinstance(properties, dict):
        named = [
            key for key in properties if f"'{key}'" in message or f"[{key}]" in message or key in message
        ]
        prop = (max(named, key=len),) if named else ()
    line = document.line_of(("Resources", logical_id, "Properties", *prop), ("Resources", logical_id))
    where = ".".join(str(part) for part in prop) or "Type"
    return f"{document.path}:{line}: resource {logical_id}, property {where}: {message}"
