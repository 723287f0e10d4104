"""The contenders: our bootstrap, and each peer found on this machine; a line saying how to add each one
that is missing, so a report never silently compares fewer things than it could.

Runtimes (spawned by a harness or by a server): rapidboot's bootstrap, `python -m awslambdaric`, AWS's Node
runtime client (`--node-ric`). Servers: `rapidboot serve`, and AWS's Runtime Interface Emulator (`--rie`).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rapidboot.benchmarks.results import OURS, PEER
from rapidboot.benchmarks.rie import find_rie
from rapidboot.rapid_server.config import bootstrap_command

HOW_TO_RIC = "awslambdaric: not installed, skipped; add it with `pip install awslambdaric`"
HOW_TO_BOTO3 = "cold start importing boto3: boto3 is not installed, skipped; add it with `pip install boto3`"
HOW_TO_RIE = (
    "RIE (AWS's Runtime Interface Emulator): not measured; add it with `--rie PATH`, RIE_BIN or "
    "`aws-lambda-rie` on PATH (the binary of AWS base images, /usr/local/bin/aws-lambda-rie, or a release "
    "of aws/aws-lambda-runtime-interface-emulator)"
)
HOW_TO_NODE = (
    "node-ric (AWS's Node runtime client): not measured; add it with `--node-ric` (NODE22 and NODE_RIC "
    "name it, else `node` and `npm install aws-lambda-ric`)"
)
NODE_HANDLER = "export const handler = async (event) => event;\n"
HOW_TO_NODE_RIC_ENV = (
    "AWS's Node runtime client not found: set NODE22 to a Node 22+ `node` binary and NODE_RIC to the "
    "`index.mjs` of `npm install aws-lambda-ric` made with that Node (a native build: needs cmake, autoconf, "
    "automake, libtool, g++)"
)


@dataclass(frozen=True, slots=True)
class Runtime:
    """A runtime interface client; `argv(handler)` starts it (the task root is its working directory)."""

    name: str
    role: str
    command: tuple[str, ...] | None  # None: our bootstrap, the server's default
    language: str = "python"

    def argv(self, handler: str) -> list[str]:
        if self.command is None:
            return list(bootstrap_command(handler))
        return [*self.command, handler]

    def handler_for(self, module: str) -> str:
        """`app.handler` for Python; the Node client finds `app.mjs` by the same name."""
        return f"{module}.handler"


@dataclass(slots=True)
class Peers:
    runtimes: list[Runtime]
    boto3: bool
    rie: Path | None
    skipped: list[str] = field(default_factory=list)

    def python_runtimes(self) -> list[Runtime]:
        return [runtime for runtime in self.runtimes if runtime.language == "python"]


def rapidboot() -> Runtime:
    return Runtime("rapidboot", OURS, None)


def node_ric_from_environment() -> list[str] | None:
    """`[NODE22, NODE_RIC]` when both variables are set (the client reads its handler from `_HANDLER`);
    None when neither is. One without the other, or a path that is not there, is an error."""
    node, entry = os.environ.get("NODE22", ""), os.environ.get("NODE_RIC", "")
    if not node and not entry:
        return None
    if not (node and entry):
        raise ValueError("NODE22 and NODE_RIC go together: set both, or neither")
    if not (Path(node).is_file() and os.access(node, os.X_OK)):
        raise ValueError(f"NODE22={node}: not an executable file")
    if not Path(entry).is_file():
        raise ValueError(f"NODE_RIC={entry}: no such file")
    return [str(Path(node).resolve()), str(Path(entry).resolve())]


def find_node_ric(cwd: Path | None = None) -> tuple[list[str] | None, str]:
    """The Node runtime client's command (NODE22 and NODE_RIC first), or None and the line saying what is
    missing."""
    from_environment = node_ric_from_environment()
    if from_environment is not None:
        return from_environment, ""
    node = shutil.which("node")
    if node is None:
        return None, (
            "node-ric: skipped, `node` is not on PATH; install Node.js 18+ and then "
            "`npm install aws-lambda-ric` in the directory you run the benchmarks from"
        )
    candidates = [Path(cwd or os.getcwd()) / "node_modules" / ".bin" / "aws-lambda-ric"]
    on_path = shutil.which("aws-lambda-ric")
    if on_path:
        candidates.insert(0, Path(on_path))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [node, str(candidate.resolve())], ""
    return None, (
        "node-ric: skipped, the `aws-lambda-ric` npm package is not installed; add it with "
        "`npm install aws-lambda-ric` (it builds native code: needs cmake, autoconf, automake, libtool, g++)"
    )


def node_version() -> str | None:
    node = shutil.which("node")
    if node is None:
        return None
    try:
        return subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def discover(rie: Path | None = None, node_ric: bool = False) -> Peers:
    """Which contenders this run has. Without `--rie`, the emulator of `RIE_BIN` or `aws-lambda-rie` on
    PATH; with `--node-ric`, the Node client of NODE22 and NODE_RIC, else `aws-lambda-ric` found by npm. A
    path the user gave that is not there is an error; anything else missing is skipped with a how-to
    line."""
    runtimes = [rapidboot()]
    skipped: list[str] = []
    if importlib.util.find_spec("awslambdaric") is not None:
        runtimes.append(Runtime("awslambdaric", PEER, (sys.executable, "-m", "awslambdaric")))
    else:
        skipped.append(HOW_TO_RIC)
    if node_ric:
        command, missing = find_node_ric()
        if command is not None:
            runtimes.append(Runtime("node-ric", PEER, tuple(command), language="node"))
        else:
            skipped.append(missing)
    else:
        skipped.append(HOW_TO_NODE)
    boto3 = importlib.util.find_spec("boto3") is not None
    if not boto3:
        skipped.append(HOW_TO_BOTO3)
    if rie is not None:
        if not (rie.is_file() and os.access(rie, os.X_OK)):
            raise ValueError(f"--rie {rie}: not an executable file")
        rie = rie.resolve()
    else:
        rie = find_rie()
    if rie is None:
        skipped.append(HOW_TO_RIE)
    return Peers(runtimes, boto3, rie, skipped)


def write_handlers(task_root: Path, module: str, python_source: str) -> None:
    """The same function for every runtime: `<module>.py` for Python, `<module>.mjs` for Node (an echo)."""
    task_root.mkdir(parents=True, exist_ok=True)
    (task_root / f"{module}.py").write_text(python_source)
    (task_root / f"{module}.mjs").write_text(NODE_HANDLER)
