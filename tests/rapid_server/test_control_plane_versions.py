"""Versions, aliases and provisioned concurrency in process: what they render is botocore's model (every
member in the model's shape), the alias pick follows its weights, and the routing refusals are the
service's (validation first, then semantics) and change nothing."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from test_control_plane_errors import create_body, zipped
from test_control_plane_shapes import MODEL, conforms

from rapidboot.rapid_server import errors
from rapidboot.rapid_server.config import ServerConfig
from rapidboot.rapid_server.control_plane.functions import ControlPlane
from rapidboot.rapid_server.control_plane.store import FunctionStore
from rapidboot.rapid_server.data_plane.limits import LimitsFactory
from rapidboot.rapid_server.data_plane.logs import LogSink
from rapidboot.rapid_server.errors import ServiceError
from rapidboot.rapid_server.server_state import ServerState

Scenario = Callable[[ControlPlane], Awaitable[None]]


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[[Scenario], None]]:
    """A scenario against a control plane over a real ServerState, with function `f` created (its code
    version 1 published as version 1, then code changed and published as version 2)."""
    limits = LimitsFactory(None, tmp_path / "scratch")

    def runner(scenario: Scenario) -> None:
        async def main() -> None:
            config = ServerConfig({}, state_dir=tmp_path / "state")
            state = ServerState(config, LogSink(io.BytesIO()), print, limits)
            control = ControlPlane(state, FunctionStore(tmp_path / "state" / "functions"))
            try:
                async with asyncio.timeout(20):
                    await control.versions.start()
                    if "f" not in state.functions:
                        await control.create(create_body("f"))
                        await control.versions.publish("f", {})
                        source = "def handler(event, context):\n    return 2\n"
                        await control.update("f", {"ZipFile": zipped(source)}, code=True)
                        await control.versions.publish("f", {})
                    await scenario(control)
            finally:
                await asyncio.gather(state.stop_functions(), control.versions.stop())
                control.store.close()

        asyncio.run(main())

    yield runner
    limits.close()


def output_shape(operation: str) -> str:
    shape: str = MODEL["operations"][operation]["output"]["shape"]
    return shape


def test_what_versions_aliases_and_provisioning_render_is_the_models(run: Callable[[Scenario], None]) -> None:
    async def scenario(control: ControlPlane) -> None:
        versions = control.versions
        conforms(
            versions.render(versions._records["f"]["1"]), output_shape("PublishVersion"), "PublishVersion"
        )
        conforms(versions.list("f", None, None), output_shape("ListVersionsByFunction"), "ListVersions")
        conforms(versions.get_function("f:1", None), output_shape("GetFunction"), "GetFunction")
        body = {
            "Name": "live",
            "FunctionVersion": "1",
            "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.5}},
        }
        alias = versions.aliases.render(await versions.aliases.create("f", body))
        conforms(alias, output_shape("CreateAlias"), "CreateAlias")
        conforms(versions.aliases.list("f", None, None, None), output_shape("ListAliases"), "ListAliases")
        setting = await versions.provisioned.put("f", "live", {"ProvisionedConcurrentExecutions": 1})
        conforms(versions.provisioned.render(setting), output_shape("PutProvisionedConcurrencyConfig"), "Put")
        listed = versions.provisioned.list("f", None, None)
        conforms(listed, output_shape("ListProvisionedConcurrencyConfigs"), "ListProvisioned")
        assert listed["ProvisionedConcurrencyConfigs"][0]["FunctionArn"].endswith(":f:live")  # type: ignore[index]

    run(scenario)


def test_an_alias_pick_follows_its_weight(run: Callable[[Scenario], None]) -> None:
    async def scenario(control: ControlPlane) -> None:
        aliases = control.versions.aliases
        for name, weight in (("never", 0.0), ("always", 1.0)):
            routing = {"AdditionalVersionWeights": {"2": weight}}
            await aliases.create("f", {"Name": name, "FunctionVersion": "1", "RoutingConfig": routing})
        assert {aliases.pick("f", "never") for _ in range(100)} == {"1"}
        assert {aliases.pick("f", "always") for _ in range(100)} == {"2"}
        target = control.versions.resolve("f", "always")
        assert target is not None
        assert (target.executed_version, target.invoked_arn) == (
            "2",
            control.state.function_arn("f") + ":always",
        )
        assert target.function.config.version == "2"
        assert control.versions.resolve("f", "missing") is None

    run(scenario)


@pytest.mark.parametrize(
    ("body", "code", "words"),
    [
        ({"Name": "", "FunctionVersion": "1"}, errors.VALIDATION, "at 'name'"),
        ({"Name": "123", "FunctionVersion": "1"}, errors.VALIDATION, "regular expression pattern"),
        ({"Name": "a" * 129, "FunctionVersion": "1"}, errors.VALIDATION, "less than or equal to 128"),
        ({"Name": "a", "FunctionVersion": "one"}, errors.VALIDATION, "at 'functionVersion'"),
        ({"Name": "a", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": -0.1}}},
         errors.VALIDATION, "greater than or equal to 0.0"),
        ({"Name": "a", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"x": 0.1}}},
         errors.VALIDATION, "Map keys"),
        ({"Name": "a", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": "0.1"}}},
         errors.VALIDATION, "Map value"),
        ({"Name": "a", "FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"3": 0.1}}},
         errors.RESOURCE_NOT_FOUND, ":f:3"),
        ({"Name": "a", "FunctionVersion": "3"}, errors.RESOURCE_NOT_FOUND, ":f:3"),
    ],
)  # fmt: skip
def test_bad_aliases_are_refused_and_change_nothing(
    run: Callable[[Scenario], None], body: dict[str, object], code: str, words: str
) -> None:
    async def scenario(control: ControlPlane) -> None:
        with pytest.raises(ServiceError) as caught:
            await control.versions.aliases.create("f", body)
        assert (caught.value.code, words in caught.value.message) == (code, True), caught.value.message
        assert control.versions.aliases.list("f", None, None, None) == {"Aliases": []}
        assert control.versions.store.aliases() == []

    run(scenario)


def test_deleting_the_function_forgets_its_versions_and_aliases(run: Callable[[Scenario], None]) -> None:
    async def scenario(control: ControlPlane) -> None:
        await control.versions.aliases.create("f", {"Name": "live", "FunctionVersion": "2"})
        pool = control.versions.resolve("f", "2")
        assert pool is not None
        await control.delete("f")
        assert control.versions.resolve("f", "2") is None
        assert control.versions.resolve("f", "live") is None
        assert (control.versions.store.versions(), control.versions.store.aliases()) == ([], [])
        assert control.versions.store.next_number("f") == 1
        with pytest.raises(ServiceError) as caught:
            await pool.function.invoke(None)  # type: ignore[arg-type]  # refused before it is looked at
        assert caught.value.code == errors.RESOURCE_NOT_FOUND

    run(scenario)


def test_paging_goes_on_past_a_version_deleted_between_pages(run: Callable[[Scenario], None]) -> None:
    async def scenario(control: ControlPlane) -> None:
        versions = control.versions
        first = versions.list("f", None, "2")
        assert [v["Version"] for v in first["Versions"]] == ["$LATEST", "1"]  # type: ignore[attr-defined]
        everything = versions.list_all(None, "2")
        await versions.delete("f", "1")
        rest = versions.list("f", str(first["NextMarker"]), "2")
        assert [v["Version"] for v in rest["Versions"]] == ["2"] and "NextMarker" not in rest  # type: ignore[attr-defined]
        rest = versions.list_all(str(everything["NextMarker"]), "2")
        assert [v["Version"] for v in rest["Functions"]] == ["2"]  # type: ignore[attr-defined]
        with pytest.raises(ServiceError) as caught:
            versions.list("f", "bogus", None)
        assert caught.value.code == errors.INVALID_PARAMETER_VALUE

    run(scenario)
