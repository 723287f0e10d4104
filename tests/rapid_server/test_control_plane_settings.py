"""The control plane's layers, concurrency, tags and event invoke configs: the service's limits and
errors, each refusal naming its field, and a refused call changing nothing (no function, setting, layer
version or stored file)."""

from __future__ import annotations

import base64
import dataclasses
import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from test_control_plane_errors import Scenario, create_body, refused, run, zipped
from test_control_plane_shapes import MODEL, conforms

from rapidboot.layers import Limits
from rapidboot.rapid_server.control_plane import code_limits
from rapidboot.rapid_server.control_plane.functions import ControlPlane

__all__ = ["run"]  # the fixture, shared with the function operations' tests

INVALID = "InvalidParameterValueException"


def sized_zip(name: str, size: int) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, b"#" * size)
    return base64.b64encode(buffer.getvalue()).decode()


def layer_body(size: int = 10) -> dict[str, object]:
    return {"Content": {"ZipFile": sized_zip("python/mod.py", size)}}


def stored_files(control: ControlPlane) -> int:
    return len(list(control.store.code_dir.iterdir()))


@pytest.fixture
def small_unzipped_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's 250 MB for code and layers together, scaled down to 1,000 bytes."""
    small = Limits(max_unzipped_bytes=1000)
    monkeypatch.setattr("rapidboot.layers.function.Limits", lambda: small)
    monkeypatch.setattr("rapidboot.rapid_server.control_plane.layers.Limits", lambda: small)


def test_code_and_layers_together_over_the_unzipped_limit_are_refused(
    run: Callable[[Scenario], None], small_unzipped_limit: None
) -> None:
    async def scenario(control: ControlPlane) -> None:
        layer = await control.layers.publish("deps", layer_body(600))
        files = stored_files(control)
        await refused(
            control.layers.publish("big", layer_body(1500)), INVALID, "Unzipped size must be smaller"
        )
        await refused(control.layers.publish("big", layer_body(1500)), INVALID, "Content.ZipFile")
        assert control.layers.store.versions("big") == [] and stored_files(control) == files

        both = create_body(Code={"ZipFile": sized_zip("app.py", 600)}, Layers=[layer["LayerVersionArn"]])
        await refused(control.create(both), INVALID, f"layer {layer['LayerVersionArn']}")
        assert sorted(control.state.functions) == ["configured"] and stored_files(control) == files

        _, _, made = await control.create(create_body(Code={"ZipFile": sized_zip("app.py", 600)}))
        add_layer = {"Layers": [layer["LayerVersionArn"]]}
        await refused(control.update("made", add_layer, code=False), INVALID, "Unzipped size must be smaller")
        assert control.store.get("made") == made
        assert control.state.functions["made"].config.layers == ()

    run(scenario)


