"""A/B of the warm invoke path of two source trees: latency and CPU per invoke, in one process.

Each tree's `rapidboot serve` runs side by side (the tree first on PYTHONPATH, so its server and its
bootstrap are the ones run), one trivial echo function on our bootstrap each. Batches of `--batch` warm
1 KB invokes alternate between them (A B A B ...) over the raw-socket client (invoke_client.py), so machine
noise hits both alike. Per batch it reads the CPU time (utime + stime, /proc/PID/stat) of the server, of
the runtime, and of this client, before and after: CPU time is far less sensitive to a loaded machine than
latency. It prints the medians per invoke, and the ratio B/A.

    python benchmarks/ab_cpu.py --tree A=/tmp/base --tree B=. [--batches 20] [--batch 500]

With one tree, it measures that tree alone. `--relay-floor` adds the server's physical floor: a bare relay
process that does a warm invoke's I/O and nothing else, with blocking sockets and length-prefixed frames, no
HTTP: it reads the caller's event, sends it to a bare "runtime", reads its answer, sends it a short ack (the
202), reads its short "next", and sends the answer to the caller. Three sends and three receives, as the
server's; its CPU per invoke is what the kernel charges for them on this machine. `--python-floor` adds
the Python server floor (python_floor.py): the leanest Invoke API + Runtime API relay on the server's own
stack (uvloop, httptools), running our bootstrap: what any Python server spends on the three HTTP exchanges.
Both floors are measured in the same interleaved batches as the trees.

    python benchmarks/ab_cpu.py --tree B=. --python-floor --relay-floor --batches 10 --batch 300
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rapidboot.benchmarks.coldstart import HANDLERS
from rapidboot.benchmarks.invoke_client import InvokeClient
from rapidboot.benchmarks.local_server import invoke_path, launch_server
from rapidboot.benchmarks.peers import write_handlers
from rapidboot.benchmarks.python_floor import PythonFloor
from rapidboot.benchmarks.stats import percentile

READY = re.compile(r"listening on http://([0-9.]+):(\d+)")
PAYLOAD = b'{"data": "' + b"x" * 1012 + b'"}'
_TICKS = os.sysconf("SC_CLK_TCK")
_FRAMES = """\
import socket, struct, sys
FRAME = struct.Struct("!Q")
def read(conn):
    head = b""
    while len(head) < 8:
        got = conn.recv(8 - len(head))
        if not got:
            sys.exit(0)
        head += got
    (size,) = FRAME.unpack(head)
    body = bytearray(size)
    view, have = memoryview(body), 0
    while have < size:
        got = conn.recv_into(view[have:])
        if not got:
            sys.exit(0)
        have += got
    return body
def send(conn, body):
    conn.sendmsg([FRAME.pack(len(body)), body])
"""
RELAY = (
    _FRAMES
    + """\
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
runtime, _ = listener.accept()
print("runtime connected", flush=True)  # the caller connects after this line: accepted second
caller, _ = listener.accept()
for conn in (runtime, caller):
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
read(runtime)  # its first "next"
while True:
    send(runtime, read(caller))  # the event
    answer = read(runtime)  # the response
    send(runtime, b"HTTP/1.1 202 Accepted")
    send(caller, answer)
    read(runtime)  # the next "next"
"""
)
RUNTIME = (
    _FRAMES
    + """\
conn = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
send(conn, b"GET /next")
while True:
    send(conn, read(conn))
    read(conn)
    send(conn, b"GET /next")
"""
)


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), in seconds: whole clock ticks (10 ms here)."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # fields 14 and 15 of proc(5), after "pid (comm)"


def cpu_ns(pid: int) -> int:
    """Time on CPU of one process's live threads, in ns (the scheduler's own count, /proc/PID/task/TID/
    schedstat): precise enough for one batch, where /proc/PID/stat's 10 ms ticks are not."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat", "rb") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError):
            continue
    return total


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    pending = [pid]
    while pending:
        parent = pending.pop()
        for tid in os.listdir(f"/proc/{parent}/task"):
            with open(f"/proc/{parent}/task/{tid}/children") as f:
                children = [int(child) for child in f.read().split()]
            found += children
            pending += children
    return found


