"""Hot reload: a handler file written -> the first response from the new code, on `rapidboot serve --watch`.

Each sample is one full cycle a developer waits for: the handler (trivial, our bootstrap) is rewritten on
disk, and the client invokes back-to-back until the answer is the new version. That covers the watcher
noticing the write (inotify through watchfiles, then its STEP_MS of quiet), the reload (old environment
retired) and a new environment's cold start on the new code. Against it, in the same run, the reload a
server without --watch needs: stop the server, start it again, first invoke (sampled fewer times).

    python benchmarks/hot_reload.py [--samples 30] [--restarts 5]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rapidboot.benchmarks.invoke_client import InvokeClient
from rapidboot.benchmarks.local_server import invoke_path, launch_server

Tick = Callable[[str], None]

READY = re.compile(r"listening on http://([0-9.]+):(\d+)")
HANDLER = 'def handler(event, context):\n    return "{version}"\n'
PATH = invoke_path("function")
WARM_INVOKES = 5  # after each reload, so the next sample starts from a warm environment


@dataclass(slots=True)
class ReloadTimes:
    reload_s: list[float]  # write -> first new answer, with --watch
    restart_s: list[float]  # stop the server, start it, first answer: the reload without --watch
    polls: list[int]  # invokes answered by the old code before the new one (how the client waited)


def _start(code: Path, state: Path, watch: bool) -> tuple[subprocess.Popen[str], InvokeClient]:
    args = ["--code", str(code), "--handler", "app.handler", "--state-dir", str(state)]
    server, host, port = launch_server([*args, "--watch" if watch else "--no-watch"])
    return server, InvokeClient(host, port)


def _stop(server: subprocess.Popen[str], client: InvokeClient) -> str:
    """Stops the server; returns what it wrote on stderr after its readiness line."""
    client.close()
    server.send_signal(signal.SIGTERM)
    rest = server.stderr.read() if server.stderr is not None else ""
    server.wait(timeout=15)
    return rest


def _write(code: Path, version: str) -> None:
    with open(code / "app.py", "w") as file:
        file.write(HANDLER.format(version=version))


def reload_times(directory: Path, samples: int, restarts: int, tick: Tick | None = None) -> ReloadTimes:
    code = directory / "code"
    code.mkdir()
    _write(code, "v0000")
    times = ReloadTimes([], [], [])
    server, client = _start(code, directory / "state", watch=True)
    try:
        client.post(PATH, b"{}")
        for sample in range(1, samples + 1):
            expected = f'"v{sample:04}"'.encode()  # the same size every time: the bytecode cache's blind spot
            started = time.perf_counter()
            _write(code, f"v{sample:04}")
            polls = 0
            while client.post(PATH, b"{}")[2] != expected:
                polls += 1
            times.reload_s.append(time.perf_counter() - started)
            times.polls.append(polls)
            for _ in range(WARM_INVOKES):
                client.post(PATH, b"{}")
            if tick is not None:
                tick(f"reload {sample}/{samples}")
    finally:
        log = _stop(server, client)
    reloads = log.count("rapidboot: reloaded function: ")
    if reloads != samples:
        raise SystemExit(f"expected {samples} reload lines, the server printed {reloads}:\n{log}")
    for restart in range(1, restarts + 1):
        # A new size each time: a restarted server has no reload to drop the stale bytecode of a same-size
        # edit made within the second (Python checks the source's size and mtime in whole seconds).
        version = "restart" + "x" * restart
        _write(code, version)
        started = time.perf_counter()
        server, client = _start(code, directory / "state", watch=False)
        answer = client.post(PATH, b"{}")[2]
        times.restart_s.append(time.perf_counter() - started)
        _stop(server, client)
        if answer != f'"{version}"'.encode():
            raise SystemExit(f"restarted server answered {answer!r}")
        if tick is not None:
            tick(f"restart {restart}/{restarts}")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=30, help="reloads measured (%(default)s)")
    parser.add_argument("--restarts", type=int, default=5, help="server restarts measured (%(default)s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rapidboot-reload-") as scratch:
        times = reload_times(Path(scratch), args.samples, args.restarts)
    reload_ms = sorted(value * 1000 for value in times.reload_s)
    print(
        f"edit -> first new answer, --watch: median {statistics.median(reload_ms):.1f} ms "
        f"(min {reload_ms[0]:.1f}, max {reload_ms[-1]:.1f}; {len(reload_ms)} samples; "
        f"median {statistics.median(times.polls):.0f} old answers polled first)"
    )
    if times.restart_s:
        restart_ms = [value * 1000 for value in times.restart_s]
        print(f"restart -> first answer, no --watch: median {statistics.median(restart_ms):.1f} ms")
    print(f"on {os.cpu_count()} CPUs; goal: under 150 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
