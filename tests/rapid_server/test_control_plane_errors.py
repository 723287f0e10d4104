"""The control plane's refusals: the service's error type, a message naming the field, and nothing
changed (no function added or altered, no code file left behind)."""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rapidboot.rapid_server.config import ServerConfig, validate_function
from rapidboot.rapid_server.control_plane import code_limits
from rapidboot.rapid_server.control_plane.functions import ControlPlane
from rapidboot.rapid_server.control_plane.store import FunctionStore
from rapidboot.rapid_server.data_plane.limits import LimitsFactory
from rapidboot.rapid_server.data_plane.logs import LogSink
from rapidboot.rapid_server.errors import ServiceError
from rapidboot.rapid_server.server_state import ServerState


def zipped(source: str = "def handler(event, context):\n    return 1\n") -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return base64.b64encode(buffer.getvalue()).decode()


def create_body(name: str = "made", **overrides: Any) -> dict[str, object]:
    body: dict[str, object] = {"FunctionName": name, "Runtime": "python3.12", "Handler": "app.handler"}
    body["Code"] = {"ZipFile": zipped()}
    body.update(overrides)
    return body


Scenario = Callable[[ControlPlane], Awaitable[None]]


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Callable[[Scenario], None]]:
    """Run a scenario against a control plane over a real ServerState with one configured function."""
    limits = LimitsFactory(None, tmp_path / "scratch")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text("def handler(event, context):\n    return 1\n")
    configured = validate_function("configured", "configured", tmp_path / "code", "app.handler")

    def runner(scenario: Scenario) -> None:
        async def main() -> None:
            config = ServerConfig({"configured": configured}, state_dir=tmp_path / "state")
            state = ServerState(config, LogSink(io.BytesIO()), print, limits)
            control = ControlPlane(state, FunctionStore(tmp_path / "state" / "functions"))
            try:
                async with asyncio.timeout(20):
                    await scenario(control)
            finally:
                await state.stop_functions()
                control.close()

        asyncio.run(main())

    yield runner
    limits.close()


async def refused(call: Awaitable[object], code: str, words: str) -> None:
    with pytest.raises(ServiceError) as caught:
        await call
    assert (caught.value.code, words in caught.value.message) == (code, True), caught.value.message


def unchanged(control: ControlPlane, names: list[str], code_files: int) -> None:
    assert sorted(control.state.functions) == names
    assert len(list(control.store.code_dir.iterdir())) == code_files


def test_bad_packages_and_settings_are_refused_naming_the_field(run: Callable[[Scenario], None]) -> None:
    async def scenario(control: ControlPlane) -> None:
        invalid = "InvalidParameterValueException"
        s3 = {"S3Bucket": "bucket", "S3Key": "key"}
        await refused(control.create(create_body(Code=s3)), invalid, "Code.S3Bucket")
        await refused(control.create(create_body(Code={"ZipFile": "bm90IGEgemlw"})), invalid, "Code.ZipFile")
        await refused(control.create(create_body(Code={"ZipFile": "***"})), invalid, "base64")
        await refused(control.create(create_body(MemorySize=64)), invalid, "MemorySize")
        await refused(control.create(create_body(Timeout=901)), invalid, "Timeout")
        await refused(control.create(create_body(Runtime="nodejs22.x")), invalid, "Runtime")
        await refused(
            control.create(create_body(Environment={"Variables": {"AWS_REGION": "x"}})),
            invalid,
            "Environment.Variables",
        )
        await refused(
            control.create(create_body(Code={"RapidbootDirectory": "relative"})), invalid, "absolute"
        )
        unchanged(control, ["configured"], 0)

    run(scenario)


def test_a_package_over_50_mb_zipped_is_a_request_too_large(
    run: Callable[[Scenario], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(code_limits, "MAX_ZIPPED_BYTES", 100)  # the real 50 MB, scaled down

    async def scenario(control: ControlPlane) -> None:
        await refused(control.create(create_body()), "RequestEntityTooLargeException", "CreateFunction")
        await refused(control.create(create_body()), "RequestEntityTooLargeException", "Code.ZipFile")
        unchanged(control, ["configured"], 0)

    run(scenario)


def test_conflicts_not_found_and_read_only(run: Callable[[Scenario], None]) -> None:
    async def scenario(control: ControlPlane) -> None:
        conflict = "ResourceConflictException"
        _, _, made = await control.create(create_body())
        await refused(control.create(create_body()), conflict, "made")
        await refused(
            control.update("made", {"MemorySize": 256, "RevisionId": "stale"}, code=False),
            "PreconditionFailedException",
            "RevisionId",
        )
        await refused(control.update("configured", {"MemorySize": 256}, code=False), conflict, "read-only")
        await refused(control.delete("configured"), conflict, "read-only")
        await refused(control.delete("nothing"), "ResourceNotFoundException", "nothing")
        await refused(
            control.update("made", {"ZipFile": "bm90IGEgemlw"}, code=True),
            "InvalidParameterValueException",
            "Code.ZipFile",
        )
        unchanged(control, ["configured", "made"], 1)
        assert control.store.get("made") == made
        assert control.state.functions["made"].config.memory_mb == 128
        _, updated = await control.update(
            "made", {"MemorySize": 256, "RevisionId": made.revision_id}, code=False
        )
        assert updated.revision_id != made.revision_id
        assert control.state.functions["made"].config.memory_mb == 256

    run(scenario)


def test_a_reload_of_the_definition_keeps_what_the_api_created(
    run: Callable[[Scenario], None], tmp_path: Path
) -> None:
    """`serve --watch`: the definition file changing must not remove the functions the API created."""
    from rapidboot.rapid_server.config import Definition, DefinitionSource
    from rapidboot.rapid_server.reload import Reloader, Targets

    toml = tmp_path / "rapidboot.toml"
    toml.write_text("")

    async def scenario(control: ControlPlane) -> None:
        await control.create(create_body())
        configured = control.state.functions["configured"].config
        source = DefinitionSource(toml, lambda: Definition({"configured": configured}))
        reloader = Reloader(control.state, source, lambda line: None)
        targets = Targets.of(control.state, source)
        assert targets.definition is not None
        await reloader.reload({targets.definition}, targets)
        assert sorted(control.state.functions) == ["configured", "made"]

    run(scenario)
