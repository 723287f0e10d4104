"""Throughput and tail latency through `rapidboot serve` with 1, 8 and 64 concurrent clients, and scale-out:
the time for N simultaneous first invokes (N cold environments) end to end.

Each client is a keep-alive HTTP/1.1 connection driven by asyncio (uvloop) in this one process, parsed by
httptools, so the client costs little next to what it measures. The function is trivial (returns its
event) and runs on our bootstrap.

    python benchmarks/throughput.py [--invokes 4000] [--clients 1,8,64] [--scale-out 16] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import httptools
import uvloop
from local_server import start_server, stop_server

HANDLER = "def handler(event, context):\n    return event\n"
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


async def load(host: str, port: int, clients: int, invokes: int) -> tuple[float, list[float], int]:
    connections = await connect(host, port, clients)
    latencies: list[float] = []
    errors = 0
    remaining = invokes

    async def worker(client: Client) -> None:
        nonlocal remaining, errors
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            status = await client.invoke("echo")
            latencies.append((time.perf_counter() - started) * 1e6)
            errors += status != 200

    # Warm-up: every client once (starts the environments this concurrency needs), discarded.
    await asyncio.gather(*(client.invoke("echo") for client in connections))
    started = time.perf_counter()
    await asyncio.gather(*(worker(client) for client in connections))
    elapsed = time.perf_counter() - started
    for client in connections:
        assert client.transport is not None
        client.transport.close()
    return elapsed, latencies, errors


async def scale_out(host: str, port: int, count: int) -> float:
    connections = await connect(host, port, count)
    started = time.perf_counter()
    statuses = await asyncio.gather(*(client.invoke("echo") for client in connections))
    elapsed = time.perf_counter() - started
    assert all(status == 200 for status in statuses), statuses
    for client in connections:
        assert client.transport is not None
        client.transport.close()
    return elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invokes", type=int, default=4000)
    parser.add_argument("--clients", default="1,8,64")
    parser.add_argument("--scale-out", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5, help="fresh servers for the scale-out measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "code").mkdir()
        (root / "code" / "app.py").write_text(HANDLER)
        config = root / "rapidboot.toml"
        config.write_text('[functions.echo]\ncode = "code"\nhandler = "app.handler"\n')

        server, host, port = start_server(config, root / "load.log")
        print(f"throughput, 1 KB event, {args.invokes} invokes per level ({os.cpu_count()} cores)")
        base = None
        try:
            for clients in (int(c) for c in args.clients.split(",")):
                elapsed, latencies, errors = uvloop.run(load(host, port, clients, args.invokes))
                rate = args.invokes / elapsed
                base = base or rate
                print(
                    f"  {clients:3d} clients  {rate:7.0f} invokes/s  x{rate / base:4.2f}  "
                    f"p50 {statistics.median(latencies):6.0f} us  p99 {percentile(latencies, 0.99):7.0f} us  "
                    f"errors {errors}"
                )
        finally:
            stop_server(server)

        times = []
        for _ in range(args.rounds):
            server, host, port = start_server(config, root / "scale.log")
            try:
                times.append(uvloop.run(scale_out(host, port, args.scale_out)) * 1000)
            finally:
                stop_server(server)
        print(
            f"scale-out: {args.scale_out} simultaneous first invokes (cold environments), "
            f"{args.rounds} rounds: "
            f"median {statistics.median(times):.0f} ms (min {min(times):.0f}, max {max(times):.0f})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