@dataclass
class Side:
    name: str
    tree: Path
    server: subprocess.Popen[str]
    client: InvokeClient | FrameClient
    runtime_pid: int = 0
    latency_ms: list[float] = field(default_factory=list)
    server_us: list[float] = field(default_factory=list)
    runtime_us: list[float] = field(default_factory=list)
    client_us: list[float] = field(default_factory=list)
    stat_start: float = 0.0  # server + runtime utime + stime (/proc/PID/stat) when the batches began
    stat_us: float = 0.0  # the same over all batches, per invoke: the coarse cross-check
    helper: subprocess.Popen[bytes] | None = None  # the relay floor's bare runtime
    floor: bool = False  # a floor, not a tree: never one side of the trees' ratio


class FrameClient:
    """The caller of the relay floor: `post` sends a length-prefixed frame and reads one back."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def post(self, path: str, body: bytes) -> tuple[int, dict[bytes, bytes], bytes]:
        self._sock.sendmsg([struct.pack("!Q", len(body)), body])
        head = self._recv_exactly(8)
        return 200, {}, self._recv_exactly(struct.unpack("!Q", head)[0])

    def _recv_exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            got = self._sock.recv(size - len(data))
            if not got:
                raise ConnectionError("the relay closed the connection")
            data += got
        return data

    def close(self) -> None:
        self._sock.close()


def start_relay_floor() -> Side:
    relay = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", RELAY], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    assert relay.stdout is not None
    port = relay.stdout.readline().strip()
    runtime = subprocess.Popen([sys.executable, "-I", "-S", "-c", RUNTIME, port], stdin=subprocess.DEVNULL)
    relay.stdout.readline()
    sock = socket.create_connection(("127.0.0.1", int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    side = Side("relay", Path(), relay, FrameClient(sock), runtime.pid, floor=True)
    side.helper = runtime
    invoke(side, 50)
    return side


def start_python_floor(directory: Path) -> Side:
    """The relay of python_floor.py, on this process's own rapidboot (its bootstrap is the runtime)."""
    relay = PythonFloor.start(directory / "python-floor.log")
    side = Side("pyfloor", Path(), relay.process, InvokeClient(relay.host, relay.port), relay.runtime_pid)
    side.floor = True
    invoke(side, 50)
    return side


def start(name: str, tree: Path, directory: Path) -> Side:
    code = directory / "code"
    if not code.exists():
        write_handlers(code, "app", HANDLERS["trivial"])
    config = directory / f"{name}.toml"
    config.write_text(f'[functions.echo]\ncode = "{code}"\nhandler = "app.handler"\n')
    # Started in the tree: `python -m` puts the working directory first on sys.path, ahead of PYTHONPATH,
    # and a checkout's `rapidboot/` there would be imported in place of the tree's.
    server, host, port = launch_server(
        ["--config", str(config), "--state-dir", str(directory / f"state-{name}")],
        directory / f"{name}.log",
        env=dict(os.environ, PYTHONPATH=str(tree)),
        cwd=tree,
    )
    side = Side(name, tree, server, InvokeClient(host, port))
    invoke(side, 50)
    runtimes = [pid for pid in descendants(server.pid) if _is_bootstrap(pid)]
    if len(runtimes) != 1:
        raise SystemExit(f"{name}: expected one runtime process, found {runtimes}")
    side.runtime_pid = runtimes[0]
    with open(f"/proc/{side.runtime_pid}/cmdline", "rb") as f:
        command_line = f.read().replace(b"\0", b" ").decode(errors="replace")
    if (tree / "bootstrap").is_file() and str(tree.resolve() / "bootstrap") not in command_line:
        # The server runs the bootstrap next to its own code: any other means it imported another tree.
        raise SystemExit(f"{name}: the server did not run {tree}'s code (its runtime is {command_line!r})")
    return side


def _is_bootstrap(pid: int) -> bool:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return b"bootstrap" in f.read()


