"""`rapidboot serve --template`: an AWS SAM, CloudFormation or `cdk synth` template as the configuration.

SAM templates are first expanded into plain CloudFormation by SAM's own translator (sam.py); then one reader
takes every `AWS::Lambda::Function` and `AWS::Lambda::LayerVersion`, resolves the intrinsics a local run can
(intrinsics.py), and hands the settings to `validate_function`, so a template is held to exactly the limits a
rapidboot.toml is. Every mistake stops the server with one message naming the file, the line, the resource
and the property (the property as the user wrote it: `CodeUri`, not the `Code` it became).
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import ConfigError, FunctionConfig, validate_function
from . import documents, parameters, sam
from .documents import Document, Path_
from .intrinsics import NO_VALUE, IntrinsicError, Resolver, Unresolvable

if TYPE_CHECKING:
    from ..event_sources.schedules import Schedule

TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")  # what `sam` finds in the cwd
DEFAULT_ACCOUNT_ID = "123456789012"  # ServerConfig's
MAX_LAYERS = (
    5  # Lambda's, as rapidboot.layers.limits.LAMBDA_MAX_LAYERS (not imported: that package is for merging)
)

_FUNCTION = "AWS::Lambda::Function"
# What SAM's Schedule / ScheduleV2 events become (definitions/schedules.py reads them).
_SCHEDULE_TYPES = ("AWS::Events::Rule", "AWS::Scheduler::Schedule")
_LAYER = "AWS::Lambda::LayerVersion"
_EVENT_SOURCE_MAPPING = "AWS::Lambda::EventSourceMapping"  # what SAM makes of `Events: Type: SQS`
_QUEUE = "AWS::SQS::Queue"
_ARCHITECTURES = ("x86_64", "arm64")
_PYTHON_RUNTIME = re.compile(r"^python3\.\d+$")
_PROVIDED_RUNTIMES = ("provided", "provided.al2", "provided.al2023")
# The property a SAM user wrote, for the CloudFormation property it became.
_SAM_NAMES = {"Code": "CodeUri"}
_SAM_FUNCTION = "AWS::Serverless::Function"
# validate_function's keys (its messages say `WHERE.memory: ...`), as template properties.
_TEMPLATE_KEYS: dict[str, Path_] = {
    "code": ("Code",),
    "handler": ("Handler",),
    "memory": ("MemorySize",),
    "timeout": ("Timeout",),
    "environment": ("Environment", "Variables"),
    "reserved_concurrency": ("ReservedConcurrentExecutions",),
    "provisioned_concurrency": ("ProvisionedConcurrencyConfig", "ProvisionedConcurrentExecutions"),
    "ephemeral_storage": ("EphemeralStorage", "Size"),
    "layers": ("Layers",),
    "runtime": ("Runtime",),
    "snap_start": ("SnapStart", "ApplyOn"),
}
_VALIDATOR_WHERE = "\x00"  # a prefix no message text contains, to split validate_function's messages
_VALIDATOR_MESSAGE = re.compile(r"^\x00(?:\.(\w+)(?:\.(.+?)|\[(\d+)\])?)?: (.*)$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class FunctionTriggers:
    """A function's HTTP triggers as the template wrote them (intrinsics resolved where they can be), for
    an HTTP front door: SAM `Events`, and the function URL (`FunctionUrlConfig`, or an `AWS::Lambda::Url`)."""

    logical_id: str
    events: Mapping[str, Any]
    url_config: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class TemplateDefinition:
    path: Path
    functions: dict[str, FunctionConfig]  # by function name: what a rapidboot.toml would give
    triggers: dict[str, FunctionTriggers]  # by function name
    warnings: tuple[str, ...]  # one line each: values kept as written because only AWS knows them
    # SAM's APIs, by logical id (`ServerlessRestApi` / `ServerlessHttpApi` for the implicit ones): their
    # properties over `Globals.Api` / `Globals.HttpApi` (StageName, BinaryMediaTypes, Variables...), for an
    # HTTP front door as `triggers` is.
    apis: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    # EventBridge rules and Scheduler schedules targeting its functions (definitions/schedules.py).
    schedules: tuple[Schedule, ...] = ()


def find_template(directory: Path) -> Path | None:
    for name in TEMPLATE_NAMES:
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


def load_template(
    path: Path,
    overrides: Mapping[str, str] | None = None,
    region: str = "us-east-1",
    account_id: str = DEFAULT_ACCOUNT_ID,
) -> TemplateDefinition:
    document = documents.load(path)
    resources = document.data.get("Resources")
    if not isinstance(resources, dict) or not resources:
        line = document.line_of(("Resources",))
        raise ConfigError(f"{path}:{line}: no Resources: a template needs at least one function")
    values = {
        **parameters.pseudo_parameters(region, account_id),
        **parameters.parameter_values(document, overrides or {}),
    }
    _refuse_other_transforms(document)
    if sam.has_sam_transform(document.data):
        _refuse_images(document)
        expanded, local_paths = sam.expand(document, values, region)
    else:
        expanded, local_paths = document.data, {}
    return _Reader(document, expanded, local_paths, values, region, account_id).read()


def _refuse_other_transforms(document: Document) -> None:
    transform = document.data.get("Transform")
    for i, name in enumerate(transform if isinstance(transform, list) else [transform]):
        if name is not None and name != sam.SAM_TRANSFORM:
            line = document.line_of(("Transform", i), ("Transform",))
            raise ConfigError(
                f"{document.path}:{line}: resource (template), property Transform: {name!r} is not applied "
                f"locally; only {sam.SAM_TRANSFORM} is"
            )


def _refuse_images(document: Document) -> None:
    """Before the translator: its message for an image function would be about a missing ImageUri."""
    globals_ = _mapping(_mapping(document.data.get("Globals")).get("Function"))
    for logical_id, resource in document.data["Resources"].items():
        if not isinstance(resource, dict) or resource.get("Type") != _SAM_FUNCTION:
            continue
        properties = _mapping(resource.get("Properties"))
        if properties.get("PackageType", globals_.get("PackageType")) == "Image":
            line = document.line_of(
                ("Resources", logical_id, "Properties", "PackageType"), ("Globals", "Function", "PackageType")
            )
            raise ConfigError(_image_message(document.path, line, logical_id))


def _image_message(path: Path, line: int, logical_id: str) -> str:
    return (
        f"{path}:{line}: resource {logical_id}, property PackageType: Image functions are not run from a "
        f"template; build the image and run it (see examples/container), or use a zip package (CodeUri)"
    )


class _Reader:
    """One pass over the expanded template's functions and layers."""

    def __init__(
        self,
        document: Document,
        template: dict[str, Any],
        local_paths: Mapping[str, sam.LocalPath],
        values: Mapping[str, Any],
        region: str,
        account_id: str,
    ) -> None:
        self.document = document
        self.resources: dict[str, Any] = {
            logical_id: resource
            for logical_id, resource in (template.get("Resources") or {}).items()
            if isinstance(resource, dict)
        }
        self.local_paths = local_paths
        self.region, self.account_id = region, account_id
        self.partition = str(values.get("AWS::Partition", "aws"))
        self.base_dir = document.path.parent.resolve()
        self.warnings: list[str] = []
        self._names: dict[str, str] = {}
        self.resolver = Resolver(
            values,
            _mapping(template.get("Conditions")),
            _mapping(template.get("Mappings")),
            self._ref_of,
            self._arn_of,
        )

    # -- what Ref and GetAtt .Arn give for a logical id

    def _ref_of(self, logical_id: str) -> str | None:
        resource = self.resources.get(logical_id)
        if resource is None:
            return None
        if resource.get("Type") == _FUNCTION:
            return self._function_name(logical_id)
        if resource.get("Type") == _LAYER:
            return self._layer_arn(logical_id)
        return logical_id  # as SAM CLI does: the logical id stands for the physical name

    def _arn_of(self, logical_id: str) -> str | None:
        resource = self.resources.get(logical_id)
        if resource is not None and resource.get("Type") == _FUNCTION:
            name = self._function_name(logical_id)
            return f"arn:{self.partition}:lambda:{self.region}:{self.account_id}:function:{name}"
        if resource is not None and resource.get("Type") == _QUEUE:
            # The queue the template declares, in our region and account, by its QueueName (else its
            # logical id, as SAM CLI names resources): the queue a local SQS endpoint is to hold.
            name = self._resolve(logical_id, ("QueueName",), absent=logical_id)
            return f"arn:{self.partition}:sqs:{self.region}:{self.account_id}:{name}"
        return None

    def _function_name(self, logical_id: str) -> str:
        if logical_id not in self._names:
            self._names[logical_id] = logical_id  # a FunctionName that refers to itself ends here
            name = self._resolve(logical_id, ("FunctionName",), absent=logical_id)
            self._names[logical_id] = str(name)
        return self._names[logical_id]

    def _layer_arn(self, logical_id: str) -> str:
        name = self._resolve(logical_id, ("LayerName",), absent=logical_id)
        return f"arn:{self.partition}:lambda:{self.region}:{self.account_id}:layer:{name}:1"

    # -- the definition

    def read(self) -> TemplateDefinition:
        functions: dict[str, FunctionConfig] = {}
        triggers: dict[str, FunctionTriggers] = {}
        by_name: dict[str, str] = {}
        for logical_id, resource in self.resources.items():
            if resource.get("Type") != _FUNCTION or not self._exists(logical_id):
                continue
            function = self._function(logical_id)
            if function.name in by_name:
                raise self._error(
                    logical_id,
                    ("FunctionName",),
                    f"{function.name!r} is also {by_name[function.name]}'s name",
                )
            by_name[function.name] = logical_id
            functions[function.name] = function
            triggers[function.name] = FunctionTriggers(
                logical_id, self._events(logical_id), self._url_config(logical_id)
            )
        for logical_id, resource in self.resources.items():
            if resource.get("Type") == _EVENT_SOURCE_MAPPING and self._exists(logical_id):
                self._event_source_mapping(logical_id, functions, by_name)
        if not functions:
            line = self.document.line_of(("Resources",))
            raise ConfigError(
                f"{self.document.path}:{line}: no functions: the template has no AWS::Serverless::Function "
                "or AWS::Lambda::Function (with its Condition true)"
            )
        schedules: tuple[Schedule, ...] = ()
        if any(resource.get("Type") in _SCHEDULE_TYPES for resource in self.resources.values()):
            # Lazy: the schedule machinery (~8 ms of import) only for a template that has schedules.
            from .schedules import read_schedules

            schedules = read_schedules(
                self.document,
                self.resources,
                {trigger.logical_id: name for name, trigger in triggers.items()},
                self._target_function,
                self._lenient,
            )
        return TemplateDefinition(
            self.document.path, functions, triggers, tuple(self.warnings), self._apis(), schedules
        )

    def _apis(self) -> dict[str, Mapping[str, Any]]:
        globals_ = _mapping(self.document.data.get("Globals"))
        apis: dict[str, Mapping[str, Any]] = {}
        for kind, implicit in (("Api", "ServerlessRestApi"), ("HttpApi", "ServerlessHttpApi")):
            shared = {k: self._lenient(v) for k, v in _mapping(globals_.get(kind)).items()}
            apis[implicit] = shared
            for logical_id, resource in _mapping(self.document.data.get("Resources")).items():
                if isinstance(resource, dict) and resource.get("Type") == f"AWS::Serverless::{kind}":
                    own = _mapping(resource.get("Properties"))
                    apis[logical_id] = {**shared, **{k: self._lenient(v) for k, v in own.items()}}
        return apis

    def _exists(self, logical_id: str) -> bool:
        condition = self.resources[logical_id].get("Condition")
        if condition is None:
            return True
        try:
            return self.resolver.condition(str(condition))
        except IntrinsicError as exc:
            raise self._error(logical_id, ("Condition",), str(exc)) from None

    def _function(self, logical_id: str) -> FunctionConfig:
        properties = self._properties(logical_id)
        if self._resolve(logical_id, ("PackageType",), absent="Zip") == "Image":
            line = self._line(logical_id, ("PackageType",))[0]
            raise ConfigError(_image_message(self.document.path, line, logical_id))
        architectures = self._resolve(logical_id, ("Architectures",), absent=["x86_64"])
        if not (
            isinstance(architectures, list) and len(architectures) == 1 and architectures[0] in _ARCHITECTURES
        ):
            raise self._error(
                logical_id, ("Architectures",), f"must be [x86_64] or [arm64], got {architectures!r}"
            )
        runtime = self._runtime(logical_id)
        handler = self._resolve(
            logical_id, ("Handler",), absent="bootstrap" if runtime == "provided" else None
        )
        arguments: dict[str, Any] = {
            "memory": _integer(self._resolve(logical_id, ("MemorySize",), absent=128)),
            "timeout": _integer(self._resolve(logical_id, ("Timeout",), absent=3)),
            "environment": self._environment(logical_id, properties),
            "layers": self._layers(logical_id),
            "ephemeral_storage": _integer(
                self._resolve(logical_id, ("EphemeralStorage", "Size"), absent=512)
            ),
            "provisioned_concurrency": self._provisioned(logical_id),
            "snap_start": self._snap_start(logical_id),
        }
        reserved = self._resolve(logical_id, ("ReservedConcurrentExecutions",), absent=None)
        if reserved is not None:
            arguments["reserved_concurrency"] = _integer(reserved)
        code = self._code(logical_id)
        name = self._function_name(logical_id)
        try:
            return validate_function(
                _VALIDATOR_WHERE, name, code, handler, runtime=runtime, base_dir=self.base_dir, **arguments
            )
        except ConfigError as exc:
            raise self._relocated(logical_id, str(exc)) from None

    def _snap_start(self, logical_id: str) -> bool:
        """`SnapStart: {ApplyOn: PublishedVersions}`. Locally every environment is forked from the snapshot:
        there are no published versions, so the setting means SnapStart on (issue 17)."""
        apply_on = self._resolve(logical_id, ("SnapStart", "ApplyOn"), absent="None")
        if apply_on not in ("None", "PublishedVersions"):
            raise self._error(
                logical_id, ("SnapStart", "ApplyOn"), f"must be PublishedVersions or None, got {apply_on!r}"
            )
        return bool(apply_on == "PublishedVersions")

    def _relocated(self, logical_id: str, message: str) -> ConfigError:
        """validate_function's message (`\\x00.memory: ...`) about this resource's property."""
        match = _VALIDATOR_MESSAGE.match(message)
        if match is None:
            return self._error(logical_id, (), message.lstrip(_VALIDATOR_WHERE).lstrip(".: "))
        key, child, index, problem = match.groups()
        prop: Path_ = _TEMPLATE_KEYS.get(key, (key,)) if key else ("FunctionName",)
        if child is not None:
            prop = (*prop, child)
        elif index is not None:
            prop = (*prop, int(index))
        return self._error(logical_id, prop, problem)

    def _runtime(self, logical_id: str) -> str:
        runtime = self._resolve(logical_id, ("Runtime",), absent=None)
        if isinstance(runtime, str) and _PYTHON_RUNTIME.match(runtime):
            return "python"  # our bootstrap runs it, on this interpreter
        if runtime in _PROVIDED_RUNTIMES:
            return "provided"  # the code's or a layer's own `bootstrap`
        raise self._error(
            logical_id,
            ("Runtime",),
            f"{runtime!r}: rapidboot runs python3.x runtimes (with its own bootstrap) and provided.al2023 / "
            "provided.al2 (with the package's `bootstrap`)",
        )

    def _code(self, logical_id: str) -> str:
        resource = self.resources[logical_id]
        metadata = _mapping(resource.get("Metadata"))
        if metadata.get("aws:asset:property") == "Code" and isinstance(metadata.get("aws:asset:path"), str):
            return str(
                self.base_dir / metadata["aws:asset:path"]
            )  # `cdk synth`: an asset directory in cdk.out
        code = _mapping(resource.get("Properties")).get("Code")
        if isinstance(code, dict) and code.get("S3Bucket") == sam.PLACEHOLDER_BUCKET:
            return self.local_paths[str(code.get("S3Key"))].value
        code = self._resolve(logical_id, ("Code",), absent=None)
        if isinstance(code, str) and code:
            return code  # a local path, as `aws cloudformation package` takes it
        if isinstance(code, dict) and "ZipFile" in code:
            problem = "inline code (InlineCode / ZipFile) is not run locally; put it in a directory (CodeUri)"
        elif isinstance(code, dict) and "ImageUri" in code:
            problem = "an image is not run from a template; use a zip package (CodeUri)"
        elif code is None:
            problem = "required: the function's code, a local directory or zip file"
        else:
            problem = f"{code!r} is in S3; a local run needs a local directory or zip file"
        raise self._error(logical_id, ("Code",), problem)

    def _environment(self, logical_id: str, properties: Mapping[str, Any]) -> dict[str, Any] | None:
        variables = _mapping(properties.get("Environment")).get("Variables")
        if variables is None:
            return None
        if not isinstance(variables, dict):
            return self._resolve(logical_id, ("Environment", "Variables"), absent=None)  # type: ignore[no-any-return]
        environment: dict[str, Any] = {}
        for key, raw in variables.items():
            prop: Path_ = ("Environment", "Variables", key)
            try:
                value = self.resolver.resolve(raw)
            except Unresolvable as exc:
                line, shown = self._line(logical_id, prop)
                self.warnings.append(
                    f"{self.document.path}:{line}: warning: resource {logical_id}, property {shown}: "
                    f"{exc.reason}; the variable keeps its literal text {exc.text}"
                )
                value = exc.text
            except IntrinsicError as exc:
                raise self._error(logical_id, prop, str(exc)) from None
            if value is NO_VALUE:
                continue
            environment[key] = ("true" if value else "false") if isinstance(value, bool) else value
        return environment

    def _layers(self, logical_id: str) -> list[str]:
        arns = self._resolve(logical_id, ("Layers",), absent=[])
        if not isinstance(arns, list):
            raise self._error(logical_id, ("Layers",), f"must be a list of layers, got {arns!r}")
        if len(arns) > MAX_LAYERS:
            raise self._error(
                logical_id,
                ("Layers",),
                f"{len(arns)} layers, over Lambda's limit of {MAX_LAYERS} per function",
            )
        local = {
            self._layer_arn(layer_id): layer_id
            for layer_id, resource in self.resources.items()
            if resource.get("Type") == _LAYER
        }
        paths = []
        for i, arn in enumerate(arns):
            if arn not in local:
                raise self._error(
                    logical_id,
                    ("Layers", i),
                    f"{arn!r} is not a layer of this template; a published layer cannot be fetched locally: "
                    "declare it as a LayerVersion with a local ContentUri",
                )
            paths.append(self._layer_path(local[arn]))
        return paths

    def _layer_path(self, layer_id: str) -> str:
        resource = self.resources[layer_id]
        metadata = _mapping(resource.get("Metadata"))
        if metadata.get("aws:asset:property") == "Content" and isinstance(
            metadata.get("aws:asset:path"), str
        ):
            return str(self.base_dir / metadata["aws:asset:path"])
        content = _mapping(resource.get("Properties")).get("Content")
        if isinstance(content, dict) and content.get("S3Bucket") == sam.PLACEHOLDER_BUCKET:
            return self.local_paths[str(content.get("S3Key"))].value
        if isinstance(content, str) and content:
            return content
        raise self._error(layer_id, ("Content",), f"{content!r} is not a local directory or zip file")

    def _provisioned(self, logical_id: str) -> Any:
        """Provisioned concurrency lives on an alias or a version (SAM puts it on the AutoPublishAlias)."""
        for resource in self.resources.values():
            if resource.get("Type") not in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
                continue
            properties = _mapping(resource.get("Properties"))
            if properties.get("FunctionName") not in ({"Ref": logical_id}, self._function_name(logical_id)):
                continue
            config = _mapping(properties.get("ProvisionedConcurrencyConfig"))
            if "ProvisionedConcurrentExecutions" in config:
                # Messages point at the function: SAM wrote it there, and the alias is the translator's.
                prop: Path_ = ("ProvisionedConcurrencyConfig", "ProvisionedConcurrentExecutions")
                try:
                    return _integer(self.resolver.resolve(config["ProvisionedConcurrentExecutions"]))
                except (Unresolvable, IntrinsicError) as exc:
                    raise self._error(logical_id, prop, str(exc)) from None
        return 0

    def _event_source_mapping(
        self, logical_id: str, functions: dict[str, FunctionConfig], by_name: Mapping[str, str]
    ) -> None:
        """An SQS mapping joins its function's `event_sources`; a stream's or Kafka's is warned about and
        skipped (only SQS is polled locally). `Metadata: {rapidboot: {EndpointUrl: URL}}` on the mapping
        or on its function points it at another SQS endpoint (SAM refuses unknown event properties)."""
        from ..event_sources.mapping import MappingError, check_source, scaling_config

        where = self._mapping_origin(logical_id)
        target = self._resolve(logical_id, ("FunctionName",), absent=None)
        name = str(target).split("function:", 1)[-1].split(":", 1)[0] if target is not None else ""
        if name not in functions:
            raise where(("FunctionName",), f"{target!r} is not a function of this template")
        arn = self._resolve(logical_id, ("EventSourceArn",), absent=None)
        if not (isinstance(arn, str) and ":sqs:" in arn):
            self.warnings.append(
                f"{logical_id}: event source {arn!r} is not an SQS queue: not polled locally"
            )
            return
        endpoint = self._endpoint_url(logical_id) or self._endpoint_url(by_name[name])
        try:
            source = check_source(
                arn,
                _integer(self._resolve(logical_id, ("BatchSize",), absent=None)),
                _integer(self._resolve(logical_id, ("MaximumBatchingWindowInSeconds",), absent=None)),
                self._resolve(logical_id, ("FunctionResponseTypes",), absent=None),
                scaling_config(self._resolve(logical_id, ("ScalingConfig",), absent=None)),
                self._resolve(logical_id, ("Enabled",), absent=True),
                endpoint,
            )
        except MappingError as exc:
            prop: Path_ = tuple(exc.key.split(".")) if exc.key != "EndpointUrl" else ("Metadata",)
            raise where(prop, exc.problem) from None
        function = functions[name]
        if any(other.queue.arn == arn for other in function.event_sources):
            raise where(("EventSourceArn",), f"{arn} is already mapped to {name}")
        functions[name] = dataclasses.replace(function, event_sources=(*function.event_sources, source))

    def _endpoint_url(self, logical_id: str) -> Any:
        metadata = _mapping(_mapping(self.resources[logical_id].get("Metadata")).get("rapidboot"))
        return metadata.get("EndpointUrl")

    def _mapping_origin(self, logical_id: str) -> Callable[[Path_, str], ConfigError]:
        """How to report a problem of this mapping: at its own resource, or, when SAM made it from a
        function's `Events` entry, at that entry's property (`Queue` for `EventSourceArn`)."""
        source_resources = _mapping(self.document.data.get("Resources"))
        if logical_id not in source_resources:
            for function_id, resource in source_resources.items():
                events = _mapping(_mapping(_mapping(resource).get("Properties")).get("Events"))
                for event_name in events:
                    if function_id + event_name == logical_id:
                        return functools.partial(self._event_error, function_id, event_name)
        return functools.partial(self._error, logical_id)

    def _event_error(self, function_id: str, event_name: str, prop: Path_, problem: str) -> ConfigError:
        written = ({"EventSourceArn": "Queue"}.get(str(prop[0]), prop[0]), *prop[1:]) if prop else ()
        event = ("Resources", function_id, "Properties", "Events", event_name)
        line = self.document.line_of((*event, "Properties", *written), event)
        shown = ".".join(str(part) for part in ("Events", event_name, *written))
        return ConfigError(
            f"{self.document.path}:{line}: resource {function_id}, property {shown}: {problem}"
        )

    def _events(self, logical_id: str) -> dict[str, Any]:
        source = self.document.data["Resources"].get(logical_id)
        events = _mapping(_mapping(source).get("Properties")).get("Events")
        return {name: self._lenient(event) for name, event in _mapping(events).items()}

    def _url_config(self, logical_id: str) -> dict[str, Any] | None:
        for resource in self.resources.values():
            if resource.get("Type") != "AWS::Lambda::Url":
                continue
            properties = _mapping(resource.get("Properties"))
            if self._target_function(properties.get("TargetFunctionArn")) == logical_id:
                return {k: self._lenient(v) for k, v in properties.items() if k != "TargetFunctionArn"}
        return None

    def _target_function(self, target: Any) -> str | None:
        if isinstance(target, dict) and "Ref" in target:
            target_id = target["Ref"]
        elif isinstance(target, dict) and isinstance(target.get("Fn::GetAtt"), list):
            target_id = target["Fn::GetAtt"][0]
        else:
            return None
        resource = self.resources.get(target_id)
        if resource is not None and resource.get("Type") == "AWS::Lambda::Alias":
            return self._target_function(_mapping(resource.get("Properties")).get("FunctionName"))
        return target_id if isinstance(target_id, str) else None

    # -- resolution and messages

    def _properties(self, logical_id: str) -> dict[str, Any]:
        properties = self.resources[logical_id].get("Properties")
        if not isinstance(properties, dict):
            raise self._error(logical_id, ("Properties",), "must be a mapping")
        return properties

    def _resolve(self, logical_id: str, prop: Path_, absent: Any) -> Any:
        value: Any = self.resources[logical_id].get("Properties")
        for part in prop:
            if not isinstance(value, dict) or part not in value:
                return absent
            value = value[part]
        try:
            resolved = self.resolver.resolve(value)
        except Unresolvable as exc:
            raise self._error(
                logical_id, prop, f"{exc.reason}, so {exc.text} cannot be used locally"
            ) from None
        except IntrinsicError as exc:
            raise self._error(logical_id, prop, str(exc)) from None
        return absent if resolved is NO_VALUE else resolved

    def _lenient(self, value: Any) -> Any:
        try:
            return self.resolver.resolve(value)
        except (Unresolvable, IntrinsicError):
            return value

    def _line(self, logical_id: str, prop: Path_) -> tuple[int, str]:
        """The line a property was written on, and its name as written there (SAM's, or from Globals)."""
        source = self.document.data["Resources"].get(logical_id)
        is_sam = isinstance(source, dict) and source.get("Type") == _SAM_FUNCTION
        written = (_SAM_NAMES.get(str(prop[0]), prop[0]), *prop[1:]) if is_sam and prop else prop
        shown = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in written).lstrip(".")
        own = ("Resources", logical_id, "Properties", *written)
        if is_sam and own not in self.document.lines:
            in_globals = ("Globals", "Function", *written)
            if in_globals in self.document.lines:
                return self.document.lines[in_globals], f"{shown} (from Globals.Function)"
        if source is None:  # made by the translator (a layer's new logical id): no line of its own
            return 1, shown
        return self.document.line_of(own, ("Resources", logical_id)), shown

    def _error(self, logical_id: str, prop: Path_, problem: str) -> ConfigError:
        line, shown = self._line(logical_id, prop)
        where = f"resource {logical_id}, property {shown}" if shown else f"resource {logical_id}"
        return ConfigError(f"{self.document.path}:{line}: {where}: {problem}")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _integer(value: Any) -> Any:
    """CloudFormation takes `"256"` for an integer property; anything else goes to the validator as is."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def print_warnings(definition: TemplateDefinition) -> None:
    for warning in definition.warnings:
        print(f"rapidboot: {warning}", file=sys.stderr)
