"""The runtime layer on a managed Python runtime, as Lambda would run it (reference section 4, exec wrapper).

The layer is unzipped into an empty directory that stands for /opt. The managed runtime's bootstrap, with
AWS_LAMBDA_EXEC_WRAPPER set, execs `<wrapper> <python> <its bootstrap.py>`; we do the same, with a Python
that runs isolated and without `site` (`-I -S`: no site-packages, so no rapidboot installed anywhere), so
the function can only be served by what the layer carries.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fake_runtime_api import FakeEvent, FakeRuntimeAPI
from runtime_harness import write

from rapidboot.layers.package import WRAPPER_NAME, build_layer

APP = """
import os, sys

def handler(event, context):
    runtime = sys.modules["_rapidboot_runtime"]
    return {
        "event": event,
        "runtime_file": runtime.__file__,
        "orig_argv": sys.orig_argv,
        "isolated": sys.flags.isolated,
        "no_site": sys.flags.no_site,
        "site_loaded": "site" in sys.modules,
        "wrapper_variable": os.environ.get("AWS_LAMBDA_EXEC_WRAPPER"),
        "mark": os.environ.get("_RAPIDBOOT_EXEC_WRAPPED"),
        "layerlib": __import__("layerlib").WHERE,
    }
"""


def unzip_like_lambda(archive_path: Path, target: Path) -> None:
    """Extract with the members' Unix modes (zipfile's extractall drops them; Lambda's unzip keeps them)."""
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            extracted = Path(archive.extract(info, target))
            extracted.chmod((info.external_attr >> 16) & 0o777)


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def layer_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_layer(tmp_path_factory.mktemp("layer") / "rapidboot-layer.zip").path


def test_the_wrapper_runs_the_layers_runtime_with_the_managed_interpreter(
    tmp_path: Path, task_root: Path, layer_zip: Path
) -> None:
    opt = tmp_path / "opt"
    opt.mkdir()
    unzip_like_lambda(layer_zip, opt)
    # Another layer's package in <opt>/python: the layer's runtime puts it on sys.path, as on Lambda.
    write(opt, {"python/layerlib.py": "WHERE = 'another layer'\n"})
    write(task_root, {"app.py": APP})
    before = snapshot(opt / "rapidboot")

    # The managed runtime's interpreter, reduced to the standard library.
    python = tmp_path / "lang" / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" -I -S "$@"\n')
    python.chmod(0o755)
    # The managed runtime's own bootstrap: the wrapper must not run it.
    managed_bootstrap = tmp_path / "runtime" / "bootstrap.py"
    write(managed_bootstrap.parent, {"bootstrap.py": f"open({str(tmp_path / 'managed-ran')!r}, 'w')\n"})

    with FakeRuntimeAPI([FakeEvent({"via": "layer"}, request_id="r1")]) as api:
        env = {
            "PATH": "/usr/bin:/bin",
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "_HANDLER": "app.handler",
            "LAMBDA_TASK_ROOT": str(task_root),
            "AWS_LAMBDA_FUNCTION_NAME": "f",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_EXEC_WRAPPER": f"/opt/{WRAPPER_NAME}",  # the function's configuration on Lambda
            "RAPIDBOOT_OPT_DIR": str(opt),  # this directory is /opt
        }
        done = subprocess.run(
            [str(opt / WRAPPER_NAME), str(python), str(managed_bootstrap)],
            env=env,
            cwd=task_root,
            capture_output=True,
            timeout=30,
        )
        responses = api.posts("/response")
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 1, stderr  # the fake API closes /next after the one event
    assert len(responses) == 1, f"{api.requests}\n{stderr}"
    result = responses[0].json()
    assert result["event"] == {"via": "layer"}
    assert result["runtime_file"] == str(opt / "rapidboot" / "runtime" / "__init__.py")
    # The interpreter the managed runtime passed, with its flags, running the layer's bootstrap.
    assert result["orig_argv"] == [sys.executable, "-I", "-S", str(opt / "rapidboot" / "bootstrap")]
    assert (result["isolated"], result["no_site"], result["site_loaded"]) == (1, 1, False)
    assert result["wrapper_variable"] == f"/opt/{WRAPPER_NAME}"  # still visible to the function
    assert result["mark"] is None  # consumed: a runtime the function spawns would wrap again
    assert result["layerlib"] == "another layer"
    assert not (tmp_path / "managed-ran").exists()
    # The layer's .pyc files were used as they are (a rejected one would have been rewritten).
    assert snapshot(opt / "rapidboot") == before


def test_the_wrapper_needs_the_interpreter(tmp_path: Path, layer_zip: Path) -> None:
    opt = tmp_path / "opt"
    opt.mkdir()
    unzip_like_lambda(layer_zip, opt)
    done = subprocess.run(
        [str(opt / WRAPPER_NAME)], env={"PATH": os.defpath}, capture_output=True, text=True, timeout=30
    )
    assert done.returncode != 0
    assert "usage: rapidboot-wrapper PYTHON" in done.stderr
