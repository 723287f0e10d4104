"""Layers, zipped deployment packages and custom (`provided`) runtimes, through a real server.

Each function's /opt is the merge of its layers, seen by the runtime through the variables the service
sets; a `provided` runtime runs the package's own `bootstrap`, from the code first, then the layers.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from e2e_harness import RapidServer, running_server

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]

HANDLER = """\
import os, subprocess, sys
import layerlib  # only a layer provides it


def handler(event, context):
    return {
        "layerlib": layerlib.WHERE,
        "tool": subprocess.run(["greet"], capture_output=True, text=True).stdout.strip(),
        "path_end": os.environ["PATH"].rsplit(":", 1)[-1],
        "ld_end": os.environ["LD_LIBRARY_PATH"].rsplit(":", 1)[-1],
        "task_root": os.environ["LAMBDA_TASK_ROOT"],
        "cwd": os.getcwd(),
        "sys_path": sys.path[:3],
    }
"""


def write_zip(path: Path, members: dict[str, tuple[str, int]]) -> Path:
    """A zip whose members carry Unix modes, as `zip` on Linux writes them."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (content, mode) in members.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, content)
    return path


def python_layer(tmp_path: Path) -> Path:
    python_dir = f"python/lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
    return write_zip(
        tmp_path / "deps.zip",
        {
            f"{python_dir}/layerlib/__init__.py": ("WHERE = 'site-packages layer'\n", 0o644),
            "bin/greet": ("#!/bin/sh\necho hello from a layer\n", 0o755),
        },
    )


def serve(tmp_path: Path, *args: str) -> AbstractContextManager[RapidServer]:
    return running_server([*args, "--state-dir", str(tmp_path / "state")], tmp_path)


def test_a_handler_imports_from_a_layer_and_runs_its_tool(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER)
    layer = python_layer(tmp_path)
    with serve(tmp_path, "--code", str(code), "--handler", "app.handler", "--layer", str(layer)) as server:
        body = server.invoke("function", {}).json()
    assert body["layerlib"] == "site-packages layer"
    assert body["tool"] == "hello from a layer"
    opt = Path(body["path_end"]).parent
    assert body["path_end"] == str(opt / "bin")  # PATH ends with <opt>/bin, as /opt/bin ends Lambda's
    assert body["ld_end"] == str(opt / "lib")
    assert body["task_root"] == body["cwd"] == str(code)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert body["sys_path"] == [
        str(code),
        str(opt / "python/lib" / version / "site-packages"),
        str(opt / "python"),
    ]


