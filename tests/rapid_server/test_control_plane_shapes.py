"""What the control plane renders is what botocore's `lambda` model says: every member it sends exists in
the model's shape, with the model's type, so boto3 parses all of it."""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore
import pytest

from rapidboot.rapid_server.config import ServerConfig, validate_function
from rapidboot.rapid_server.control_plane import shapes
from rapidboot.rapid_server.control_plane.store import StoredFunction
from rapidboot.rapid_server.data_plane.limits import LimitsFactory
from rapidboot.rapid_server.data_plane.logs import LogSink
from rapidboot.rapid_server.server_state import ServerState

_TYPES = {
    "string": str,
    "integer": int,
    "long": int,
    "structure": dict,
    "list": list,
    "map": dict,
    "boolean": bool,
    "double": float,  # a weight (AdditionalVersionWeights)
    # ISO 8601 (a provisioned-concurrency config's LastModified) or epoch seconds (an event invoke config's)
    "timestamp": (str, float),
}


def _model() -> dict[str, Any]:
    path = Path(os.path.dirname(botocore.__file__)) / "data" / "lambda" / "2015-03-31" / "service-2.json.gz"
    with gzip.open(path) as file:
        model: dict[str, Any] = json.load(file)
    return model


MODEL = _model()


def conforms(value: object, shape_name: str, where: str) -> None:
    shape = MODEL["shapes"][shape_name]
    assert isinstance(value, _TYPES[shape["type"]]), f"{where}: {value!r} is not a {shape['type']}"
    if shape["type"] == "structure":
        assert isinstance(value, dict)
        for key, member in value.items():
            assert key in shape["members"], f"{where}.{key}: not in botocore's {shape_name}"
            conforms(member, shape["members"][key]["shape"], f"{where}.{key}")
    elif shape["type"] == "string" and "enum" in shape:
        assert value in shape["enum"], f"{where}: {value!r} is not one of {shape['enum']}"
    elif shape["type"] == "list":
        assert isinstance(value, list)
        for item in value:
            conforms(item, shape["member"]["shape"], f"{where}[]")
    elif shape["type"] == "map":
        assert isinstance(value, dict)
        for item in value.values():
            conforms(item, shape["value"]["shape"], f"{where}{{}}")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[ServerState]:
    limits = LimitsFactory(None, tmp_path / "scratch")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text("def handler(event, context):\n    return 1\n")
    function = validate_function("f", "f", tmp_path / "code", "app.handler", environment={"STAGE": "dev"})
    config = ServerConfig({"f": function}, state_dir=tmp_path / "state")
    yield ServerState(config, LogSink(io.BytesIO()), print, limits)
    limits.close()


@pytest.mark.parametrize("status", [shapes.SETTLED, shapes.CREATING, shapes.UPDATING])
def test_function_configuration_matches_the_model(
    state: ServerState, tmp_path: Path, status: dict[str, str]
) -> None:
    stored = StoredFunction(
        "f", {"Runtime": "python3.12"}, tmp_path / "x.zip", "c2hh", 42, "rev", "2026-01-01"
    )
    body = shapes.configuration(state, state.functions["f"], stored, status)
    conforms(body, "FunctionConfiguration", "FunctionConfiguration")
    assert (body["CodeSize"], body["CodeSha256"], body["RevisionId"]) == (42, "c2hh", "rev")
    op = MODEL["operations"]["CreateFunction"]
    assert op["output"]["shape"] == "FunctionConfiguration"


def test_get_function_matches_the_model(state: ServerState) -> None:
    body = shapes.get_function(state, state.functions["f"], None)
    conforms(body, "GetFunctionResponse", "GetFunctionResponse")
    assert "RevisionId" not in body["Configuration"]  # type: ignore[operator]  # configured: read-only
