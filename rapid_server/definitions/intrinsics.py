"""CloudFormation's intrinsic functions, as far as a local run can resolve them.

`Ref` (parameters, pseudo parameters, logical ids), `Fn::Sub`, `Fn::GetAtt X.Arn`, `Fn::Join`, `Fn::If` with
the template's `Conditions` (`Fn::Equals`, `Fn::And`, `Fn::Or`, `Fn::Not`, `Condition`), `Fn::Select`,
`Fn::Split`, `Fn::FindInMap` and `Fn::Base64`. What only a deployed stack knows (`Fn::ImportValue`, other
attributes, `{{resolve:...}}` dynamic references) raises `Unresolvable`, and the caller decides: keep the
text, or stop with a message.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

NO_VALUE: Any = object()  # `AWS::NoValue`: the property, or the list item, is removed
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_DYNAMIC_REFERENCE = "{{resolve:"


class Unresolvable(Exception):
    """Only a deployed stack knows this value. `text` is the expression as written."""

    def __init__(self, text: str, reason: str) -> None:
        super().__init__(reason)
        self.text = text
        self.reason = reason


class IntrinsicError(Exception):
    """The expression is wrong (unknown parameter, malformed arguments): a mistake in the template."""


@dataclass(slots=True)
class Resolver:
    parameters: Mapping[str, Any]  # the template's parameters and the pseudo parameters, final values
    conditions: Mapping[str, Any]  # the template's Conditions section, unevaluated
    mappings: Mapping[str, Any]
    # logical id -> what `Ref` and `GetAtt .Arn` give for it (a function's name and ARN, ...)
    ref_of: Callable[[str], str | None]
    arn_of: Callable[[str], str | None]
    _evaluated: dict[str, bool] = field(default_factory=dict)
    _evaluating: set[str] = field(default_factory=set)

    # -- conditions

    def condition(self, name: str) -> bool:
        if name in self._evaluated:
            return self._evaluated[name]
        if name not in self.conditions:
            raise IntrinsicError(f"condition {name!r} is not in the Conditions section")
        if name in self._evaluating:
            raise IntrinsicError(f"condition {name!r} refers to itself")
        self._evaluating.add(name)
        try:
            value: bool = self._truth(self.conditions[name])
        finally:
            self._evaluating.discard(name)
        self._evaluated[name] = value
        return value

    def _truth(self, expression: Any) -> bool:
        function, argument = _single(expression)
        if function == "Condition" and isinstance(argument, str):
            return self.condition(argument)
        if function == "Fn::Equals" and isinstance(argument, list) and len(argument) == 2:
            left, right = (self.resolve(item) for item in argument)
            return bool(_comparable(left) == _comparable(right))
        if function == "Fn::Not" and isinstance(argument, list) and len(argument) == 1:
            return not self._truth(argument[0])
        if function in ("Fn::And", "Fn::Or") and isinstance(argument, list) and 2 <= len(argument) <= 10:
            values = [self._truth(item) for item in argument]
            return all(values) if function == "Fn::And" else any(values)
        raise IntrinsicError(f"not a condition: {_text(expression)}")

    # -- values

    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic replaced; NO_VALUE for `AWS::NoValue`."""
        if isinstance(value, str):
            if _DYNAMIC_REFERENCE in value:
                raise Unresolvable(value, "a dynamic reference is resolved by CloudFormation at deploy time")
            return value
        if isinstance(value, list):
            items = (self.resolve(item) for item in value)
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        function, argument = _single(value)
        handler = _FUNCTIONS.get(function) if function is not None else None
        if handler is None:
            resolved = ((key, self.resolve(item)) for key, item in value.items())
            return {key: item for key, item in resolved if item is not NO_VALUE}
        return handler(self, argument, value)

    def _ref(self, name: Any, expression: Any) -> Any:
        if not isinstance(name, str):
            raise IntrinsicError(f"Ref takes a name: {_text(expression)}")
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.parameters:
            return self.parameters[name]
        ref = self.ref_of(name)
        if ref is None:
            raise IntrinsicError(f"Ref {name}: no parameter or resource {name!r} in this template")
        return ref

    def _get_att(self, argument: Any, expression: Any) -> Any:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        if not (isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str)):
            raise IntrinsicError(f"Fn::GetAtt takes [Resource, Attribute]: {_text(expression)}")
        resource, attribute = argument[0], self.resolve(argument[1])
        if attribute == "Arn":
            arn = self.arn_of(resource)
            if arn is not None:
                return arn
        if self.ref_of(resource) is None:
            raise IntrinsicError(
                f"Fn::GetAtt {resource}.{attribute}: no resource {resource!r} in this template"
            )
        raise Unresolvable(
            _text(expression), f"{resource}.{attribute} is known only once the stack is deployed"
        )

    def _sub(self, argument: Any, expression: Any) -> Any:
        if isinstance(argument, str):
            template, variables = argument, {}
        elif isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
            template, variables = argument
        else:
            raise IntrinsicError(f"Fn::Sub takes a string or [string, {{variables}}]: {_text(expression)}")
        if not isinstance(template, str):
            raise IntrinsicError(f"Fn::Sub's first argument must be a string: {_text(expression)}")
        if _DYNAMIC_REFERENCE in template:
            raise Unresolvable(_text(expression), "a dynamic reference is resolved at deploy time")

        def substitute(match: re.Match[str]) -> str:
            name = match[1]
            if name.startswith("!"):  # `${!Literal}` writes `${Literal}`
                return "${" + name[1:] + "}"
            if name in variables:
                value = self.resolve(variables[name])
            elif "." in name and not name.startswith("AWS::"):
                value = self._get_att(name.split(".", 1), expression)
            else:
                value = self._ref(name, expression)
            if isinstance(value, list):
                value = ",".join(str(item) for item in value)
            return _string(value)

        return _SUB_VARIABLE.sub(substitute, template)

    def _join(self, argument: Any, expression: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str)):
            raise IntrinsicError(f"Fn::Join takes [delimiter, [values]]: {_text(expression)}")
        items = self.resolve(argument[1])
        if not isinstance(items, list):
            raise IntrinsicError(f"Fn::Join's second argument must be a list: {_text(expression)}")
        return argument[0].join(_string(item) for item in items)

    def _if(self, argument: Any, expression: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 3 and isinstance(argument[0], str)):
            raise IntrinsicError(
                f"Fn::If takes [Condition, value if true, value if false]: {_text(expression)}"
            )
        return self.resolve(argument[1] if self.condition(argument[0]) else argument[2])

    def _select(self, argument: Any, expression: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise IntrinsicError(f"Fn::Select takes [index, [values]]: {_text(expression)}")
        index, items = self.resolve(argument[0]), self.resolve(argument[1])
        try:
            return items[int(index)]
        except (ValueError, TypeError, IndexError):
            raise IntrinsicError(f"Fn::Select: no item {index!r} in {items!r}") from None

    def _split(self, argument: Any, expression: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str)):
            raise IntrinsicError(f"Fn::Split takes [delimiter, string]: {_text(expression)}")
        return _string(self.resolve(argument[1])).split(argument[0])

    def _find_in_map(self, argument: Any, expression: Any) -> Any:
        if not (isinstance(argument, list) and len(argument) == 3):
            raise IntrinsicError(f"Fn::FindInMap takes [Map, TopKey, SecondKey]: {_text(expression)}")
        name, top, second = (_string(self.resolve(item)) for item in argument)
        try:
            return self.resolve(self.mappings[name][top][second])
        except (KeyError, TypeError):
            raise IntrinsicError(f"Fn::FindInMap: no {name}.{top}.{second} in Mappings") from None

    def _base64(self, argument: Any, expression: Any) -> Any:
        return base64.b64encode(_string(self.resolve(argument)).encode()).decode()

    def _deployed_only(self, argument: Any, expression: Any) -> Any:
        function, _ = _single(expression)
        raise Unresolvable(_text(expression), f"{function} is known only to a deployed stack")


_FUNCTIONS: dict[str, Callable[[Resolver, Any, Any], Any]] = {
    "Ref": Resolver._ref,
    "Fn::GetAtt": Resolver._get_att,
    "Fn::Sub": Resolver._sub,
    "Fn::Join": Resolver._join,
    "Fn::If": Resolver._if,
    "Fn::Select": Resolver._select,
    "Fn::Split": Resolver._split,
    "Fn::FindInMap": Resolver._find_in_map,
    "Fn::Base64": Resolver._base64,
    "Fn::ImportValue": Resolver._deployed_only,
    "Fn::GetAZs": Resolver._deployed_only,
    "Fn::Cidr": Resolver._deployed_only,
    "Fn::Transform": Resolver._deployed_only,
}


def _single(value: Any) -> tuple[str | None, Any]:
    if isinstance(value, dict) and len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
            return key, argument
    return None, None


def _comparable(value: Any) -> Any:
    return _string(value) if isinstance(value, int | float | bool) else value


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise IntrinsicError(f"expected a string, got {_text(value)}")


def _text(expression: Any) -> str:
    """The expression as its JSON text: what an unresolved environment variable keeps."""
    return expression if isinstance(expression, str) else json.dumps(expression, separators=(",", ":"))
