"""`pip install rapidboot` gives the whole tool: the README's commands, run from the installed wheel.

The sdist is built from the checkout and the wheel from the sdist (as `python -m build` does), once per
module, with this venv's setuptools (the test extra holds what pyproject.toml's build-system asks for;
setuptools writes rapidboot.egg-info/ in the checkout, as any build does). The wheel goes into a fresh
venv; its dependencies come from this venv's site-packages through a path in a .pth file, read after the
fresh venv's own (no download, and this venv's editable install is not read from there: a .pth in a
directory that is only on sys.path is never processed). Every command runs from a working directory
outside the checkout, with no PYTHON* variable: nothing of the checkout can be imported.

The functions' task roots hold `runtime.py`, `layers.py` and `benchmarks.py`, imported and used by the
handler. With the old top-level names an installed rapidboot and such a function shadowed each other:
every invoke failed with Runtime.ExitError (issue 13).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import subprocess
import sys
import sysconfig
import tarfile
import tomllib
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from e2e_harness import RapidServer, server_environment, supervised

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
FOLDERS = ("runtime", "rapid_server", "layers", "benchmarks")  # each installed as rapidboot.<folder>
BUILD_TIMEOUT_S = 120

# A user's modules with our folders' names, beside the handler that uses them.
TASK_ROOT = {
    "runtime.py": "NAME = 'user runtime'\n",
    "layers.py": "NAME = 'user layers'\n",
    "benchmarks.py": "NAME = 'user benchmarks'\n",
    "app.py": (
        "import benchmarks, layers, runtime\n\n\n"
        "def handler(event, context):\n"
        "    return {'event': event, 'modules': [runtime.NAME, layers.NAME, benchmarks.NAME]}\n"
    ),
}
USER_MODULES = ["user runtime", "user layers", "user benchmarks"]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    sdist: Path
    python: Path  # the fresh venv's
    rapidboot: Path  # its console script
    package: Path  # site-packages/rapidboot: the bootstrap and the four packages
    home: Path  # a working directory outside the checkout

    def run(self, *args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(arg) for arg in args],
            cwd=cwd or self.home,
            env=server_environment(),
            capture_output=True,
            text=True,
            timeout=BUILD_TIMEOUT_S,
            check=False,
        )


def _checked(command: Sequence[str | Path], cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(arg) for arg in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _venv(path: Path) -> Path:
    _checked([sys.executable, "-m", "venv", "--without-pip", path])
    return path / "bin" / "python"


def _pip_into(python: Path, *args: str | Path) -> None:
    """This venv's pip, installing into another venv's interpreter (which has no pip of its own)."""
    _checked([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", *args])


def _site_packages(python: Path) -> Path:
    return Path(_checked([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())


BUILD = "import sys\nfrom setuptools import build_meta\nprint(build_meta.build_{kind}(sys.argv[1]))\n"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("wheel")
    dist = root / "dist"
    sdist = (
        dist / _checked([sys.executable, "-c", BUILD.format(kind="sdist"), dist], cwd=REPO).splitlines()[-1]
    )
    with tarfile.open(sdist) as archive:
        archive.extractall(root / "unpacked", filter="data")
    (source,) = (root / "unpacked").iterdir()
    wheel = (
        dist / _checked([sys.executable, "-c", BUILD.format(kind="wheel"), dist], cwd=source).splitlines()[-1]
    )

    python = _venv(root / "venv")
    _pip_into(python, "--no-deps", "--no-index", wheel)
    site = _site_packages(python)
    (site / "_test_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    home = root / "home"
    home.mkdir()
    (home / "bootstrap-link").symlink_to(site / "rapidboot" / "bootstrap")
    return Installed(wheel, sdist, python, python.parent / "rapidboot", site / "rapidboot", home)


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    root = tmp_path / "task"
    root.mkdir()
    for name, text in TASK_ROOT.items():
        (root / name).write_text(text)
    return root


def test_the_wheel_holds_every_module_and_the_bootstrap(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
        bootstrap_mode = wheel.getinfo("rapidboot/bootstrap").external_attr >> 16
    tracked = _checked(["git", "ls-files", "--", *FOLDERS], cwd=REPO).split()
    shipped = [name for name in tracked if name.endswith(".py") or "/static/" in name]  # the console's page
    missing = [name for name in shipped if f"rapidboot/{name}" not in names]
    assert missing == [], f"not in the wheel (a sub-package missing from pyproject.toml?): {missing}"
    assert bootstrap_mode & stat.S_IXUSR
    assert {name.split("/")[0] for name in names} == {
        "rapidboot",
        f"rapidboot-{PROJECT['project']['version']}.dist-info",
    }
    with tarfile.open(installed.sdist) as sdist:
        members = {name.split("/", 1)[-1] for name in sdist.getnames()}
    assert {"bootstrap", "README.md", "pyproject.toml", "runtime/main.py", "rapid_server/cli.py"} <= members
    # Installed, it is the checkout's layout: the bootstrap beside the runtime package.
    assert (installed.package / "bootstrap").read_bytes() == (REPO / "bootstrap").read_bytes()
    assert (installed.package / "runtime" / "main.py").is_file()


def test_only_the_rapidboot_name_is_installed(installed: Installed) -> None:
    probe = (
        "import importlib.util, json, sys\n"
        "import rapidboot.rapid_server.cli\n"
        "print(json.dumps({'found': [n for n in sys.argv[1:] if importlib.util.find_spec(n)],\n"
        "                  'file': rapidboot.rapid_server.cli.__file__, 'path': sys.path}))\n"
    )
    done = installed.run(installed.python, "-c", probe, *FOLDERS)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["found"] == []  # no top-level runtime, rapid_server, layers or benchmarks
    assert Path(seen["file"]).is_relative_to(installed.package)
    dependencies = sysconfig.get_paths()["purelib"]  # this venv's, which lives in the checkout
    checkout = [
        entry for entry in seen["path"] if Path(entry or installed.home).resolve().is_relative_to(REPO)
    ]
    assert checkout == [dependencies]


def test_version(installed: Installed) -> None:
    done = installed.run(installed.rapidboot, "--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"rapidboot {PROJECT['project']['version']}")


class Command(RapidServer):
    """A server (or the bootstrap in emulator mode) started from the fresh venv, read like the harness's."""

    def __init__(
        self, command: Sequence[str | Path], cwd: Path, env: Mapping[str, str] | None = None
    ) -> None:
        super().__init__([], cwd, env)
        self.args = [str(arg) for arg in command]


