"""SnapStart (issue 17) through `rapidboot serve`: environments forked from an initialised template, against
the same function spawned, in the same run and the same server.

- cold start: invoke -> response for an invoke that starts a new environment, trivial and boto3 handlers,
  `snap_start = true` against the same function without it. After each sample the environment's runtime is
  killed (SIGKILL, its pid from the answer) and the next sample waits until it is gone, so each sample is a
  new environment's first invoke; samples alternate between the two functions.
- scale-out: N simultaneous first invokes of the boto3 function (N new environments) on a fresh server,
  with and without SnapStart: total time, and the memory of all environments at the end (the sum of each
  runtime process's unique pages, USS from /proc/PID/smaps_rollup: what each one costs the machine; the
  shared template pages are counted once, as the template's own line).
- the template's one-time init (its INIT, before any environment): from the server's log line.

    python benchmarks/snapstart.py [--spawns 20] [--scale-out 64] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import uvloop

from rapidboot.benchmarks.coldstart import HANDLERS
from rapidboot.benchmarks.invoke_client import InvokeClient
from rapidboot.benchmarks.local_server import invoke_path, start_server, stop_server
from rapidboot.benchmarks.throughput import connect

Tick = Callable[[str], None]
TEMPLATE_READY = re.compile(r"SnapStart template of (\S+) initialised in ([0-9.]+) ms")
PID_HANDLER = "\n\nimport os\n\n\ndef pid(event, context):\n    return os.getpid()\n"
_GONE_BOUND_S = 10.0


def write_functions(directory: Path, handlers: list[str], idle_timeout: float = 600) -> Path:
    """`<handler>` and `<handler>_snap` for each handler: the same code, spawned and forked."""
    lines = []
    for handler in handlers:
        code = directory / handler
        code.mkdir(parents=True, exist_ok=True)
        (code / "app.py").write_text(HANDLERS[handler] + PID_HANDLER)
        for name, snap in ((handler, False), (f"{handler}_snap", True)):
            lines += [
                f"[functions.{name}]",
                f"code = {json.dumps(str(code))}",
                'handler = "app.pid"',
                "memory = 512",
                f"idle_timeout = {idle_timeout}",
                f"snap_start = {'true' if snap else 'false'}",
                "",
            ]
    config = directory / "snapstart.toml"
    config.write_text("\n".join(lines))
    return config


def _wait_gone(pid: int) -> None:
    deadline = time.monotonic() + _GONE_BOUND_S
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.001)  # a benchmark's wait for the kill to land, not a test's synchronisation
    time.sleep(0.005)  # and for the server to have seen it (its exit is watched through a pidfd)


def cold_starts(
    config: Path, handlers: list[str], spawns: int, tick: Tick = lambda _: None
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Milliseconds from invoke to response for new environments, by function; and each template's init."""
    samples: dict[str, list[float]] = {}
    server, host, port = start_server(config, config.parent / "cold.log")
    try:
        client = InvokeClient(host, port)
        names = [name for handler in handlers for name in (handler, f"{handler}_snap")]
        for name in names:  # the templates are ready before anything is measured (their init is apart)
            status, _, body = client.post(invoke_path(name), b"{}")
            assert status == 200, body
            os.kill(int(body), signal.SIGKILL)
            _wait_gone(int(body))
        for _ in range(spawns):
            for name in names:
                tick(name)
                started = time.perf_counter()
                status, _, body = client.post(invoke_path(name), b"{}")
                samples.setdefault(name, []).append((time.perf_counter() - started) * 1000)
                assert status == 200, body
                os.kill(int(body), signal.SIGKILL)
                _wait_gone(int(body))
        client.close()
    finally:
        stop_server(server)
    inits = {
        match.group(1): float(match.group(2))
        for line in (config.parent / "cold.log").read_text().splitlines()
        if (match := TEMPLATE_READY.search(line))
    }
    return samples, inits


FORK_FLOOR = """
import gc, json, os, socket, sys, time
sys.path.insert(0, sys.argv[1])
import app  # the handler's module, initialised once, as in a template
gc.freeze()
listener = socket.create_server(("127.0.0.1", 0))
samples = []
for _ in range(int(sys.argv[2])):
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        with socket.create_connection(listener.getsockname()) as sock:
            sock.sendall(b"x")
        os._exit(0)
    connection, _ = listener.accept()
    connection.recv(1)
    samples.append((time.perf_counter() - started) * 1000)
    connection.close()
    os.waitpid(pid, 0)
print(json.dumps(samples))
"""


