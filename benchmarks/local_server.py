"""Start and stop `rapidboot serve` for a benchmark: the server's own readiness line, no sleeps.

The server's log goes to a file, not a pipe: a reader thread in the measuring process would wake on every
log line and compete with what it measures. Its state (layer cache, async queue) goes beside the config,
never into the working directory.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

READY = re.compile(r"listening on http://([0-9.]+):(\d+)")


def start_server(config: Path, log_path: Path) -> tuple[subprocess.Popen[str], str, int]:
    """The running server, its host and its port."""
    command = [sys.executable, "-m", "rapid_server", "serve", "--config", str(config), "--port", "0"]
    command += ["--state-dir", str(config.parent / "state")]
    with log_path.open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.PIPE, text=True)
    assert server.stderr is not None
    for line in server.stderr:
        match = READY.search(line)
        if match:
            return server, match.group(1), int(match.group(2))
    raise SystemExit(f"server did not start; see {log_path}")


def stop_server(server: subprocess.Popen[str]) -> None:
    server.terminate()
    server.wait(timeout=15)
    if server.stderr is not None:
        server.stderr.close()
