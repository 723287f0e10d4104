"""AWS's Runtime Interface Emulator (`aws-lambda-rie`) as a second server to measure against (`--rie PATH`).

Its command line, as documented in aws/aws-lambda-runtime-interface-emulator: `aws-lambda-rie [options]
COMMAND [ARGS...]` runs COMMAND (the runtime, in the emulator's working directory) on the first invoke,
`--runtime-interface-emulator-address` (default 0.0.0.0:8080) is where invokes arrive, at
`/2015-03-31/functions/function/invocations` only, and `--runtime-api-address` (default 127.0.0.1:9001) is
the Runtime API it gives the runtime. It serves one invoke at a time, so it is measured with one client.
Its REPORT lines go to its standard output, which we keep in a file.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

INVOKE_PATH = "/2015-03-31/functions/function/invocations"
REPORT_INIT = re.compile(r"REPORT RequestId: (\S+).*?Init Duration: ([0-9.]+) ms")
STARTUP_TIMEOUT_S = 15.0
HOW_TO_GET = (
    "AWS's Runtime Interface Emulator not found: set RIE_BIN to an `aws-lambda-rie` binary or put one on "
    "PATH (the releases of aws/aws-lambda-runtime-interface-emulator, or /usr/local/bin/aws-lambda-rie in "
    "AWS's base images)"
)


def find_rie() -> Path | None:
    """The emulator named by `RIE_BIN`, else `aws-lambda-rie` on PATH, else None. A `RIE_BIN` that is not
    an executable file is an error: the user asked for that one."""
    named = os.environ.get("RIE_BIN")
    if named:
        path = Path(named)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ValueError(f"RIE_BIN={named}: not an executable file")
        return path.resolve()
    found = shutil.which("aws-lambda-rie")
    return Path(found).resolve() if found else None


def _ephemeral_low() -> int:
    """Where the kernel's ephemeral ports start (Linux: ip_local_port_range; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port free now, for a program that takes its port on its command line (the emulator).

    Chosen below the kernel's ephemeral range: a port from `bind(0)` is one the kernel also gives to
    outgoing connections, and a client connecting elsewhere between our probe and the program's own bind
    took it once (the emulator panicked, "address already in use"). Below the range only an explicit bind
    can take it. Never the same port twice from one process."""
    high = _ephemeral_low()
    low = max(1024, high - 16384)
    for _ in range(200):
        port = random.randrange(low, high)
        if port in _handed_out:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {low}-{high - 1} after 200 tries")


class Emulator:
    """One emulator process with one function (the runtime command), started and ready to invoke."""

    def __init__(self, binary: Path, argv: list[str], task_root: Path, log_path: Path) -> None:
        self.host = "127.0.0.1"
        self.port = free_port()
        self.log_path = log_path
        command = [
            str(binary),
            "--runtime-interface-emulator-address",
            f"{self.host}:{self.port}",
            "--runtime-api-address",
            f"127.0.0.1:{free_port()}",
            *argv,
        ]
        environment = {**os.environ, "LAMBDA_TASK_ROOT": str(task_root)}
        with log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, cwd=task_root, env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_listening()

    def _wait_listening(self) -> None:
        """The emulator prints no readiness line; it is ready when its invoke port accepts a connection."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the emulator exited with {self.process.returncode}; see {self.log_path}")
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.005)
        self.stop()
        raise RuntimeError(
            f"the emulator did not listen within {STARTUP_TIMEOUT_S:.0f} s; see {self.log_path}"
        )

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def init_durations(self) -> list[float]:
        """Init Duration (ms) of each REPORT line so far, in order."""
        return [
            float(match.group(2))
            for line in self.log_path.read_text(errors="replace").splitlines()
            if (match := REPORT_INIT.search(line))
        ]
