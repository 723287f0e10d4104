"""The runtime layer through our server: the very zip and variable a function would get on AWS Lambda.

`rapidboot serve --layer rapidboot-layer.zip --env AWS_LAMBDA_EXEC_WRAPPER=/opt/rapidboot-wrapper`: the
server merges the layer into the function's /opt (a directory under --state-dir), the default runtime
execs the wrapper as the managed runtime does, and the wrapper runs the layer's own copy of the runtime.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from e2e_harness import lambda_client, running_server

from rapidboot.layers.package import WRAPPER_NAME, build_layer

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]

APP = """
import os, sys

def handler(event, context):
    return {
        "event": event,
        "runtime_file": sys.modules["_rapidboot_runtime"].__file__,
        "orig_argv": sys.orig_argv,
        "wrapper_variable": os.environ.get("AWS_LAMBDA_EXEC_WRAPPER"),
        "opt": os.environ.get("RAPIDBOOT_OPT_DIR"),
    }
"""


def test_a_function_with_the_layer_and_the_variable_runs_the_layers_runtime(tmp_path: Path) -> None:
    layer = build_layer(tmp_path / "rapidboot-layer.zip").path
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(APP)
    state = tmp_path / "state"
    args = [
        "--code",
        str(code),
        "--handler",
        "app.handler",
        "--layer",
        str(layer),
        "--env",
        f"AWS_LAMBDA_EXEC_WRAPPER=/opt/{WRAPPER_NAME}",
        "--state-dir",
        str(state),
    ]
    with running_server(args, cwd=tmp_path) as server:
        response = lambda_client(server.endpoint).invoke(FunctionName="function", Payload=b'{"n": 1}')
        assert response["StatusCode"] == 200 and "FunctionError" not in response, server.output_tail()
        result = json.loads(response["Payload"].read())
        opt = Path(result["opt"])
        assert opt.is_relative_to(state)  # the merged layer, where /opt is on Lambda
        assert result["event"] == {"n": 1}
        assert result["runtime_file"] == str(opt / "rapidboot" / "runtime" / "__init__.py")
        assert result["orig_argv"] == [sys.executable, str(opt / "rapidboot" / "bootstrap")]
        assert result["wrapper_variable"] == f"/opt/{WRAPPER_NAME}"
        assert str(REPO) not in result["runtime_file"]
        # Warm: the second invoke is answered by the same runtime process, still the layer's.
        runtimes = server.runtime_processes("function")
        assert len(runtimes) == 1 and "rapidboot/bootstrap" in runtimes[0].cmdline
        second = server.invoke("function", {"n": 2})
        assert second.json()["event"] == {"n": 2}
        assert server.runtime_processes("function") == runtimes


# README's `bootstrap` for provided.al2023: an interpreter from a layer, our runtime from the rapidboot layer.
PROVIDED_BOOTSTRAP = """#!/bin/sh
opt="${RAPIDBOOT_OPT_DIR:-/opt}"     # our server merges layers elsewhere and says where
exec "$opt/python3.12/bin/python3.12" "$opt/rapidboot/bootstrap"
"""


def test_a_provided_runtime_runs_the_layers_runtime_with_an_interpreter_from_a_layer(tmp_path: Path) -> None:
    layer = build_layer(tmp_path / "rapidboot-layer.zip").path
    interpreter_layer = tmp_path / "interpreter"
    shim = interpreter_layer / "python3.12" / "bin" / "python3.12"
    shim.parent.mkdir(parents=True)
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # stands for a Python built for AL2023
    shim.chmod(0o755)
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(APP)
    (code / "bootstrap").write_text(PROVIDED_BOOTSTRAP)
    (code / "bootstrap").chmod(0o755)
    args = ["--code", str(code), "--handler", "app.handler", "--runtime", "provided"]
    args += ["--layer", str(interpreter_layer), "--layer", str(layer), "--state-dir", str(tmp_path / "state")]
    with running_server(args, cwd=tmp_path) as server:
        response = server.invoke("function", {"n": 3})
        assert response.status_code == 200, server.output_tail()
        assert "X-Amz-Function-Error" not in response.headers, response.text
        result = response.json()
        opt = Path(result["opt"])
        assert result["event"] == {"n": 3}
        assert result["runtime_file"] == str(opt / "rapidboot" / "runtime" / "__init__.py")
        assert result["orig_argv"] == [sys.executable, str(opt / "rapidboot" / "bootstrap")]
