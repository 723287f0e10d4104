"""rapidboot's runtime as a Lambda layer, for the managed Python runtimes (`rapidboot package layer`).

A function on `python3.11`+ gets our runtime by adding this layer and one variable,
`AWS_LAMBDA_EXEC_WRAPPER=/opt/rapidboot-wrapper`: the managed runtime then starts
`/opt/rapidboot-wrapper <python> <its bootstrap>` (reference section 4) and the wrapper execs our bootstrap
with that interpreter instead. The handler still comes from `_HANDLER`. The zip's root is `/opt`:

    rapidboot-wrapper                                  the wrapper (a POSIX shell script, mode 0755)
    rapidboot/bootstrap                                this repository's `bootstrap`
    rapidboot/runtime/*.py                             the runtime package, standard library only
    rapidboot/runtime/__pycache__/*.cpython-3XY.pyc    compiled by each interpreter given (default: this one)

Why the .pyc files: /opt is read-only on Lambda, so without them every cold start compiles the runtime
(measured with `python -X importtime -B`: 14 ms to import it from sources, 3 ms from .pyc). They are
unchecked-hash pycs (the source is never stat'ed) compiled by a fresh interpreter with PYTHONHASHSEED=0: set
constants are marshalled in string-hash order, so a random seed would change the bytes from run to run.

Byte-for-byte reproducible for the same sources and interpreters: members sorted by name, every timestamp
1980-01-01 00:00 (the zip format's epoch), modes fixed (0755 for directories and executables, 0644 for the
rest), Unix attributes, deflate level 9 (the same zlib gives the same bytes).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from rapidboot.layers.errors import LayerError
from rapidboot.layers.limits import LAMBDA_MAX_UNZIPPED_BYTES

WRAPPER_NAME = "rapidboot-wrapper"  # AWS_LAMBDA_EXEC_WRAPPER=/opt/rapidboot-wrapper
RUNTIME_DIR = "rapidboot"  # /opt/rapidboot: outside /opt/python, so nothing of ours shadows a module
# Lambda's quota for a zip uploaded directly (docs: gettingstarted-limits); the unzipped size counts against
# the function's 250 MB with its code and other layers.
LAMBDA_MAX_ZIP_BYTES = 52_428_800
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_UNIX = 3  # ZipInfo.create_system: the upper 16 bits of external_attr are st_mode

# The wrapper the managed runtime runs as `rapidboot-wrapper <python> <managed bootstrap> [args]`. It keeps
# the interpreter (the function's Python version, the runtime's site-packages with boto3) and drops the
# managed bootstrap. The mark tells our bootstrap that it already runs under AWS_LAMBDA_EXEC_WRAPPER (still
# set: the function may read it), so it does not exec the wrapper again (runtime/exec_wrapper.py).
WRAPPER_SCRIPT = b"""#!/bin/sh
# rapidboot's Lambda layer. With AWS_LAMBDA_EXEC_WRAPPER=/opt/rapidboot-wrapper, the managed Python
# runtime starts `rapidboot-wrapper <python> <its bootstrap> ...`: run rapidboot's runtime with that
# same interpreter instead. The handler comes from _HANDLER, as for the managed runtime.
python="${1:?usage: rapidboot-wrapper PYTHON [MANAGED-BOOTSTRAP ARGS...]}"
export _RAPIDBOOT_EXEC_WRAPPED="$AWS_LAMBDA_EXEC_WRAPPER"
exec "$python" "${0%/*}/rapidboot/bootstrap"
"""

# Run by each interpreter given: compile the listed sources into unchecked-hash pycs under the staging
# directory (argv[1]), named for that interpreter's cache tag, and print the tag.
_COMPILE_SCRIPT = """
import importlib.util, py_compile, sys
staging, display_root, names = sys.argv[1], sys.argv[2], sys.argv[3:]
for name in names:
    py_compile.compile(
        staging + "/" + name,
        cfile=staging + "/" + importlib.util.cache_from_source(name),
        dfile=display_root + "/" + name,
        doraise=True,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
print(sys.implementation.cache_tag)
"""


@dataclass(frozen=True, slots=True)
class Member:
    name: str  # POSIX path inside the zip (and under /opt)
    data: bytes
    executable: bool = False


@dataclass(frozen=True, slots=True)
class BuiltLayer:
    path: Path
    zip_bytes: int
    unzipped_bytes: int
    cache_tags: tuple[str, ...]  # the Python versions whose .pyc files it carries, e.g. ("cpython-311",)


def runtime_sources() -> tuple[Path, Path]:
    """This installation's `runtime` package directory and the `bootstrap` file beside it: a checkout's
    root, or `site-packages/rapidboot/` of an installed wheel (the same layout)."""
    from rapidboot import runtime  # imports nothing (runtime/__init__.py)

    package_dir = Path(runtime.__file__).resolve().parent
    bootstrap = package_dir.parent / "bootstrap"
    if not bootstrap.is_file():
        raise LayerError(
            f"'{bootstrap}' not found: the `bootstrap` file belongs beside the `runtime` package "
            f"({package_dir}); reinstall rapidboot from its wheel or a checkout"
        )
    return package_dir, bootstrap


def layer_members(
    package_dir: Path, bootstrap: Path, pythons: Sequence[str]
) -> tuple[list[Member], tuple[str, ...]]:
    """Every file of the layer (directories are added when writing), and the cache tags compiled for."""
    sources = sorted(
        path.relative_to(package_dir).as_posix()
        for path in package_dir.rglob("*.py")
        if "__pycache__" not in path.relative_to(package_dir).parts
    )
    members = [
        Member(WRAPPER_NAME, WRAPPER_SCRIPT, executable=True),
        Member(f"{RUNTIME_DIR}/bootstrap", bootstrap.read_bytes(), executable=True),
    ]
    with tempfile.TemporaryDirectory(prefix="rapidboot-layer-") as staging_name:
        staging = Path(staging_name)
        for name in sources:
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(package_dir / name, target)
            members.append(Member(f"{RUNTIME_DIR}/runtime/{name}", target.read_bytes()))
        tags = tuple(_compile(python, staging, sources) for python in pythons)
        if len(set(tags)) != len(tags):
            raise LayerError(f"--python: two interpreters of the same version ({', '.join(tags)})")
        for pyc in sorted(staging.rglob("*.pyc")):
            name = pyc.relative_to(staging).as_posix()
            members.append(Member(f"{RUNTIME_DIR}/runtime/{name}", pyc.read_bytes()))
    return members, tags


def _compile(python: str, staging: Path, sources: Sequence[str]) -> str:
    display_root = f"/opt/{RUNTIME_DIR}/runtime"  # where tracebacks would say the code is, on Lambda
    try:
        done = subprocess.run(
            # -S -s: nothing from site; no -I/-E, which would ignore PYTHONHASHSEED.
            [python, "-S", "-s", "-c", _COMPILE_SCRIPT, str(staging), display_root, *sources],
            env=_compile_environment(),
            cwd=staging,
            capture_output=True,
            text=True,
            timeout=120,
        )
    except OSError as exc:
        raise LayerError(f"--python {python}: cannot run it: {exc.strerror or exc}") from None
    tag = done.stdout.strip()
    if done.returncode != 0 or not tag.startswith("cpython-"):
        detail = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise LayerError(f"--python {python}: cannot compile the runtime with it: {detail}")
    return tag


def _compile_environment() -> dict[str, str]:
    # Our environment (a pyenv shim needs its variables) without the PYTHON* ones that change what an
    # interpreter does, and with a fixed hash seed.
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"
    return env


def write_reproducible_zip(path: Path, members: Sequence[Member]) -> int:
    """Write `members` (plus their parent directories) to `path` atomically; returns the unzipped size."""
    directories = {
        str(parent) + "/"
        for member in members
        for parent in PurePosixPath(member.name).parents
        if str(parent) != "."
    }
    entries: list[tuple[str, Member | None]] = [(name, None) for name in directories]
    entries += [(member.name, member) for member in members]
    entries.sort(key=lambda entry: entry[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with zipfile.ZipFile(partial, "w") as archive:
            for name, member in entries:
                info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
                info.create_system = _UNIX
                if member is None:
                    info.external_attr = (stat.S_IFDIR | 0o755) << 16 | 0x10  # 0x10: MS-DOS directory bit
                    archive.writestr(info, b"")
                    continue
                mode = 0o755 if member.executable else 0o644
                info.external_attr = (stat.S_IFREG | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, member.data, compresslevel=9)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return sum(len(member.data) for member in members)


def build_layer(out: Path, pythons: Sequence[str] = ()) -> BuiltLayer:
    """Build the layer zip at `out` with .pyc files for each interpreter in `pythons` (default: this one)."""
    package_dir, bootstrap = runtime_sources()
    members, tags = layer_members(package_dir, bootstrap, list(pythons) or [sys.executable])
    unzipped = write_reproducible_zip(out, members)
    size = out.stat().st_size
    if size > LAMBDA_MAX_ZIP_BYTES or unzipped > LAMBDA_MAX_UNZIPPED_BYTES:
        out.unlink()
        raise LayerError(f"'{out}': {size:,} bytes zipped, {unzipped:,} unzipped: over Lambda's layer limits")
    return BuiltLayer(out, size, unzipped, tags)
