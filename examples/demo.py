"""`make demo`: serve examples/hello locally, invoke it cold then warm with the CLI, show what happened.

Everything here is what a user would type: `rapidboot serve ...` in one terminal, `rapidboot invoke ...`
in another. The script only starts them, waits for the server's readiness line, and prints the results.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
READY = re.compile(r"listening on (http://[0-9.]+:\d+)")
STARTUP_TIMEOUT_S = 30
RAPIDBOOT = [sys.executable, "-m", "rapidboot.rapid_server"]  # the `rapidboot` command, with this interpreter


def main() -> int:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "rapidboot.rapid_server",
            "serve",
            "--code",
            str(HERE / "hello"),
            "--handler",
            "app.handler",
            "--name",
            "hello",
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    assert server.stdout is not None and server.stderr is not None
    reader = threading.Thread(target=lambda: log.extend(server.stdout or ()), daemon=True)
    reader.start()
    try:
        endpoint = _wait_ready(server)
        print(f"$ rapidboot serve --code examples/hello --handler app.handler --name hello   # {endpoint}\n")
        for label, name in (("cold", "Ada"), ("warm", "Grace")):
            payload = f'{{"name": "{name}"}}'
            print(f"$ rapidboot invoke hello --payload '{payload}'   # {label}")
            invoke = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "rapidboot.rapid_server",
                    "invoke",
                    "hello",
                    "--payload",
                    payload,
                    "--endpoint",
                    endpoint,
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            print(invoke.stdout.strip() or invoke.stderr.strip())
            if invoke.returncode != 0:
                print(f"invoke failed ({invoke.returncode}): {invoke.stderr.strip()}", file=sys.stderr)
                return 1
            print()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            code = server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            code = server.wait()
        reader.join(timeout=5)
    print("Server log (the function's output and the platform's START/END/REPORT lines):")
    for line in log:
        print("  " + line.rstrip("\n").replace("\t", "  "))
    reports = [line for line in log if line.startswith("REPORT ")]
    if len(reports) != 2 or "Init Duration" not in reports[0] or "Init Duration" in reports[1]:
        print("expected a cold REPORT with Init Duration, then a warm one without", file=sys.stderr)
        return 1
    print(f"\nServer stopped cleanly (exit {code}).")
    return code


def _wait_ready(server: subprocess.Popen[str]) -> str:
    """Read the server's stderr until its readiness line; fail with what it said if it exits first."""
    lines: list[str] = []
    found: list[str] = []
    done = threading.Event()

    def read() -> None:
        assert server.stderr is not None
        for line in server.stderr:
            lines.append(line)
            match = READY.search(line)
            if match and not found:
                found.append(match.group(1))
                done.set()
        done.set()

    threading.Thread(target=read, daemon=True).start()
    if not done.wait(STARTUP_TIMEOUT_S) or not found:
        raise SystemExit("rapidboot serve did not start:\n" + "".join(lines))
    return found[0]


if __name__ == "__main__":
    raise SystemExit(main())
