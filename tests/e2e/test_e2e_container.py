"""examples/container: every Dockerfile builds an image that works, checked without Docker.

Each Dockerfile is parsed; every COPY source must exist in the build context (the repository root), and
what the image would hold is resolved through those COPY lines: the ENTRYPOINT must be our executable
bootstrap, the CMD a handler that names a real function, and the layers merged by `RUN python3 -m
rapidboot.layers merge` real directories. Then the image is run as `docker run` would run it: the same merge
into a directory standing for /opt, the ENTRYPOINT and CMD in the WORKDIR with no Runtime API (emulator mode),
and one invoke over HTTP.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import shlex
import shutil
import string
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
from e2e_harness import RapidServer, server_environment, supervised

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "container"
DOCKERFILES = sorted(EXAMPLES.glob("Dockerfile.*"))
BASE_IMAGES = {"python:3.12-slim", "python:3.12-alpine", "public.ecr.aws/lambda/python:3.12"}


@dataclass
class Image:
    """What a Dockerfile puts where, as far as these examples use the instructions."""

    base: str = ""
    copies: list[tuple[list[str], str]] = field(default_factory=list)  # (context sources, image dest)
    runs: list[list[str]] = field(default_factory=list)  # each `&&`-separated command, split
    workdir: str = "/"
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)

    def context_path(self, image_path: str) -> Path | None:
        """The build-context file or directory that ends up at `image_path`, by the last COPY covering it."""
        wanted = PurePosixPath(image_path)
        for sources, dest in reversed(self.copies):
            for source in sources:
                local = REPO / source
                if local.is_dir() and dest.endswith("/"):
                    root = PurePosixPath(dest)  # a directory's contents go into dest
                elif dest.endswith("/"):
                    root, local = PurePosixPath(dest) / local.name, local
                else:
                    root = PurePosixPath(dest)
                if wanted == root or root in wanted.parents:
                    candidate = local.joinpath(*wanted.relative_to(root).parts)
                    if candidate.exists():
                        return candidate
        return None


def instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments), with comments dropped and `\\` continuations joined."""
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        pending = ""
        yield keyword.upper(), arguments.strip()
    assert not pending, "a continuation runs past the end of the file"


def parse(dockerfile: Path) -> Image:
    image = Image()
    arguments_before_from: dict[str, str] = {}  # ARG NAME=default: what `docker build` uses unless told
    for keyword, arguments in instructions(dockerfile.read_text()):
        if keyword == "ARG" and not image.base:
            name, _, default = arguments.partition("=")
            arguments_before_from[name] = default
        elif keyword == "FROM":
            image.base = string.Template(arguments).substitute(arguments_before_from)
        elif keyword == "COPY":
            *sources, dest = shlex.split(arguments)
            assert sources and not any(s.startswith("--") for s in sources), arguments
            image.copies.append((sources, dest))
        elif keyword == "RUN":
            image.runs += [shlex.split(part) for part in arguments.split("&&")]
        elif keyword == "WORKDIR":
            image.workdir = arguments
        elif keyword in ("ENTRYPOINT", "CMD"):
            value = json.loads(arguments)  # exec form only: no shell between Lambda and the runtime
            assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
            setattr(image, keyword.lower(), value)
        else:
            raise AssertionError(f"{dockerfile.name}: {keyword} is not used by these examples")
    return image


def layer_merges(image: Image) -> list[tuple[str, list[str]]]:
    """(--into, layers) of each `python3 -m rapidboot.layers merge` the Dockerfile runs."""
    merges = []
    for command in image.runs:
        if command[:4] == ["python3", "-m", "rapidboot.layers", "merge"]:
            rest = command[4:]
            into = rest[rest.index("--into") + 1]
            layers = [a for i, a in enumerate(rest) if not a.startswith("--") and rest[i - 1] != "--into"]
            merges.append((into, layers))
    return merges