@contextlib.contextmanager
def started(command: Sequence[str | Path], cwd: Path, **env: str) -> Iterator[RapidServer]:
    with supervised(Command(command, cwd, {**server_environment(), **env})) as server:
        yield server


def test_serve_and_invoke_a_function_with_modules_named_like_ours(
    installed: Installed, task_root: Path
) -> None:
    serve = [installed.rapidboot, "serve", "--code", task_root, "--handler", "app.handler", "--name", "hello"]
    with started([*serve, "--port", "0"], installed.home) as server:
        invoke = [installed.rapidboot, "invoke", "hello", "--payload", '{"name": "Ada"}']
        done = installed.run(*invoke, "--endpoint", server.endpoint)
        assert done.returncode == 0, f"{done.stderr}\n{server.output_tail()}"
        assert json.loads(done.stdout) == {"event": {"name": "Ada"}, "modules": USER_MODULES}
        # The server found the wheel's bootstrap (not `python -m`), and runs it with the venv's Python.
        (runtime,) = server.runtime_processes("hello")
        assert runtime.cmdline == f"{installed.python} {installed.package / 'bootstrap'} app.handler"
        # The web console's static files are the wheel's package data.
        page = httpx.get(f"{server.endpoint}/_rapidboot/console.js")
        assert page.status_code == 200, page.text
        static = REPO / "rapid_server" / "observability" / "static"
        assert page.content == (static / "console.js").read_bytes()


ENTRYPOINTS = {
    "bootstrap": ["{python}", "{package}/bootstrap"],
    "bootstrap, linked to a fixed path": ["{python}", "{home}/bootstrap-link"],  # the README's ENTRYPOINT
    "python -m rapidboot.runtime": ["{python}", "-m", "rapidboot.runtime"],
}


@pytest.mark.parametrize("entrypoint", sorted(ENTRYPOINTS))
def test_emulator_mode_serves_a_function_with_modules_named_like_ours(
    installed: Installed, task_root: Path, entrypoint: str
) -> None:
    # `docker run` of an image with the wheel installed: the working directory is the task root, as
    # Lambda's WORKDIR /var/task, and no Runtime API is set. The runtime it spawns is the same entrypoint.
    command = [
        part.format(python=installed.python, package=installed.package, home=installed.home)
        for part in ENTRYPOINTS[entrypoint]
    ]
    with started(
        [*command, "app.handler"], task_root, RAPIDBOOT_PORT="0", RAPIDBOOT_HOST="127.0.0.1"
    ) as emulator:
        response = emulator.invoke("function", {"n": 1})
        assert response.status_code == 200, emulator.output_tail()
        assert response.json() == {"event": {"n": 1}, "modules": USER_MODULES}
        (runtime,) = emulator.runtime_processes("function")
        assert runtime.cmdline.startswith(" ".join(command))


def test_package_layer(installed: Installed) -> None:
    done = installed.run(installed.rapidboot, "package", "layer", "--out", "layer.zip")
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(installed.home / "layer.zip") as layer:
        assert layer.read("rapidboot/bootstrap") == (REPO / "bootstrap").read_bytes()
        assert layer.read("rapidboot/runtime/main.py") == (REPO / "runtime" / "main.py").read_bytes()


def test_bench_quick(installed: Installed) -> None:
    # The quickest part of the suite; the others run the same code paths from the checkout's tests.
    done = installed.run(installed.rapidboot, "bench", "--quick", "--only", "layers", "--out", "bench")
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert (installed.home / "bench" / "report.md").is_file()
    assert os.path.getsize(installed.home / "bench" / "results.json") > 0
