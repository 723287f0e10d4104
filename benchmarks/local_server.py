"""Start and stop `rapidboot serve` for a benchmark (the server's own readiness line, no sleeps), write its
configuration (its invoke client is invoke_client.py).

The server's log goes to a file, not a pipe: a reader thread in the measuring process would wake on every
log line and compete with what it measures. Its state (layer cache, async queue) goes beside the config,
never into the working directory.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rapidboot.benchmarks.peers import Runtime

READY = re.compile(r"listening on http://([0-9.]+):(\d+)")
REPORT_INIT = re.compile(r"REPORT RequestId: (\S+).*?Init Duration: ([0-9.]+) ms")


@dataclass(slots=True)
class Function:
    """One `[functions.NAME]` table: a runtime running `<module>.handler` from `code`, or `handler` when
    given (a user's own `MODULE.FUNCTION`)."""

    name: str
    runtime: Runtime
    code: Path
    module: str = "app"
    options: dict[str, int | float] = field(default_factory=dict)
    handler: str = ""

    def handler_name(self) -> str:
        return self.handler or self.runtime.handler_for(self.module)


def write_config(path: Path, functions: list[Function]) -> Path:
    lines = []
    for function in functions:
        lines += [
            f"[functions.{json.dumps(function.name)}]",
            f"code = {json.dumps(str(function.code))}",
            f"handler = {json.dumps(function.handler_name())}",
        ]
        if function.runtime.command is not None:
            argv = function.runtime.argv(function.handler_name())
            lines.append(f"command = {json.dumps(argv)}")
        lines += [f"{key} = {value}" for key, value in function.options.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def launch_server(
    args: Sequence[str],
    log_path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    python: Sequence[str] = (),
) -> tuple[subprocess.Popen[str], str, int]:
    """`rapidboot serve ARGS --port 0`, started and ready: the process, its host and its port. Its stdout goes
    to `log_path` (discarded without one); its stderr is read up to the readiness line and left open for
    the caller. `python`: interpreter options before `-m` (e.g. cProfile's)."""
    command = [sys.executable, *python, "-m", "rapidboot.rapid_server", "serve", *args, "--port", "0"]
    with log_path.open("w") if log_path is not None else open(os.devnull, "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    assert server.stderr is not None
    for line in server.stderr:
        match = READY.search(line)
        if match:
            return server, match.group(1), int(match.group(2))
    where = f"; see {log_path}" if log_path is not None else ""
    raise SystemExit(f"server did not start: {' '.join(command)}{where}")


def start_server(config: Path, log_path: Path) -> tuple[subprocess.Popen[str], str, int]:
    """The server of `config` (its state beside it), its host and its port."""
    return launch_server(["--config", str(config), "--state-dir", str(config.parent / "state")], log_path)


def stop_server(server: subprocess.Popen[str]) -> None:
    server.terminate()
    server.wait(timeout=15)
    if server.stderr is not None:
        server.stderr.close()


def init_durations(log_path: Path) -> dict[str, float]:
    """Init Duration (ms) of each REPORT line in a server log, by request id."""
    return {
        match.group(1): float(match.group(2))
        for line in log_path.read_text().splitlines()
        if (match := REPORT_INIT.search(line))
    }


def invoke_path(name: str) -> str:
    return f"/2015-03-31/functions/{name}/invocations"
