"""Provisioned concurrency of a version or an alias: Put/Get/Delete/ListProvisionedConcurrencyConfig(s).

On the data plane it is the `provisioned_concurrency` of the version's pool (function.py: environments
initialised ahead of any invoke, used first, never reaped, replaced when lost). A version's pool holds
what is configured on the version itself plus what is configured on the aliases whose FunctionVersion
it is (a weighted alias's provisioning stays on its main version here). Put answers once the
environments are up, so its Status is READY at once.

As the service, $LATEST is refused (only a published version or an alias), and one version is provisioned
through itself or through its aliases, not both.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

from ..errors import ServiceError
from ..paging import page_after, page_size
from .functions import _invalid
from .version_store import StoredProvisioned
from .versions import LATEST, RESOURCE_CONFLICT, not_found, now, split_qualifier

if TYPE_CHECKING:
    from .versions import Versions

NOT_FOUND = "ProvisionedConcurrencyConfigNotFoundException"


def _no_config() -> ServiceError:
    return ServiceError(404, NOT_FOUND, "No Provisioned Concurrency Config found for this function")


LIST_MAX = 50  # MaxProvisionedConcurrencyConfigListItems


class ProvisionedConcurrency:
    def __init__(self, versions: Versions):
        self.versions = versions
        self.state = versions.state
        self._settings: dict[str, dict[str, StoredProvisioned]] = {}  # function -> qualifier -> setting

    def load(self, served: Collection[str]) -> None:
        for setting in self.versions.store.provisioned():
            if setting.name in served:
                self._settings.setdefault(setting.name, {})[setting.qualifier] = setting

    def count_for(self, name: str, version: str) -> int:
        """The environments version `version`'s pool keeps provisioned."""
        aliases = self.versions.aliases
        total = 0
        for qualifier, setting in self._settings.get(name, {}).items():
            alias = aliases.get_or_none(name, qualifier)
            target = alias.function_version if alias is not None else qualifier
            if target == version:
                total += setting.requested
        return total

    async def rebalance(self, name: str) -> None:
        """Every version's pool to what its settings (and its aliases') now say; ready when this returns."""
        for number in list(self.versions.numbers(name)):
            await self.versions.set_provisioned(name, number, self.count_for(name, number))

    # -- the operations

    async def put(self, raw_name: str, qualifier: str | None, body: dict[str, object]) -> StoredProvisioned:
        name, qualifier = self._target(raw_name, qualifier)
        count = body.get("ProvisionedConcurrentExecutions")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise _invalid(f"ProvisionedConcurrentExecutions: {count!r} must be a whole number, at least 1")
        reserved = self.state.functions[name].config.reserved_concurrency
        if reserved is not None and count > reserved:
            raise _invalid(
                f"ProvisionedConcurrentExecutions: {count} is more than the function's reserved "
                f"concurrency ({reserved})"
            )
        async with self.versions._lock:
            self.versions.control._writable(name)
            version = self._version_of(name, qualifier)
            for other, setting in self._settings.get(name, {}).items():
                alias = self.versions.aliases.get_or_none(name, other)
                if other != qualifier and (alias.function_version if alias else other) == version:
                    raise ServiceError(
                        409,
                        RESOURCE_CONFLICT,
                        f"Version {version} already has provisioned concurrency through {other} "
                        f"({setting.requested}); change or delete that configuration instead",
                    )
            setting = StoredProvisioned(name, qualifier, count, now())
            self.versions.store.put_provisioned(setting)
            self._settings.setdefault(name, {})[qualifier] = setting
            await self.rebalance(name)
            return setting

    def get(self, raw_name: str, qualifier: str | None) -> StoredProvisioned:
        name, qualifier = self._target(raw_name, qualifier)
        setting = self._settings.get(name, {}).get(qualifier)
        if setting is None:
            raise _no_config()
        return setting

    async def delete(self, raw_name: str, qualifier: str | None) -> None:
        name, qualifier = self._target(raw_name, qualifier)
        async with self.versions._lock:
            self.versions.control._writable(name)
            if self._settings.get(name, {}).pop(qualifier, None) is None:
                raise _no_config()
            self.versions.store.delete_provisioned(name, qualifier)
            await self.rebalance(name)

    def list(self, raw_name: str, marker: str | None, max_items: str | None) -> dict[str, object]:
        limit = page_size(max_items, LIST_MAX)
        name, _ = split_qualifier(raw_name)
        self.versions.control.find(name)
        settings = list(self._settings.get(name, {}).values())
        page, next_marker = page_after(settings, _qualifier, marker, limit)
        body: dict[str, object] = {"ProvisionedConcurrencyConfigs": [self.render(s, True) for s in page]}
        if next_marker is not None:
            body["NextMarker"] = next_marker
        return body

    def forget(self, name: str, qualifier: str | None = None) -> None:
        if qualifier is None:
            self._settings.pop(name, None)
        else:
            self._settings.get(name, {}).pop(qualifier, None)

    def render(self, setting: StoredProvisioned, with_arn: bool = False) -> dict[str, object]:
        body: dict[str, object] = {
            "RequestedProvisionedConcurrentExecutions": setting.requested,
            "AvailableProvisionedConcurrentExecutions": setting.requested,
            "AllocatedProvisionedConcurrentExecutions": setting.requested,
            "Status": "READY",
            "LastModified": setting.last_modified,
        }
        if with_arn:
            body["FunctionArn"] = f"{self.state.function_arn(setting.name)}:{setting.qualifier}"
        return body

    # -- steps

    def _target(self, raw_name: str, query_qualifier: str | None) -> tuple[str, str]:
        name, qualifier = split_qualifier(raw_name)
        qualifier = qualifier or query_qualifier or ""
        self.versions.control.find(name)
        if not qualifier:
            raise _invalid("Qualifier: required, a published version or an alias")
        if qualifier == LATEST:
            raise _invalid(
                "Qualifier: provisioned concurrency configs cannot be applied to unpublished function "
                "versions ($LATEST); publish a version or use an alias"
            )
        self._version_of(name, qualifier)
        return name, qualifier

    def _version_of(self, name: str, qualifier: str) -> str:
        alias = self.versions.aliases.get_or_none(name, qualifier)
        version = alias.function_version if alias is not None else qualifier
        if alias is None and not (qualifier.isdigit() and self.versions.exists(name, qualifier)):
            raise not_found(f"{self.state.function_arn(name)}:{qualifier}")
        if version == LATEST:
            raise _invalid(
                f"Qualifier: alias {qualifier} points to $LATEST; provisioned concurrency configs cannot be "
                "applied to unpublished function versions"
            )
        return version


def _qualifier(setting: StoredProvisioned) -> str:
    return setting.qualifier