def test_the_code_storage_limit_and_the_request_size_are_the_services_errors(
    run: Callable[[Scenario], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(control: ControlPlane) -> None:
        await control.create(create_body())
        used = code_limits.stored_code_size(control)
        monkeypatch.setattr(code_limits, "TOTAL_CODE_SIZE", used + 50)  # the real 75 GB, scaled down
        files = stored_files(control)
        storage = "CodeStorageExceededException"
        await refused(control.create(create_body("second")), storage, "Code storage limit exceeded")
        await refused(control.layers.publish("deps", layer_body()), storage, "TotalCodeSize")
        await refused(control.update("made", {"ZipFile": zipped("x = 1")}, code=True), storage, "storage")
        assert sorted(control.state.functions) == ["configured", "made"]
        assert stored_files(control) == files and control.layers.store.versions() == []

        monkeypatch.setattr(code_limits, "MAX_ZIPPED_BYTES", 100)  # the real 50 MB, scaled down
        too_large = "RequestEntityTooLargeException"
        await refused(
            control.layers.publish("deps", layer_body()), too_large, "PublishLayerVersion operation"
        )
        await refused(
            control.update("made", {"ZipFile": zipped()}, code=True), too_large, "UpdateFunctionCode"
        )
        assert stored_files(control) == files

    run(scenario)


def test_layer_references_are_checked_naming_the_arn(run: Callable[[Scenario], None]) -> None:
    async def scenario(control: ControlPlane) -> None:
        arns = [
            str((await control.layers.publish(f"l{i}", layer_body()))["LayerVersionArn"]) for i in range(6)
        ]
        missing = arns[0][: -len(":1")] + ":9"
        await refused(control.create(create_body(Layers=[missing])), INVALID, f"Layer version {missing} does")
        await refused(control.create(create_body(Layers=arns)), INVALID, "more than 5 layers")
        twice = [arns[0], arns[0]]
        await refused(control.create(create_body(Layers=twice)), INVALID, "versions of the same layer")
        other = arns[0].replace("123456789012", "210987654321")
        await refused(control.create(create_body(Layers=[other])), INVALID, "PublishLayerVersion")
        await refused(control.create(create_body(Layers="arn")), INVALID, "Layers: must be a list")
        assert sorted(control.state.functions) == ["configured"]

    run(scenario)


def test_refused_settings_change_nothing(run: Callable[[Scenario], None], tmp_path: Path) -> None:
    from rapidboot.rapid_server.control_plane import settings

    arn = "arn:aws:lambda:us-east-1:123456789012:function:made"

    async def scenario(control: ControlPlane) -> None:
        _, _, made = await control.create(create_body(Tags={"team": "a"}))
        await refused(
            settings.put_concurrency(control, "made", {"ReservedConcurrentExecutions": 901}),
            INVALID,
            "below its minimum value of [100]",
        )
        await settings.put_concurrency(control, "made", {"ReservedConcurrentExecutions": 900})
        control.state.config = dataclasses.replace(control.state.config, max_concurrency=950)  # now short
        await refused(
            settings.put_concurrency(control, "made", {"ReservedConcurrentExecutions": 901}), INVALID, "[95]"
        )
        await settings.put_concurrency(control, "made", {"ReservedConcurrentExecutions": 899})  # a decrease
        await settings.delete_concurrency(control, "made")
        await refused(
            settings.put_concurrency(control, "made", {"ReservedConcurrentExecutions": -1}),
            INVALID,
            "ReservedConcurrentExecutions",
        )
        await refused(settings.tag(control, arn, {"Tags": {"aws:x": "y"}}), INVALID, "aws: prefix")
        await refused(settings.tag(control, arn, {"Tags": {"bad\n": "y"}}), INVALID, "'\\n'")
        many = {f"k{i}": "v" for i in range(50)}
        await refused(settings.tag(control, arn, {"Tags": many}), INVALID, "more than the 50")
        await refused(settings.untag(control, arn, []), INVALID, "TagKeys")
        for destination, words in (
            ("arn:aws:sqs:us-east-1:123456789012:q", "SQS is not served here"),
            ("arn:aws:lambda:us-east-1:123456789012:function:nothing", "no such function"),
            ("file:relative.jsonl", "absolute path"),
        ):
            body = {"DestinationConfig": {"OnFailure": {"Destination": destination}}}
            await refused(
                settings.put_event_invoke_config(control, "made", None, body, replace=True), INVALID, words
            )
        retries = {"MaximumRetryAttempts": 3}
        await refused(
            settings.put_event_invoke_config(control, "made", None, retries, replace=True), INVALID, "0-2"
        )
        await refused(  # a version that was never published
            settings.put_event_invoke_config(control, "made", "1", {}, replace=True),
            "ResourceNotFoundException",
            "function:made:1",
        )
        await refused(
            settings.put_concurrency(control, "configured", {"ReservedConcurrentExecutions": 1}),
            "ResourceConflictException",
            "read-only",
        )
        assert control.store.get("made") == made
        config = control.state.functions["made"].config
        assert (config.reserved_concurrency, config.on_failure, config.maximum_retry_attempts) == (
            None,
            None,
            2,
        )
        assert settings.list_tags(control, arn) == {"Tags": {"team": "a"}}
        account = settings.account_settings(control)["AccountLimit"]
        assert account == {
            "TotalCodeSize": 80_530_636_800,
            "CodeSizeUnzipped": 262_144_000,
            "CodeSizeZipped": 52_428_800,
            "ConcurrentExecutions": 950,
            "UnreservedConcurrentExecutions": 950,
        }

    run(scenario)


def test_what_is_rendered_matches_the_model(run: Callable[[Scenario], None], tmp_path: Path) -> None:
    """Every operation's answer has only members of botocore's output shape, with the model's types."""
    from rapidboot.rapid_server.control_plane import settings, shapes

    arn = "arn:aws:lambda:us-east-1:123456789012:function:made"

    def output(operation: str, body: object) -> None:
        conforms(body, MODEL["operations"][operation]["output"]["shape"], operation)

    async def scenario(control: ControlPlane) -> None:
        published = await control.layers.publish(
            "deps", {**layer_body(), "CompatibleRuntimes": ["python3.12"], "LicenseInfo": "MIT"}
        )
        output("PublishLayerVersion", published)
        output("GetLayerVersion", control.layers.get("deps", "1"))
        output("GetLayerVersionByArn", control.layers.get_by_arn(str(published["LayerVersionArn"])))
        output("ListLayers", control.layers.list_layers({}))
        output("ListLayerVersions", control.layers.list_versions("deps", {}))
        await control.create(create_body(Layers=[published["LayerVersionArn"]], Tags={"team": "a"}))
        output(
            "PutFunctionConcurrency",
            await settings.put_concurrency(control, "made", {"ReservedConcurrentExecutions": 2}),
        )
        output("GetFunctionConcurrency", settings.get_concurrency(control, "made"))
        output("GetAccountSettings", settings.account_settings(control))
        output("ListTags", settings.list_tags(control, arn))
        body = {"MaximumRetryAttempts": 0, "DestinationConfig": {"OnSuccess": {"Destination": arn}}}
        output(
            "PutFunctionEventInvokeConfig",
            await settings.put_event_invoke_config(control, "made", None, body, True),
        )
        output("GetFunctionEventInvokeConfig", settings.get_event_invoke_config(control, "made", None))
        output("ListFunctionEventInvokeConfigs", settings.list_event_invoke_configs(control, "made", {}))
        got = shapes.get_function(control.state, control.state.functions["made"], control.store.get("made"))
        output("GetFunction", got)
        assert (got["Tags"], got["Concurrency"]) == ({"team": "a"}, {"ReservedConcurrentExecutions": 2})
        assert got["Configuration"]["Layers"] == [
            {"Arn": published["LayerVersionArn"], "CodeSize": published["Content"]["CodeSize"]}
        ]

    run(scenario)