def invoke(side: Side, count: int, payload: bytes = PAYLOAD) -> list[float]:
    path = invoke_path("echo")
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        status, _, body = side.client.post(path, payload)
        timings.append((time.perf_counter() - started) * 1000)
        if status != 200 or len(body) < len(payload) - 8:
            raise SystemExit(f"{side.name}: unexpected answer {status} {bytes(body[:200])!r}")
    return timings


def batch(side: Side, count: int, payload: bytes) -> None:
    server0, runtime0 = cpu_ns(side.server.pid), cpu_ns(side.runtime_pid)
    client0 = time.thread_time_ns()
    timings = invoke(side, count, payload)
    client1 = time.thread_time_ns()
    server1, runtime1 = cpu_ns(side.server.pid), cpu_ns(side.runtime_pid)
    side.latency_ms.append(percentile(timings, 0.5))
    side.server_us.append((server1 - server0) / count / 1e3)
    side.runtime_us.append((runtime1 - runtime0) / count / 1e3)
    side.client_us.append((client1 - client0) / count / 1e3)


def median(values: list[float]) -> float:
    return percentile(values, 0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of a source tree")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--batch", type=int, default=500, help="invokes per batch")
    parser.add_argument("--payload-bytes", type=int, default=len(PAYLOAD), help="the event's size (JSON)")
    parser.add_argument("--relay-floor", action="store_true", help="add the bare relay (the server's floor)")
    parser.add_argument(
        "--python-floor",
        action="store_true",
        help="add the leanest relay on the server's stack (python_floor.py)",
    )
    args = parser.parse_args()
    payload = b'{"data": "' + b"x" * max(0, args.payload_bytes - 12) + b'"}'
    with tempfile.TemporaryDirectory(prefix="ab-cpu-") as tmp:
        sides: list[Side] = []
        try:
            for spec in args.tree:
                name, _, path = spec.partition("=")
                sides.append(start(name, Path(path).resolve(), Path(tmp)))
            if args.python_floor:
                sides.append(start_python_floor(Path(tmp)))
            if args.relay_floor:
                sides.append(start_relay_floor())
            for side in sides:
                side.stat_start = cpu_seconds(side.server.pid) + cpu_seconds(side.runtime_pid)
            for _ in range(args.batches):
                for side in sides:
                    batch(side, args.batch, payload)
            for side in sides:
                spent = cpu_seconds(side.server.pid) + cpu_seconds(side.runtime_pid) - side.stat_start
                side.stat_us = spent / (args.batches * args.batch) * 1e6
        finally:
            for side in sides:
                side.client.close()
                side.server.terminate()
                side.server.wait(timeout=15)
                if side.helper is not None:
                    side.helper.wait(timeout=15)
    print(f"{args.batches} batches x {args.batch} warm {len(payload)} B invokes, interleaved; batch medians")
    print("CPU per invoke: schedstat per batch (median); server+runtime also from /proc/PID/stat over all")
    head = f"{'':7} {'p50 ms':>8} {'server us':>10} {'runtime us':>11} {'client us':>10} {'total us':>9}"
    print(head + f" {'srv+rt (stat)':>14}")
    for side in sides:
        total = median(
            [s + r + c for s, r, c in zip(side.server_us, side.runtime_us, side.client_us, strict=True)]
        )
        print(
            f"{side.name:7} {median(side.latency_ms):8.3f} {median(side.server_us):10.1f} "
            f"{median(side.runtime_us):11.1f} {median(side.client_us):10.1f} {total:9.1f} "
            f"{side.stat_us:14.1f}"
        )
    trees = [side for side in sides if not side.floor]
    if len(trees) == 2:
        a, b = trees

        # The median of each round's own ratio (B's batch over the A batch beside it): a drift in the
        # machine's load between rounds cancels out, where a ratio of the two medians keeps it.
        def paired(first: list[float], second: list[float]) -> float:
            return median([y / x for x, y in zip(first, second, strict=True)])

        print(
            f"ratio {b.name}/{a.name}, median of the rounds' own ratios: "
            f"p50 {paired(a.latency_ms, b.latency_ms):.3f}, "
            f"server CPU {paired(a.server_us, b.server_us):.3f}, "
            f"runtime CPU {paired(a.runtime_us, b.runtime_us):.3f}"
        )


if __name__ == "__main__":
    main()