def test_there_is_one_dockerfile_per_base_image() -> None:
    assert {parse(path).base for path in DOCKERFILES} == BASE_IMAGES


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_names_real_files(dockerfile: Path) -> None:
    image = parse(dockerfile)
    for sources, _ in image.copies:
        for source in sources:
            assert (REPO / source).exists(), f"{dockerfile.name}: COPY {source}: not in the build context"
    # rapidboot itself: installable (pyproject.toml and the packages it names are copied together).
    assert image.context_path("/var/rapidboot/pyproject.toml") == REPO / "pyproject.toml"
    # Every package pyproject.toml names: setuptools refuses to build when one is missing.
    # They are `rapidboot.<folder path>` (package-dir maps `rapidboot` to the root); `rapidboot` itself is a
    # namespace, with no __init__.py.
    for package in tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]:
        folder = package.removeprefix("rapidboot").lstrip(".").replace(".", "/")
        if folder:
            init = f"{folder}/__init__.py"
            where = f"{dockerfile.name}: {package}"
            assert image.context_path(f"/var/rapidboot/{init}") == REPO / init, where
    assert ["pip", "install", "--no-cache-dir", "--root-user-action=ignore", "/var/rapidboot"] in image.runs
    # ENTRYPOINT: our bootstrap, executable, run directly (its `#!` finds python3).
    assert len(image.entrypoint) == 1
    bootstrap = image.context_path(image.entrypoint[0])
    assert bootstrap == REPO / "bootstrap", f"{dockerfile.name}: ENTRYPOINT {image.entrypoint}"
    assert os.access(bootstrap, os.X_OK) and bootstrap.read_text().startswith("#!/usr/bin/env python3\n")
    # CMD: a handler whose module is in the task root and defines that function.
    assert len(image.cmd) == 1
    module, _, function = image.cmd[0].rpartition(".")
    source = image.context_path(f"{image.workdir}/{module.replace('.', '/')}.py")
    assert source is not None, f"{dockerfile.name}: CMD {image.cmd}: no {module}.py in {image.workdir}"
    tree = ast.parse(source.read_text())
    assert function in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    # Layers: merged into /opt from directories the image was given.
    merges = layer_merges(image)
    assert merges and all(into == "/opt" for into, _ in merges)
    for _, layers in merges:
        for layer in layers:
            found = image.context_path(layer)
            assert found is not None and found.is_dir(), f"{dockerfile.name}: layer {layer}"


@contextlib.contextmanager
def running_image(image: Image, root: Path) -> Iterator[RapidServer]:
    """`docker run -p PORT:8080 image`, without Docker: the layers merged, then ENTRYPOINT + CMD."""
    opt = root / "opt"
    for _, layers in layer_merges(image):
        local = [str(image.context_path(layer)) for layer in layers]
        merged = subprocess.run(
            [sys.executable, "-m", "rapidboot.layers", "merge", "--no-limits", "--into", str(opt), *local],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert merged.returncode == 0, merged.stderr
    workdir = image.context_path(image.workdir)
    assert workdir is not None
    task = root / "task"
    shutil.copytree(workdir, task, ignore=shutil.ignore_patterns("__pycache__"))
    entrypoint = image.context_path(image.entrypoint[0])
    env = server_environment()
    env.update({"RAPIDBOOT_HOST": "127.0.0.1", "RAPIDBOOT_PORT": "0", "RAPIDBOOT_OPT_DIR": str(opt)})
    server = RapidServer([], task, env)
    # The image's `python3` is the one the bootstrap's `#!/usr/bin/env python3` finds there; here, ours.
    server.args = [sys.executable, str(entrypoint), *image.cmd]
    with supervised(server):
        yield server


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_the_image_serves_its_function_like_docker_run(dockerfile: Path, tmp_path: Path) -> None:
    image = parse(dockerfile)
    with running_image(image, tmp_path) as server:
        assert "0.0.0.0:8080" in server.stderr.lines[0]  # the log line says where `docker run -p` goes
        response = server.invoke("function", {"name": "Ada"})
        assert response.status_code == 200, server.output_tail()
        assert "X-Amz-Function-Error" not in response.headers, response.text
        assert response.json()["message"] == "Hello, Ada, from a layer merged into /opt!"
