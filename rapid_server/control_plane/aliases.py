"""Aliases: CreateAlias, UpdateAlias, GetAlias, ListAliases, DeleteAlias, and the pick of a version for
each invoke of an alias.

An alias names a version ($LATEST or a published one) and, optionally, one more published version with
the weight (0..1) of the invokes it gets (`RoutingConfig.AdditionalVersionWeights`). Each invoke draws its
version independently, as the service routes them; the caller sees which in X-Amz-Executed-Version.
Checked as the service checks them: the request validation first (ValidationException), then the
semantics (InvalidParameterValueException, ResourceNotFoundException, ResourceConflictException).
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Collection
from typing import TYPE_CHECKING

from .. import errors
from ..errors import ServiceError
from ..paging import page_after, page_size
from . import settings
from .functions import _invalid
from .version_store import StoredAlias
from .versions import LATEST, RESOURCE_CONFLICT, not_found, split_qualifier

if TYPE_CHECKING:
    from .versions import Versions

# botocore's model: `Alias` (not all digits: that would be a version), `Version`, `AdditionalVersion`.
ALIAS_PATTERN = r"(?!^[0-9]+$)([a-zA-Z0-9-_]+)"
VERSION_PATTERN = r"(\$LATEST|[0-9]+)"
ADDITIONAL_VERSION_PATTERN = r"[0-9]+"
_ALIAS = re.compile(ALIAS_PATTERN, re.ASCII)
_VERSION = re.compile(VERSION_PATTERN, re.ASCII)
_ADDITIONAL_VERSION = re.compile(ADDITIONAL_VERSION_PATTERN, re.ASCII)
ALIAS_MAX = 128
DESCRIPTION_MAX = 256


def _validation(problems: list[str]) -> ServiceError:
    count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''} detected"
    return ServiceError(400, errors.VALIDATION, f"{count}: {'; '.join(problems)}")


def _violation(value: object, member: str, constraint: str) -> str:
    return f"Value '{value}' at '{member}' failed to satisfy constraint: Member must {constraint}"


class Aliases:
    def __init__(self, versions: Versions):
        self.versions = versions
        self.state = versions.state
        self._by_function: dict[str, dict[str, StoredAlias]] = {}

    def load(self, served: Collection[str]) -> None:
        for alias in self.versions.store.aliases():
            if alias.name in served:
                self._by_function.setdefault(alias.name, {})[alias.alias] = alias

    # -- the invoke path

    def pick(self, name: str, alias: str) -> str | None:
        """The version this invoke of the alias runs: the additional one with its weight's probability."""
        record = self._by_function.get(name, {}).get(alias)
        if record is None:
            return None
        for version, weight in record.weights.items():
            if random.random() < weight:
                return version
        return record.function_version

    # -- reads

    def get_or_none(self, name: str, alias: str) -> StoredAlias | None:
        return self._by_function.get(name, {}).get(alias)

    def get(self, name: str, alias: str) -> StoredAlias:
        self.versions.control.find(name)
        record = self.get_or_none(name, alias)
        if record is None:
            raise ServiceError(
                404, errors.RESOURCE_NOT_FOUND, f"Alias not found: {self.state.function_arn(name)}:{alias}"
            )
        return record

    def referring_to(self, name: str, version: str) -> list[str]:
        """The aliases that route (some) invokes to `version`."""
        return [
            record.alias
            for record in self._by_function.get(name, {}).values()
            if record.function_version == version or version in record.weights
        ]

    def list(
        self, raw_name: str, version: str | None, marker: str | None, max_items: str | None
    ) -> dict[str, object]:
        limit = page_size(max_items)
        name, _ = split_qualifier(raw_name)
        self.versions.control.find(name)
        if version is not None and _VERSION.fullmatch(version) is None:
            raise _validation([_violation(version, "functionVersion", _pattern(VERSION_PATTERN))])
        records = list(self._by_function.get(name, {}).values())
        if version is not None:
            records = [r for r in records if r.function_version == version or version in r.weights]
        page, next_marker = page_after(records, _alias_name, marker, limit)
        body: dict[str, object] = {"Aliases": [self.render(record) for record in page]}
        if next_marker is not None:
            body["NextMarker"] = next_marker
        return body

    def render(self, record: StoredAlias) -> dict[str, object]:
        body: dict[str, object] = {
            "AliasArn": f"{self.state.function_arn(record.name)}:{record.alias}",
            "Name": record.alias,
            "FunctionVersion": record.function_version,
            "Description": record.description,
            "RevisionId": record.revision_id,
        }
        if record.weights:
            body["RoutingConfig"] = {"AdditionalVersionWeights": dict(record.weights)}
        return body

    # -- mutations

    async def create(self, raw_name: str, body: dict[str, object]) -> StoredAlias:
        name, _ = split_qualifier(raw_name)
        alias = body.get("Name")
        version = body.get("FunctionVersion")
        problems = _alias_problems(alias, "name") + _version_problems(version)
        problems += _description_problems(body.get("Description", ""))
        weights = _weights(body.get("RoutingConfig"), problems)
        if problems:
            raise _validation(problems)
        assert isinstance(alias, str) and isinstance(version, str)
        async with self.versions._lock:
            self.versions.control._writable(name)
            if self.get_or_none(name, alias) is not None:
                raise ServiceError(
                    409, RESOURCE_CONFLICT, f"Alias already exists: {self.state.function_arn(name)}:{alias}"
                )
            self._check_routing(name, version, weights)
            record = StoredAlias(
                name, alias, version, str(body.get("Description", "")), weights, str(uuid.uuid4())
            )
            await self._commit(record)
            return record

    async def update(self, raw_name: str, alias: str, body: dict[str, object]) -> StoredAlias:
        name, _ = split_qualifier(raw_name)
        version = body.get("FunctionVersion")
        problems = _alias_problems(alias, "name")
        if version is not None:
            problems += _version_problems(version)
        if "Description" in body:
            problems += _description_problems(body["Description"])
        routing = body.get("RoutingConfig")
        weights = _weights(routing, problems) if routing is not None else None
        if problems:
            raise _validation(problems)
        async with self.versions._lock:
            self.versions.control._writable(name)
            current = self.get(name, alias)
            revision = body.get("RevisionId")
            if revision is not None and revision != current.revision_id:
                raise errors.stale_revision(revision, current.revision_id)
            new_version = version if isinstance(version, str) else current.function_version
            new_weights = weights if weights is not None else current.weights
            self._check_routing(name, new_version, new_weights)
            description = body.get("Description", current.description)
            record = StoredAlias(name, alias, new_version, str(description), new_weights, str(uuid.uuid4()))
            await self._commit(record)
            return record

    async def delete(self, raw_name: str, alias: str) -> None:
        name, _ = split_qualifier(raw_name)
        problems = _alias_problems(alias, "name")
        if problems:
            raise _validation(problems)
        async with self.versions._lock:
            self.versions.control._writable(name)
            self.get(name, alias)
            self.versions.store.delete_alias(name, alias)
            del self._by_function[name][alias]
            self.versions.provisioned.forget(name, alias)
            await self.versions.provisioned.rebalance(name)
            await settings.forget_qualified(self.versions.control, name, alias)

    def forget(self, name: str) -> None:
        self._by_function.pop(name, None)

    # -- steps

    def _check_routing(self, name: str, version: str, weights: dict[str, float]) -> None:
        if not self.versions.exists(name, version):
            raise not_found(f"{self.state.function_arn(name)}:{version}")
        if not weights:
            return
        if version == LATEST:
            raise _invalid(
                "RoutingConfig: $LATEST is not supported for an alias pointing to more than 1 version"
            )
        (additional,) = weights
        if additional == version:
            raise _invalid(
                f"RoutingConfig: invalid function version {additional}: function version {additional} is "
                "already included in the routing configuration (it is the alias's FunctionVersion)"
            )
        if not self.versions.exists(name, additional):
            raise not_found(f"{self.state.function_arn(name)}:{additional}")

    async def _commit(self, record: StoredAlias) -> None:
        self.versions.store.put_alias(record)
        self._by_function.setdefault(record.name, {})[record.alias] = record
        await self.versions.provisioned.rebalance(record.name)


