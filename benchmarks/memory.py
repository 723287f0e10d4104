"""Memory: the idle RSS of one execution environment per runtime, and `rapidboot serve`'s own RSS with
many idle environments (100 by default) against its RSS with none.

Each runtime gets a function with N provisioned environments: the server initialises all N before it says
it is listening, and they stay parked on `/next`, as Lambda would freeze them. RSS is VmRSS from
`/proc/<pid>/status` (shared pages count in every process, as `ps` shows them).

    python benchmarks/memory.py [--environments 100]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rapidboot.benchmarks.coldstart import HANDLERS, rss_kib
from rapidboot.benchmarks.local_server import Function, start_server, stop_server, write_config
from rapidboot.benchmarks.peers import Peers, discover, write_handlers
from rapidboot.benchmarks.stats import summarize


@dataclass(slots=True)
class Memory:
    environments_mib: dict[str, list[float]]  # runtime -> RSS of each idle environment
    server_idle_mib: float  # the server with no environment
    server_loaded_mib: dict[str, float]  # runtime -> the server's RSS while it holds N of its environments
    count: int


def children(pid: int) -> list[int]:
    """Direct children of `pid` that are runtimes (each leads its own session): not the server's one
    supervisor process (rapid_server/data_plane/containment.py), whose RSS is the server's own cost."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may contain spaces and parentheses; split after the last ")".
        if int(stat.rpartition(")")[2].split()[1]) == pid and b"supervise" not in cmdline:
            found.append(int(entry.name))
    return found


def idle_memory(
    peers: Peers, directory: Path, count: int, tick: Callable[[str], None] = lambda _: None
) -> Memory:
    code = directory / "code"
    write_handlers(code, "app", HANDLERS["trivial"])
    empty = write_config(directory / "empty.toml", [Function("empty", peers.runtimes[0], code)])
    tick("server with no environment")
    server, _, _ = start_server(empty, directory / "memory.log")
    try:
        server_idle = rss_kib(server.pid) / 1024
    finally:
        stop_server(server)
    environments: dict[str, list[float]] = {}
    loaded: dict[str, float] = {}
    for runtime in peers.runtimes:
        tick(f"{count} idle {runtime.name} environments")
        function = Function(runtime.name, runtime, code, options={"provisioned_concurrency": count})
        config = write_config(directory / f"memory-{runtime.name}.toml", [function])
        server, _, _ = start_server(config, directory / "memory.log")
        try:
            pids = children(server.pid)
            if len(pids) != count:
                raise RuntimeError(f"{runtime.name}: {len(pids)} runtime processes, expected {count}")
            environments[runtime.name] = [rss_kib(pid) / 1024 for pid in pids]
            loaded[runtime.name] = rss_kib(server.pid) / 1024
        finally:
            stop_server(server)
    return Memory(environments, server_idle, loaded, count)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--environments", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        memory = idle_memory(discover(), Path(tmp), args.environments)
    print(f"rapidboot serve RSS with no environment: {memory.server_idle_mib:.1f} MiB")
    for name, values in memory.environments_mib.items():
        s = summarize(values)
        print(
            f"  {name:13} idle environment RSS median {s.median:.1f} MiB ({s.min:.1f}-{s.max:.1f}); "
            f"server RSS with {memory.count} of them {memory.server_loaded_mib[name]:.1f} MiB"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
