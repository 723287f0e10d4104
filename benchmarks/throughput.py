"""Throughput and tail latency through `rapidboot serve` with 1, 8 and 64 concurrent clients, and scale-out:
the time for N simultaneous first invokes (N cold environments) end to end.

Each client is a keep-alive HTTP/1.1 connection driven by asyncio (uvloop) in this one process, parsed by
httptools, so the client costs little next to what it measures. The function is trivial (returns its
event); it runs on our bootstrap and on awslambdaric under the same server, measured in alternating rounds.

    python benchmarks/throughput.py [--invokes 4000] [--clients 1,8,64] [--scale-out 16] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httptools
import uvloop

from rapidboot.benchmarks.coldstart import HANDLERS
from rapidboot.benchmarks.local_server import Function, start_server, stop_server, write_config
from rapidboot.benchmarks.peers import Peers, discover, write_handlers
from rapidboot.benchmarks.stats import percentile, summarize

Tick = Callable[[str], None]
_TICKS = os.sysconf("SC_CLK_TCK")
PAYLOAD = b'{"data": "' + b"x" * 1012 + b'"}'


class Client(asyncio.Protocol):
    """One keep-alive connection; `invoke()` sends a request and waits for its whole response."""

    def __init__(self) -> None:
        self._parser = httptools.HttpResponseParser(self)
        self._done: asyncio.Future[int] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        # A connection the server closes mid-invoke fails that invoke instead of hanging the run.
        if self._done is not None and not self._done.done():
            self._done.set_exception(exc or ConnectionError("the server closed the connection"))

    def on_message_complete(self) -> None:
        assert self._done is not None
        self._done.set_result(self._parser.get_status_code())

    async def invoke(self, name: str) -> int:
        assert self.transport is not None
        self._done = asyncio.get_running_loop().create_future()
        head = (
            f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\n"
            f"Host: b\r\nContent-Length: {len(PAYLOAD)}\r\n\r\n"
        )
        self.transport.write(head.encode() + PAYLOAD)
        return await self._done


async def connect(host: str, port: int, count: int) -> list[Client]:
    loop = asyncio.get_running_loop()
    clients = []
    for _ in range(count):
        _, client = await loop.create_connection(Client, host, port)
        clients.append(client)
    return clients


async def load(host: str, port: int, name: str, clients: int, invokes: int) -> tuple[float, list[float], int]:
    connections = await connect(host, port, clients)
    latencies: list[float] = []
    errors = 0
    remaining = invokes

    async def worker(client: Client) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            status = await client.invoke(name)
            latencies.append((time.perf_counter() - started) * 1e6)
            errors += status != 200

    # Warm-up: every client once (starts the environments this concurrency needs), discarded.
    await asyncio.gather(*(client.invoke(name) for client in connections))
    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in connections))
    elapsed = time.perf_counter() - started
    for client in connections:
        assert client.transport is not None
        client.transport.close()
    return elapsed, latencies, errors


async def scale_out(host: str, port: int, name: str, count: int) -> float:
    connections = await connect(host, port, count)
    started = time.perf_counter()
    statuses = await asyncio.gather(*(client.invoke(name) for client in connections))
    elapsed = time.perf_counter() - started
    assert all(status == 200 for status in statuses), statuses
    for client in connections:
        assert client.transport is not None
        client.transport.close()
    return elapsed


@dataclass(slots=True)
class Level:
    """One runtime at one number of clients: invokes per second per round, every invoke's latency, and
    the CPU time per invoke of each round (server with its runtimes, and this client)."""

    rates: list[float]
    latencies_ms: list[float]
    errors: int = 0
    server_cpu_us: list[float] = field(default_factory=list)
    client_cpu_us: list[float] = field(default_factory=list)
    # Per round, the shares of the machine's CPU time (/proc/stat) that no process's CPU time counts: idle,
    # and the kernel's interrupt work (loopback TCP is processed in softirq).
    idle_share: list[float] = field(default_factory=list)
    irq_share: list[float] = field(default_factory=list)

    def cpu_bound(self) -> tuple[float, float, float]:
        """(server + runtimes us, client us, invokes/s): the machine's CPU bound on throughput, all cores
        divided by the CPU one invoke costs end to end (median round)."""
        server = percentile(self.server_cpu_us, 0.5)
        client = percentile(self.client_cpu_us, 0.5)
        return server, client, (os.cpu_count() or 1) * 1e6 / (server + client)


def machine_ticks() -> list[int]:
    """The machine's CPU time so far by kind (/proc/stat's `cpu` line: user nice system idle iowait irq
    softirq steal), in clock ticks; empty where /proc/stat cannot be read."""
    try:
        with open("/proc/stat") as f:
            return [int(value) for value in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return []


def unaccounted_shares(before: list[int], after: list[int]) -> tuple[float, float] | None:
    """(idle, interrupts): the shares of the machine's CPU time between two `machine_ticks` spent idle
    (idle + iowait) and in interrupt work (irq + softirq)."""
    if len(before) < 8 or len(after) < 8:
        return None
    spent = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(spent)
    if total <= 0:
        return None
    return (spent[3] + spent[4]) / total, (spent[5] + spent[6]) / total


def tree_cpu_s(pid: int) -> float:
    """CPU time (utime + stime, /proc/PID/stat) of a process, its reaped children (cutime + cstime), and its
    live descendants: the server, the runtimes it runs, and those it has ended."""
    total = 0.0
    pending = [pid]
    first = True
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            for tid in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{tid}/children") as f:
                    pending += [int(child) for child in f.read().split()]
        except (OSError, ValueError):
            continue
        # Fields 14-17 of proc(5), counted after "pid (comm)": utime, stime, cutime, cstime.
        ticks = int(fields[11]) + int(fields[12])
        if first:
            ticks += int(fields[13]) + int(fields[14])
            first = False
        total += ticks / _TICKS
    return total


def server_config(peers: Peers, directory: Path) -> Path:
    code = directory / "code"
    write_handlers(code, "app", HANDLERS["trivial"])
    functions = [Function(runtime.name, runtime, code) for runtime in peers.runtimes]
    return write_config(directory / "throughput.toml", functions)


def load_levels(
    config: Path, names: list[str], levels: list[int], invokes: int, rounds: int, tick: Tick = lambda _: None
) -> dict[int, dict[str, Level]]:
    """`rounds` rounds of `invokes` invokes at each level for each function, alternating functions."""
    results: dict[int, dict[str, Level]] = {
        level: {name: Level([], []) for name in names} for level in levels
    }
    server, host, port = start_server(config, config.parent / "load.log")
    try:
        for level in levels:
            for _ in range(rounds):
                for name in names:
                    tick(f"{name}, {level} clients")
                    server_s, client_s = tree_cpu_s(server.pid), time.process_time()
                    ticks = machine_ticks()
                    elapsed, latencies, errors = uvloop.run(load(host, port, name, level, invokes))
                    entry = results[level][name]
                    shares = unaccounted_shares(ticks, machine_ticks())
                    if shares is not None:
                        entry.idle_share.append(shares[0])
                        entry.irq_share.append(shares[1])
                    entry.server_cpu_us.append((tree_cpu_s(server.pid) - server_s) / invokes * 1e6)
                    entry.client_cpu_us.append((time.process_time() - client_s) / invokes * 1e6)
                    entry.rates.append(invokes / elapsed)
                    entry.latencies_ms += [value / 1000 for value in latencies]
                    entry.errors += errors
    finally:
        stop_server(server)
    return results


def scale_out_rounds(
    config: Path, names: list[str], count: int, rounds: int, tick: Tick = lambda _: None
) -> dict[str, list[float]]:
    """Milliseconds for `count` simultaneous first invokes, a fresh server each round, alternating."""
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(rounds):
        for name in names:
            tick(name)
            server, host, port = start_server(config, config.parent / "scale.log")
            try:
                times[name].append(uvloop.run(scale_out(host, port, name, count)) * 1000)
            finally:
                stop_server(server)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--invokes", type=int, default=4000)
    parser.add_argument("--clients", default="1,8,64")
    parser.add_argument("--scale-out", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="fresh servers for the scale-out measurement")
    args = parser.parse_args()
    peers = discover()
    names = [runtime.name for runtime in peers.runtimes]
    levels = [int(c) for c in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        config = server_config(peers, Path(tmp))
        print(
            f"throughput, 1 KB event, {args.invokes} invokes per level and runtime ({os.cpu_count()} cores)"
        )
        for level, by_name in load_levels(config, names, levels, args.invokes, 1).items():
            for name, result in by_name.items():
                latency = summarize(result.latencies_ms)
                server_us, client_us, bound = result.cpu_bound()
                print(
                    f"  {level:3d} clients  {name:13} {result.rates[0]:7.0f} invokes/s  "
                    f"p50 {latency.median * 1000:6.0f} us  p99 {latency.p99 * 1000:7.0f} us  "
                    f"errors {result.errors}  CPU/invoke {server_us:.0f}+{client_us:.0f} us, "
                    f"bound {bound:.0f}/s ({result.rates[0] / bound:.2f} of it)"
                )
        times = scale_out_rounds(config, names, args.scale_out, args.rounds)
        print(
            f"scale-out: {args.scale_out} simultaneous first invokes (cold environments), "
            f"{args.rounds} rounds"
        )
        for name, values in times.items():
            s = summarize(values)
            print(f"  {name:13} median {s.median:.0f} ms (min {s.min:.0f}, max {s.max:.0f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
