"""A template's schedules: the `AWS::Events::Rule`s with a `ScheduleExpression` and the
`AWS::Scheduler::Schedule`s whose target is one of its functions.

SAM's translator expands `Events: Type: Schedule` into the first and `Type: ScheduleV2` into the second, so
one reader serves SAM, CloudFormation and `cdk synth` templates. A message points at what the user wrote:
for a SAM event, the event's own property (`Events.Nightly.Schedule`), not the rule the translator made.

What is read: the expression; `State` (`DISABLED`: listed, never fired; SAM's `Enabled: false` and
ScheduleV2's `State` become it); the target's constant `Input` (must be JSON, as EventBridge requires);
ScheduleV2's `ScheduleExpressionTimezone` and `Name`. Not read: `StartDate`/`EndDate`,
`FlexibleTimeWindow` (fired on time), input transformers and paths, a rule's other targets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from ..config import ConfigError
from ..event_sources.expressions import ExpressionError, parse
from ..event_sources.schedules import RULE, SCHEDULER, Schedule
from .documents import Document, Path_

_RULE = "AWS::Events::Rule"
_SCHEDULE = "AWS::Scheduler::Schedule"
# SAM's event property, for the property of the resource it became.
_SAM_EVENT_PROPERTIES = {
    "ScheduleExpression": "Schedule",  # Type: Schedule (ScheduleV2 keeps ScheduleExpression)
    "State": "Enabled",
    "Targets": "Input",
    "Target": "Input",
}


def read_schedules(
    document: Document,
    resources: Mapping[str, Mapping[str, Any]],
    functions: Mapping[str, str],
    target_of: Callable[[Any], str | None],
    resolve: Callable[[Any], Any],
) -> tuple[Schedule, ...]:
    """`functions`: function name by logical id; `target_of`: the function logical id an `Arn` (`Ref`,
    `Fn::GetAtt`, through an alias) names; `resolve`: intrinsics resolved where they can be."""
    reader = _ScheduleReader(document, functions, target_of, resolve)
    schedules: list[Schedule] = []
    for logical_id, resource in resources.items():
        kind = resource.get("Type")
        properties = resource.get("Properties")
        if kind not in (_RULE, _SCHEDULE) or not isinstance(properties, dict):
            continue
        if kind == _RULE and "ScheduleExpression" not in properties:
            continue  # an event-pattern rule: no local source of events
        schedules.extend(reader.read(logical_id, kind, properties))
    return tuple(schedules)


class _ScheduleReader:
    def __init__(
        self,
        document: Document,
        functions: Mapping[str, str],
        target_of: Callable[[Any], str | None],
        resolve: Callable[[Any], Any],
    ) -> None:
        self.document = document
        self.functions = functions
        self.target_of = target_of
        self.resolve = resolve

    def read(self, logical_id: str, kind: str, properties: Mapping[str, Any]) -> list[Schedule]:
        scheduler = kind == _SCHEDULE
        targets = [properties.get("Target")] if scheduler else properties.get("Targets")
        found: list[tuple[str, Any]] = []
        for target in targets if isinstance(targets, list) else []:
            function_id = self.target_of(target.get("Arn")) if isinstance(target, dict) else None
            if function_id is not None and function_id in self.functions:
                found.append((self.functions[function_id], target))
        if not found:
            return []  # a schedule of something else (a queue, a state machine): not ours to run
        timezone = str(self.resolve(properties.get("ScheduleExpressionTimezone", "UTC")))
        text = self.resolve(properties.get("ScheduleExpression"))
        try:
            expression = parse(text, timezone if scheduler else None, one_time=scheduler)
        except ExpressionError as exc:
            prop = (
                "ScheduleExpressionTimezone"
                if exc.field == "ScheduleExpressionTimezone"
                else "ScheduleExpression"
            )
            raise self._error(logical_id, prop, f"{exc.expression}: {exc.field}: {exc.problem}") from None
        state = self.resolve(properties.get("State", "ENABLED"))
        if state not in ("ENABLED", "DISABLED"):
            raise self._error(logical_id, "State", f"{state!r} must be ENABLED or DISABLED")
        name = self.resolve(properties.get("Name", logical_id)) if scheduler else logical_id
        schedules = []
        for function, target in found:
            payload = None
            if "Input" in target:
                payload = self._input(logical_id, "Target" if scheduler else "Targets", target["Input"])
            schedules.append(
                Schedule(
                    str(name),
                    function,
                    expression,
                    SCHEDULER if scheduler else RULE,
                    payload,
                    state == "ENABLED",
                    timezone if scheduler else "UTC",
                )
            )
        return schedules

    def _input(self, logical_id: str, prop: str, raw: Any) -> bytes:
        value = self.resolve(raw)
        if not isinstance(value, str):
            raise self._error(logical_id, prop, f"Input must be a JSON text, got {value!r}")
        try:
            orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise self._error(logical_id, prop, f"Input is not JSON ({exc}): {value!r}") from None
        return value.encode()

    def _error(self, logical_id: str, prop: str, problem: str) -> ConfigError:
        """Located at the SAM event it came from when there is one, else at the resource's property."""
        line, where = self.document.line_of(("Resources", logical_id, "Properties", prop)), None
        for function_id, resource in (self.document.data.get("Resources") or {}).items():
            events = (resource.get("Properties") or {}).get("Events") if isinstance(resource, dict) else None
            for event_name in events if isinstance(events, dict) else ():
                if f"{function_id}{event_name}" == logical_id:
                    event_prop = _SAM_EVENT_PROPERTIES.get(prop, prop)
                    path: Path_ = ("Resources", function_id, "Properties", "Events", event_name)
                    line = self.document.line_of((*path, "Properties", event_prop), path)
                    where = f"resource {function_id}, property Events.{event_name}.{event_prop}"
        if where is None:
            where = f"resource {logical_id}, property {prop}"
        return ConfigError(f"{self.document.path}:{line}: {where}: {problem}")