def test_later_layers_win_and_the_merge_is_cached(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("import layerlib\ndef handler(e, c):\n    return layerlib.WHERE\n")
    first = write_zip(tmp_path / "a.zip", {"python/layerlib/__init__.py": ("WHERE = 'a'\n", 0o644)})
    second = tmp_path / "b"
    (second / "python/layerlib").mkdir(parents=True)
    (second / "python/layerlib/__init__.py").write_text("WHERE = 'b'\n")
    args = ["--code", str(code), "--handler", "app.handler", "--layer", str(first), "--layer", str(second)]
    with serve(tmp_path, *args) as server:
        assert server.invoke("function", {}).json() == "b"
    cached = sorted(p.name for p in (tmp_path / "state" / "layers").iterdir())
    with serve(tmp_path, *args) as server:
        assert server.invoke("function", {}).json() == "b"
    assert sorted(p.name for p in (tmp_path / "state" / "layers").iterdir()) == cached  # reused, not rebuilt


def test_code_from_a_zip(tmp_path: Path) -> None:
    package = write_zip(
        tmp_path / "function.zip", {"app.py": ("def handler(e, c):\n    return 'zipped'\n", 0o644)}
    )
    with serve(tmp_path, "--code", str(package), "--handler", "app.handler") as server:
        response = server.invoke("function", {})
        assert response.json() == "zipped"
        listed = server._client.get("/2015-03-31/functions/").json()  # type: ignore[union-attr]
    assert listed["Functions"][0]["CodeSize"] > 0


def provided_bootstrap() -> str:
    """A custom runtime's `bootstrap` as a user writes it: a shell script that starts a runtime."""
    return f'#!/bin/sh\nexec "{sys.executable}" "{REPO / "bootstrap"}" "$_HANDLER"\n'


def test_provided_runtime_runs_the_code_bootstrap(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(
        "import os\ndef handler(e, c):\n    return os.environ['AWS_LAMBDA_FUNCTION_NAME']\n"
    )
    bootstrap = code / "bootstrap"
    bootstrap.write_text(provided_bootstrap())
    bootstrap.chmod(0o755)
    with serve(tmp_path, "--code", str(code), "--handler", "app.handler", "--runtime", "provided") as server:
        response = server.invoke("function", {})
        assert response.json() == "function", response.text
        listed = server._client.get("/2015-03-31/functions/").json()  # type: ignore[union-attr]
    assert listed["Functions"][0]["Runtime"] == "provided.al2023"


def test_provided_runtime_from_a_layer_that_ships_bootstrap_and_runtime(tmp_path: Path) -> None:
    """The layer carries our runtime package and a `bootstrap` that runs it: the code is only the handler."""
    layer = tmp_path / "runtime-layer"
    shutil.copytree(
        REPO / "runtime", layer / "rapidboot" / "runtime", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(REPO / "bootstrap", layer / "rapidboot" / "bootstrap")
    (layer / "bootstrap").write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "$(dirname "$0")/rapidboot/bootstrap" "$_HANDLER"\n'
    )
    (layer / "bootstrap").chmod(0o755)
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c):\n    return 'served by the layer runtime'\n")
    args = ["--code", str(code), "--handler", "app.handler", "--runtime", "provided", "--layer", str(layer)]
    with serve(tmp_path, *args) as server:
        response = server.invoke("function", {})
    assert response.json() == "served by the layer runtime", response.text


@pytest.mark.parametrize("problem", ["missing", "not-executable"])
def test_provided_runtime_without_a_usable_bootstrap_is_an_invalid_entrypoint(
    tmp_path: Path, problem: str
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c):\n    return 1\n")
    if problem == "not-executable":
        (code / "bootstrap").write_text(provided_bootstrap())
        (code / "bootstrap").chmod(0o644)
    with serve(tmp_path, "--code", str(code), "--handler", "app.handler", "--runtime", "provided") as server:
        response = server.invoke("function", {})
        assert response.headers["X-Amz-Function-Error"] == "Unhandled"
        body = response.json()
        assert body["errorType"] == "Runtime.InvalidEntrypoint"
        reason = "no such file or directory" if problem == "missing" else "permission denied"
        assert body["errorMessage"] == f"fork/exec {code / 'bootstrap'}: {reason}"
        assert server.wait_for_line(
            lambda line: "Error Type: Runtime.InvalidEntrypoint" in line and "REPORT" in line
        )


def start_failure(tmp_path: Path, *args: str) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rapidboot.rapid_server",
            "serve",
            "--port",
            "0",
            "--state-dir",
            str(tmp_path / "state"),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    return result.stderr


def test_a_hostile_layer_stops_the_server_before_it_starts(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c):\n    return 1\n")
    evil = write_zip(tmp_path / "evil.zip", {"../escape.txt": ("gotcha", 0o644)})
    message = start_failure(tmp_path, "--code", str(code), "--handler", "app.handler", "--layer", str(evil))
    assert "functions.function:" in message
    assert "evil.zip" in message and "../escape.txt" in message
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "state" / "escape.txt").exists()


def test_more_than_five_layers_are_refused(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c):\n    return 1\n")
    args = ["--code", str(code), "--handler", "app.handler"]
    for index in range(6):
        layer = tmp_path / f"layer{index}"
        layer.mkdir()
        args += ["--layer", str(layer)]
    message = start_failure(tmp_path, *args)
    assert "functions.function:" in message
    assert "5" in message


def test_rapidboot_layers_explain(tmp_path: Path) -> None:
    first = write_zip(tmp_path / "a.zip", {"bin/tool": ("#!/bin/sh\n", 0o755), "lib/x.so": ("a", 0o644)})
    second = write_zip(tmp_path / "b.zip", {"bin/tool": ("#!/bin/sh\necho b\n", 0o755)})
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "rapidboot.rapid_server",
            "layers",
            "explain",
            "--json",
            "--cache-dir",
            str(tmp_path / "c"),
            str(first),
            str(second),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    entries = {entry["path"]: entry for entry in report["entries"]}
    assert entries["bin/tool"]["layer"] == 2 and entries["bin/tool"]["overrode"] == [1]
    assert entries["lib/x.so"]["layer"] == 1 and entries["lib/x.so"]["overrode"] == []


def test_code_that_is_not_a_zip_is_refused_at_startup(tmp_path: Path) -> None:
    (tmp_path / "function.zip").write_text("not a zip at all")
    message = start_failure(tmp_path, "--code", str(tmp_path / "function.zip"), "--handler", "app.handler")
    assert "functions.function:" in message
    assert "function.zip" in message
