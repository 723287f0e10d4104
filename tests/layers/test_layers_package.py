"""`rapidboot package layer`: the runtime layer zip is complete, reproducible, and within Lambda's limits."""

from __future__ import annotations

import importlib.util
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from rapidboot.layers.limits import LAMBDA_MAX_UNZIPPED_BYTES, Limits
from rapidboot.layers.merge import merge
from rapidboot.layers.package import LAMBDA_MAX_ZIP_BYTES, WRAPPER_NAME, build_layer

REPO = Path(__file__).resolve().parents[2]
CACHE_TAG = sys.implementation.cache_tag


def package_layer(out: Path, *extra: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """`rapidboot package layer` in a process of its own (a fresh hash seed, fresh interpreter state)."""
    return subprocess.run(
        [sys.executable, "-m", "rapidboot.rapid_server", "package", "layer", "--out", str(out), *extra],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def layer_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_layer(tmp_path_factory.mktemp("layer") / "rapidboot-layer.zip").path


def test_two_builds_in_two_processes_are_byte_for_byte_identical(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "layer.zip", tmp_path / "b" / "layer.zip"
    for out in (first, second):
        done = package_layer(out, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"AWS_LAMBDA_EXEC_WRAPPER=/opt/{WRAPPER_NAME}" in done.stdout
    assert first.read_bytes() == second.read_bytes()
    assert not list(tmp_path.rglob(".*.partial"))


def test_members_are_sorted_with_fixed_timestamps_and_modes(layer_zip: Path) -> None:
    with zipfile.ZipFile(layer_zip) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert len(names) == len(set(names))
    executables = {WRAPPER_NAME, "rapidboot/bootstrap"}
    for info in infos:
        assert info.date_time == (1980, 1, 1, 0, 0, 0), info.filename
        assert info.create_system == 3, info.filename  # Unix: the mode bits below are honoured
        mode = info.external_attr >> 16
        if info.is_dir():
            assert mode == stat.S_IFDIR | 0o755, info.filename
        elif info.filename in executables:
            assert mode == stat.S_IFREG | 0o755, info.filename
        else:
            assert mode == stat.S_IFREG | 0o644, info.filename


def test_carries_the_runtime_bootstrap_wrapper_and_compiled_modules(layer_zip: Path) -> None:
    with zipfile.ZipFile(layer_zip) as archive:
        names = set(archive.namelist())
        wrapper = archive.read(WRAPPER_NAME)
        assert archive.read("rapidboot/bootstrap") == (REPO / "bootstrap").read_bytes()
        sources = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "runtime").glob("*.py"))
        assert sources, "the runtime package has modules"
        for source in sources:
            assert archive.read(f"rapidboot/{source}") == (REPO / source).read_bytes()
            pyc = f"rapidboot/{importlib.util.cache_from_source(source)}"
            data = archive.read(pyc)
            assert data[:4] == importlib.util.MAGIC_NUMBER, pyc
            # PEP 552 flags: 0b01 = hash-based, not checked against the source (never stat'ed on Lambda).
            assert int.from_bytes(data[4:8], "little") == 0b01, pyc
    assert wrapper.startswith(b"#!/bin/sh\n")
    assert b'exec "$python" "${0%/*}/rapidboot/bootstrap"' in wrapper
    assert not any("__pycache__" in name and not name.endswith((".pyc", "/")) for name in names)
    assert not any(name.startswith("python/") for name in names)  # nothing shadows the function's modules


def test_is_within_the_layer_limits_and_merges_like_any_layer(layer_zip: Path, tmp_path: Path) -> None:
    assert layer_zip.stat().st_size < LAMBDA_MAX_ZIP_BYTES
    manifest = merge([layer_zip], tmp_path / "opt", Limits())
    assert 0 < manifest.unzipped_bytes < LAMBDA_MAX_UNZIPPED_BYTES
    assert (tmp_path / "opt" / WRAPPER_NAME).stat().st_mode & 0o111  # still executable after the merge
    assert (tmp_path / "opt" / "rapidboot" / "bootstrap").stat().st_mode & 0o111


def test_pyc_files_for_each_interpreter_given(tmp_path: Path) -> None:
    current = f"{sys.version_info[0]}.{sys.version_info[1]}"
    others = [found for v in ("3.12", "3.13", "3.11") if v != current and (found := _interpreter(v))]
    if not others:
        pytest.skip("no second Python version on this machine")
    built = build_layer(tmp_path / "layer.zip", [sys.executable, others[0]])
    other_tag = subprocess.run(
        [others[0], "-c", "import sys; print(sys.implementation.cache_tag)"],
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout.strip()
    assert other_tag.startswith("cpython-") and other_tag != CACHE_TAG
    assert built.cache_tags == (CACHE_TAG, other_tag)
    with zipfile.ZipFile(built.path) as archive:
        names = archive.namelist()
    assert f"rapidboot/runtime/__pycache__/main.{CACHE_TAG}.pyc" in names
    assert f"rapidboot/runtime/__pycache__/main.{other_tag}.pyc" in names


def _interpreter(version: str) -> str | None:
    """pyenv's newest X.Y, else `pythonX.Y` on PATH (not a pyenv shim, which may refuse to run it)."""
    candidates = sorted((Path.home() / ".pyenv" / "versions").glob(f"{version}.*/bin/python{version}"))
    if candidates:
        return str(candidates[-1])
    found = shutil.which(f"python{version}")
    return found if found is not None and "/shims/" not in found else None


def test_an_interpreter_that_cannot_run_is_named(tmp_path: Path) -> None:
    done = package_layer(tmp_path / "layer.zip", "--python", str(tmp_path / "no-python"), cwd=tmp_path)
    assert done.returncode == 2
    assert f"--python {tmp_path / 'no-python'}: cannot run it" in done.stderr
    assert not (tmp_path / "layer.zip").exists()
