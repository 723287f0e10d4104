"""The Runtime API's per-connection peer check (rapid_server/data_plane/peers.py), paid once per accepted
connection.

`pytest benchmarks/test_micro_peers.py` (pytest-benchmark) times the check on one connection; run as a
script, it opens many fresh connections from a child process and reports the median per connection:

    python benchmarks/test_micro_peers.py --connections 500

Cases: the peer is the environment's runtime (the usual one: its own descriptors are searched first),
the peer is a descendant (the process tree is walked), and a refused peer (the check, then the scan of
every process for the log line's pid).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from rapidboot.rapid_server.data_plane.peers import PeerCheck, detect_peer_check

# A child that opens `count` connections one after another, each held until the parent says "next".
_CONNECTOR = """
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
for _ in range(count):
    sock = socket.create_connection(("127.0.0.1", port))
    print("connected", flush=True)
    sys.stdin.readline()
    sock.close()
"""


def connections(count: int) -> Iterator[tuple[socket.socket, int]]:
    """`count` accepted connections, each from the same child process (yielded with its pid)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = str(listener.getsockname()[1])
        child = subprocess.Popen(
            [sys.executable, "-c", _CONNECTOR, port, str(count)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None and child.stdout is not None
        try:
            for _ in range(count):
                child.stdout.readline()
                accepted, _ = listener.accept()
                with accepted:
                    yield accepted, child.pid
                child.stdin.write("next\n")
                child.stdin.flush()
        finally:
            child.stdin.close()
            child.wait(10)


def _bystander() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)


@pytest.fixture(scope="module")
def check() -> Iterator[PeerCheck]:
    peers = detect_peer_check()
    if not peers.enabled:
        pytest.skip(peers.description)
    yield peers
    peers.close()


def test_peer_is_the_runtime(benchmark: BenchmarkFixture, check: PeerCheck) -> None:
    for accepted, pid in connections(1):
        assert benchmark(check.owned_by, accepted, pid)


def test_peer_is_a_descendant(benchmark: BenchmarkFixture, check: PeerCheck) -> None:
    for accepted, _ in connections(1):
        assert benchmark(check.owned_by, accepted, os.getpid())


def _time(check: Callable[..., object], samples: list[float], *args: object) -> None:
    started = time.perf_counter()
    check(*args)
    samples.append((time.perf_counter() - started) * 1e6)


def _refuse(peers: PeerCheck, accepted: socket.socket, root_pid: int) -> object:
    return peers.owned_by(accepted, root_pid) or peers.foreign_owner(accepted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=500)
    args = parser.parse_args()
    peers = detect_peer_check()
    print(peers.description)
    bystander = _bystander()
    cases: dict[str, list[float]] = {"runtime": [], "descendant": [], "refused (check + log scan)": []}
    try:
        for accepted, pid in connections(args.connections):
            _time(peers.owned_by, cases["runtime"], accepted, pid)
            _time(peers.owned_by, cases["descendant"], accepted, os.getpid())
            _time(_refuse, cases["refused (check + log scan)"], peers, accepted, bystander.pid)
    finally:
        assert bystander.stdin is not None
        bystander.stdin.close()
        bystander.wait(10)
        peers.close()
    for name, samples in cases.items():
        ordered = sorted(samples)
        p90 = ordered[int(len(ordered) * 0.9)]
        median = statistics.median(samples)
        print(f"  {name:28} median {median:8.1f} us  p90 {p90:8.1f} us  (n={len(samples)})")


if __name__ == "__main__":
    main()
