"""moto's standalone server (`moto[server]`) as a real process on a free port: the SQS endpoint of the event
source tests, the SQS benchmark and examples/queue/.

    python -m rapidboot.benchmarks.moto_server [--port N]     # runs until Ctrl-C, printing its endpoint
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

READY_TIMEOUT_S = 30.0
# What boto3 needs to talk to moto: any credentials, and the endpoint (AWS_ENDPOINT_URL_SQS: boto3 >= 1.28).
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MotoServer:
    def __init__(self, port: int = 0, log: Path | None = None):
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log_path = log
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def environment(self) -> dict[str, str]:
        """What a process (our server, a test's boto3) needs to use this moto for SQS."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL_SQS": self.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}

    def start(self) -> MotoServer:
        # Its request log goes to a file (or nowhere): a pipe nobody reads would stall it under load.
        self._log = open(self._log_path, "wb") if self._log_path else None  # noqa: SIM115
        output = self._log if self._log is not None else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            env={**os.environ, **CREDENTIALS},
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:  # ready once it accepts a connection (bounded: it may fail to start)
            if self.process.poll() is not None:
                raise RuntimeError(f"moto's server exited with {self.process.returncode} at start")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), 0.5):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"moto's server did not listen on {self.port} within {READY_TIMEOUT_S} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()


@contextlib.contextmanager
def running_moto(port: int = 0, log: Path | None = None) -> Iterator[MotoServer]:
    server = MotoServer(port, log).start()
    try:
        yield server
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with running_moto(args.port) as moto:
        print(
            f"moto's SQS at {moto.endpoint} (AWS_ENDPOINT_URL_SQS={moto.endpoint}); Ctrl-C stops it",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            assert moto.process is not None
            moto.process.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