def fork_floor(code: Path, samples: int) -> list[float]:
    """The floor of a forked cold start on this machine, now: ms from `fork` of a process that imported the
    handler's module to the child's first TCP connection reaching its parent (no server, no runtime)."""
    script = code.parent / "fork_floor.py"
    script.write_text(FORK_FLOOR)
    output = subprocess.run(
        [sys.executable, str(script), str(code), str(samples)], check=True, capture_output=True, text=True
    ).stdout
    values: list[float] = json.loads(output)
    return values


def _uss_bytes(pid: int) -> int:
    """Unique set size: the pages only this process maps (Private_Clean + Private_Dirty)."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1]) * 1024
    except OSError:
        return 0
    return total


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def _first_invokes(host: str, port: int, name: str, count: int) -> float:
    connections = await connect(host, port, count)
    started = time.perf_counter()
    statuses = await asyncio.gather(*(client.invoke(name) for client in connections))
    elapsed = time.perf_counter() - started
    assert all(status == 200 for status in statuses), statuses
    for client in connections:
        assert client.transport is not None
        client.transport.close()
    return elapsed


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rpartition(")")[2].split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def _runtime_pids(server_pid: int, name: str) -> tuple[list[int], list[int]]:
    """`name`'s environments' runtimes and its templates. A forked runtime's /proc/PID/environ still shows
    the template's start-up environment, so forks are found as the template's children."""
    spawned, templates = [], []
    pids = [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                variables = environ.read().split(b"\0")
        except OSError:
            continue
        if f"AWS_LAMBDA_FUNCTION_NAME={name}".encode() not in variables:
            continue
        if any(v.startswith(b"_RAPIDBOOT_TEMPLATE_FD=") for v in variables):
            if _parent(pid) == server_pid:
                templates.append(pid)
        elif _parent(pid) == server_pid:
            spawned.append(pid)
    forked = [pid for pid in pids if _parent(pid) in templates]
    return spawned + forked, templates


def scale_out(
    config: Path, handler: str, count: int, rounds: int, tick: Tick = lambda _: None
) -> dict[str, dict[str, list[float]]]:
    """For `handler` and `handler_snap`: ms for `count` simultaneous first invokes (a fresh server each
    round), and the memory (MB) of all environments after them: their summed USS, and the template's RSS."""
    results: dict[str, dict[str, list[float]]] = {}
    for _ in range(rounds):
        for name in (handler, f"{handler}_snap"):
            tick(name)
            server, host, port = start_server(config, config.parent / "scale.log")
            try:
                if name.endswith("_snap"):  # the template's init is its own row, not the burst's
                    probe = InvokeClient(host, port)
                    status, _, body = probe.post(invoke_path(name), b"{}")
                    assert status == 200, body
                    probe.close()
                elapsed = uvloop.run(_first_invokes(host, port, name, count))
                environments, templates = _runtime_pids(server.pid, name)
                entry = results.setdefault(name, {"ms": [], "uss_mb": [], "rss_mb": [], "template_mb": []})
                entry["ms"].append(elapsed * 1000)
                entry["uss_mb"].append(sum(map(_uss_bytes, environments)) / 2**20)
                entry["rss_mb"].append(sum(map(_rss_bytes, environments)) / 2**20)
                entry["template_mb"].append(sum(map(_rss_bytes, templates)) / 2**20)
            finally:
                stop_server(server)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--spawns", type=int, default=20, help="cold starts of each function")
    parser.add_argument("--scale-out", type=int, default=64, help="simultaneous first invokes")
    parser.add_argument("--rounds", type=int, default=2, help="fresh servers for the scale-out")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rapidboot-snapstart-") as scratch:
        config = write_functions(Path(scratch), ["trivial", "boto3"])
        samples, inits = cold_starts(config, ["trivial", "boto3"], args.spawns)
        for name, values in samples.items():
            print(f"cold start {name:14} median {statistics.median(values):8.2f} ms  (n={len(values)})")
        for handler in ("trivial", "boto3"):
            floor = fork_floor(Path(scratch) / handler, args.spawns)
            print(f"floor: fork -> connect, {handler:7} median {statistics.median(floor):8.2f} ms")
        for name, init_ms in inits.items():
            print(f"template init {name:11} {init_ms:8.2f} ms")
        scaled = scale_out(config, "boto3", args.scale_out, args.rounds)
        for name, entry in scaled.items():
            print(
                f"scale-out {args.scale_out} x {name:11} median {statistics.median(entry['ms']):8.1f} ms; "
                f"environments' USS {statistics.median(entry['uss_mb']):7.1f} MB, "
                f"RSS {statistics.median(entry['rss_mb']):7.1f} MB; template RSS "
                f"{statistics.median(entry['template_mb']):6.1f} MB"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