def _pattern(pattern: str) -> str:
    return f"satisfy regular expression pattern: {pattern}"


def _alias_problems(alias: object, member: str) -> list[str]:
    if not isinstance(alias, str) or not alias:
        return [_violation(alias or "", member, "have length greater than or equal to 1")]
    if _ALIAS.fullmatch(alias) is None:
        return [_violation(alias, member, _pattern(ALIAS_PATTERN))]
    if len(alias) > ALIAS_MAX:
        return [_violation(alias, member, f"have length less than or equal to {ALIAS_MAX}")]
    return []


def _version_problems(version: object) -> list[str]:
    if not isinstance(version, str) or not version:
        return [_violation(version or "", "functionVersion", "have length greater than or equal to 1")]
    if _VERSION.fullmatch(version) is None:
        return [_violation(version, "functionVersion", _pattern(VERSION_PATTERN))]
    return []


def _description_problems(description: object) -> list[str]:
    if not isinstance(description, str):
        return [_violation(description, "description", "be a string")]
    if len(description) > DESCRIPTION_MAX:
        return [_violation("...", "description", f"have length less than or equal to {DESCRIPTION_MAX}")]
    return []


def _weights(routing: object, problems: list[str]) -> dict[str, float]:
    """RoutingConfig.AdditionalVersionWeights: at most one version (a number), its weight 0.0..1.0.
    Problems of form go to `problems` (the request validation's); the semantics are checked later."""
    if routing is None:
        return {}
    member = "routingConfig.additionalVersionWeights"
    if not isinstance(routing, dict):
        problems.append(_violation(routing, "routingConfig", "be an object"))
        return {}
    weights = routing.get("AdditionalVersionWeights") or {}
    if not isinstance(weights, dict):
        problems.append(_violation(weights, member, "be a map of version to weight"))
        return {}
    checked: dict[str, float] = {}
    for version, weight in weights.items():
        if _ADDITIONAL_VERSION.fullmatch(version) is None:
            problems.append(
                f"Value '{version}' at '{member}' failed to satisfy constraint: Map keys must satisfy "
                f"constraint: [Member must {_pattern(ADDITIONAL_VERSION_PATTERN)}]"
            )
        elif isinstance(weight, bool) or not isinstance(weight, int | float) or not 0.0 <= weight <= 1.0:
            problems.append(
                f"Value '{{{version}={weight}}}' at '{member}' failed to satisfy constraint: Map value must "
                "satisfy constraint: [Member must have value less than or equal to 1.0, Member must have "
                "value greater than or equal to 0.0]"
            )
        else:
            checked[version] = float(weight)
    if len(weights) > 1 and not problems:
        raise _invalid(
            f"RoutingConfig.AdditionalVersionWeights: {len(weights)} versions given; an alias routes to "
            "one additional version at most"
        )
    return checked


def _alias_name(record: StoredAlias) -> str:
    return record.alias
