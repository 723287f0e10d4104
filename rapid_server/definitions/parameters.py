"""A template's Parameters: their defaults, `--parameter-overrides`, and the pseudo parameters.

`--parameter-overrides` takes SAM CLI's syntax: `Key=Value Key2=Value2` (one argument or several, shell-quoted
values allowed) and CloudFormation's `ParameterKey=Key,ParameterValue=Value`.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from ..config import ConfigError
from .documents import Document

_LONG_FORM = "ParameterKey="
_LONG_VALUE = ",ParameterValue="
_STACK_UUID = "00000000-0000-0000-0000-000000000000"


def parse_overrides(arguments: Sequence[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for argument in arguments:
        try:
            tokens = shlex.split(argument)
        except ValueError as exc:
            raise ConfigError(f"--parameter-overrides {argument!r}: {exc}") from None
        for token in tokens:
            if token.startswith(_LONG_FORM):
                key, sep, value = token[len(_LONG_FORM) :].partition(_LONG_VALUE)
            else:
                key, sep, value = token.partition("=")
            if not sep or not key:
                raise ConfigError(
                    f"--parameter-overrides {token!r}: expected Key=Value or "
                    "ParameterKey=Key,ParameterValue=Value"
                )
            overrides[key] = value
    return overrides


def pseudo_parameters(region: str, account_id: str) -> dict[str, Any]:
    partition = (
        "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    )
    return {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::Partition": partition,
        "AWS::StackName": "local",
        "AWS::StackId": f"arn:{partition}:cloudformation:{region}:{account_id}:stack/local/{_STACK_UUID}",
        "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
        "AWS::NotificationARNs": [],
    }


def parameter_values(document: Document, overrides: Mapping[str, str]) -> dict[str, Any]:
    """Each parameter's value: its override, else its Default, typed as CloudFormation types it."""
    declared = document.data.get("Parameters") or {}
    where = document.path
    if not isinstance(declared, dict):
        raise ConfigError(f"{where}:{document.line_of(('Parameters',))}: Parameters must be a mapping")
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        names = ", ".join(declared) or "none"
        raise ConfigError(
            f"--parameter-overrides: {', '.join(unknown)}: not a parameter of {where} "
            f"(its parameters: {names})"
        )
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        line = document.line_of(("Parameters", name))
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}:{line}: parameter {name}: must be a mapping with a Type")
        if name in overrides:
            raw: Any = overrides[name]
        elif "Default" in spec:
            raw = spec["Default"]
            line = document.line_of(("Parameters", name, "Default"))
        else:
            raise ConfigError(
                f"{where}:{line}: parameter {name}: no Default and no value; "
                f"give one with --parameter-overrides {name}=VALUE"
            )
        values[name] = _typed(f"{where}:{line}: parameter {name}", spec, raw)
    return values


def _typed(where: str, spec: Mapping[str, Any], raw: Any) -> Any:
    kind = str(spec.get("Type", "String"))
    text = ",".join(str(item) for item in raw) if isinstance(raw, list) else _text(raw)
    allowed = spec.get("AllowedValues")
    if isinstance(allowed, list) and text not in [_text(value) for value in allowed]:
        raise ConfigError(f"{where}: {text!r} is not one of its AllowedValues {allowed}")
    if kind == "Number":
        try:
            number = float(text)
        except ValueError:
            raise ConfigError(f"{where}: {text!r} is not a Number") from None
        return int(number) if number.is_integer() else number
    if kind == "CommaDelimitedList" or kind.startswith("List<"):
        return [item.strip() for item in text.split(",")] if text else []
    return text


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
