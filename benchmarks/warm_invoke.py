"""Warm invoke latency through a server, and Init Duration checked against our own clock.

Warm: one realistic full cycle per sample: a keep-alive HTTP client POSTs an event to the Invoke API, the
server hands it to the runtime, the runtime calls the handler (an echo) and posts the result back, the
caller reads the response. Events are structured JSON of 1 KB, 100 KB or 3 MB. The contenders are our
server with our bootstrap, our server with awslambdaric (and the Node client with `--node-ric`), and with
`--rie PATH` AWS's emulator with either runtime. They are measured interleaved (A B A B ...) after
discarded warm-ups, so machine noise hits all alike.

Init: each sample is the first invoke of a fresh environment whose handler returns the CLOCK_MONOTONIC time
at which it runs. The harness reads the same clock just before sending the invoke, so its interval (invoke
sent -> handler running) must contain the server's Init Duration (spawn -> the runtime's first `/next`);
and the harness also spawns the same runtime itself and times its first `/next`: the REPORT's median must
agree with that within 1 ms. An emulator that reports an Init Duration that measures nothing shows up here.

    python benchmarks/warm_invoke.py [--samples 2000] [--payload-bytes 1024] [--init 20] [--rie PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from rapidboot.benchmarks.ab_cpu import cpu_ns
from rapidboot.benchmarks.coldstart import (
    HANDLERS,
    ContenderFailed,
    big_event,
    cold_start,
    contenders,
    error_text,
)
from rapidboot.benchmarks.floor import FloorClient
from rapidboot.benchmarks.invoke_client import InvokeClient
from rapidboot.benchmarks.local_server import (
    Function,
    init_durations,
    invoke_path,
    start_server,
    stop_server,
    write_config,
)
from rapidboot.benchmarks.peers import Peers, discover, write_handlers
from rapidboot.benchmarks.results import FLOOR, PEER, REFERENCE
from rapidboot.benchmarks.rie import INVOKE_PATH, Emulator
from rapidboot.benchmarks.stats import summarize

CLOCK_HANDLER = (
    "import time\n\n\ndef handler(event, context):\n"
    '    return {"monotonic_ns": time.clock_gettime_ns(time.CLOCK_MONOTONIC)}\n'
)
PAYLOAD_SIZES = {"1 KB": 1024, "100 KB": 100 * 1024, "3 MB": 3 * 1024 * 1024}
Tick = Callable[[str], None]


class Client(Protocol):
    def post(self, path: str, body: bytes) -> tuple[int, dict[bytes, bytes], bytes | bytearray]: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class Target:
    """One contender behind an Invoke API (or the floor): where to POST, and the open connection."""

    name: str
    role: str
    client: Client
    path: str
    server_pid: int = 0  # the process that serves it (its CPU per invoke: `server_cpu_us`); 0: not known


@contextmanager
def warm_targets(peers: Peers, directory: Path) -> Iterator[list[Target]]:
    """Every contender, started and connected: one server per runtime, as one emulator per runtime, and the
    floor (floor.py). A server of its own each, so that in the interleaved samples every contender's turn
    finds its own processes idle since its last turn: with one server for two runtimes, the second runtime's
    turn found the server just run by the first (warm caches), and its invokes measured ~0.2 ms faster
    against the first's than back to back. Our bootstrap under the emulator is a reference in the rows that
    compare whole stacks (it is half ours); `emulator_row` compares it with awslambdaric on the emulator."""
    code = directory / "code"
    write_handlers(code, "app", HANDLERS["trivial"])
    with ExitStack() as stack:
        targets = []
        for runtime in peers.runtimes:
            home = directory / runtime.name
            home.mkdir()
            config = write_config(home / "warm.toml", [Function(runtime.name, runtime, code)])
            server, host, port = start_server(config, home / "warm.log")
            stack.callback(stop_server, server)
            client = InvokeClient(host, port)
            stack.callback(client.close)
            targets.append(Target(runtime.name, runtime.role, client, invoke_path(runtime.name), server.pid))
        if peers.rie is not None:
            for runtime in peers.runtimes:
                emulator = Emulator(
                    peers.rie,
                    runtime.argv(runtime.handler_for("app")),
                    code,
                    directory / f"rie-{runtime.name}.log",
                )
                stack.callback(emulator.stop)
                client = InvokeClient(emulator.host, emulator.port)
                stack.callback(client.close)
                role = REFERENCE if runtime.name == "rapidboot" else PEER
                targets.append(Target(f"rie+{runtime.name}", role, client, INVOKE_PATH))
        floor = FloorClient()
        stack.callback(floor.close)
        targets.append(Target(FLOOR, REFERENCE, floor, ""))
        yield targets


def warm_samples(
    targets: list[Target],
    payload: bytes,
    samples: int,
    warmups: int,
    tick: Tick = lambda _: None,
    echo: bool = True,
) -> dict[str, list[float]]:
    """Milliseconds per invoke of each target, interleaved, after `warmups` discarded invokes each. The
    function echoes the event (`echo`), or answers anything but an error (a user's own function)."""
    expected = json.loads(payload)  # runtimes differ in whitespace (ours writes compact JSON)

    def invoke(target: Target) -> float:
        start = time.perf_counter()
        status, headers, body = target.client.post(target.path, payload)
        elapsed = (time.perf_counter() - start) * 1000
        if status != 200 or b"x-amz-function-error" in headers:
            raise ContenderFailed(target.name, error_text(body))
        if echo and json.loads(body) != expected:
            raise ContenderFailed(target.name, f"unexpected response {status} {body[:200]!r}")
        return elapsed

    for target in targets:
        for _ in range(warmups):
            invoke(target)
    timings: dict[str, list[float]] = {target.name: [] for target in targets}
    for _ in range(samples):
        for target in targets:
            tick(target.name)
            timings[target.name].append(invoke(target))
    return timings


def back_to_back_samples(
    targets: list[Target],
    payload: bytes,
    rounds: int,
    batch: int,
    warmups: int,
    tick: Tick = lambda _: None,
) -> dict[str, list[float]]:
    """Milliseconds per invoke of each target, `batch` invokes back to back per turn, the targets taking
    turns for `rounds` rounds: a busy function's burst, where `warm_samples` (one invoke per turn) finds
    every process idle, and its caches taken by the others, since its last turn. The first `warmups` of
    each turn are discarded: they are that case again."""
    timings: dict[str, list[float]] = {target.name: [] for target in targets}
    for _ in range(rounds):
        for target in targets:
            timings[target.name] += warm_samples([target], payload, batch, warmups, tick)[target.name]
    return timings


def server_cpu_us(
    targets: list[Target], payload: bytes, batches: int, batch: int, tick: Tick = lambda _: None
) -> dict[str, float]:
    """The server CPU per warm invoke (us) of each target with a `server_pid`: the scheduler's own count for
    that process (schedstat, ns) before and after each batch of `batch` back-to-back invokes, in `batches`
    rounds (A A A B B B ..., so a drift in the machine's load hits all alike). Back to back, as a warm path
    runs: interleaved one by one (A B A B), each invoke finds its server idle since the last, and cost it
    ~30% more CPU here (~2x for the Python floor; ab_cpu.py's batches agree with back to back). Each target
    measured needs a server process of its own: one serving two targets would be counted for both."""
    measured = [target for target in targets if target.server_pid]
    spent_ns = dict.fromkeys((target.name for target in measured), 0)
    for _ in range(batches):
        for target in measured:
            before = cpu_ns(target.server_pid)
            warm_samples([target], payload, batch, 0, tick)
            spent_ns[target.name] += cpu_ns(target.server_pid) - before
    return {name: spent / (batches * batch) / 1e3 for name, spent in spent_ns.items()}


@dataclass(slots=True)
class InitSamples:
    """One contender's first invokes: what its server reported and what our clock saw."""

    reported: list[float | None]  # the REPORT line's Init Duration; None if it had none
    upper: list[float]  # invoke sent -> handler running, same invoke: contains the Init Duration
    spawned: list[float]  # the same runtime spawned by our harness: spawn -> first `/next`


def _timed_first_invoke(client: Client, path: str) -> tuple[float, dict[bytes, bytes]]:
    sent_ns = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    status, headers, body = client.post(path, b"{}")
    if status != 200 or b"x-amz-function-error" in headers:
        raise RuntimeError(f"{path}: unexpected response {status} {body[:200]!r}")
    return (json.loads(body)["monotonic_ns"] - sent_ns) / 1e6, headers


def init_samples(
    peers: Peers, directory: Path, rounds: int, tick: Tick = lambda _: None
) -> dict[str, InitSamples]:
    """`rounds` first invokes of fresh environments per runtime and server, interleaved with the same
    runtimes spawned by our own harness (`coldstart.cold_start`, which times spawn -> first `/next`).

    Our server gets one function per sample, so each first invoke starts a new environment in one server;
    idle ones are reaped after a second. An emulator serves one function, so each sample is a new one."""
    runtimes = peers.python_runtimes()
    code = directory / "clock"
    write_handlers(code, "clock", CLOCK_HANDLER)
    (code / "floor.py").write_text("")  # cold_start's task root layout; the floor is not measured here
    functions = [
        Function(f"{runtime.name}-{index}", runtime, code, "clock", {"idle_timeout": 1})
        for index in range(rounds)
        for runtime in runtimes
    ]
    config = write_config(directory / "init.toml", functions)
    log_path = directory / "init.log"
    spawnable = {c.name: c for c in contenders(runtimes, code, module="clock")}
    served: dict[str, list[tuple[str, float]]] = {runtime.name: [] for runtime in runtimes}
    spawned: dict[str, list[float]] = {runtime.name: [] for runtime in runtimes}
    emulated: dict[str, InitSamples] = {}
    server, host, port = start_server(config, log_path)
    try:
        client = InvokeClient(host, port)
        for index in range(rounds):
            for runtime in runtimes:
                tick(f"{runtime.name}, our server")
                elapsed, headers = _timed_first_invoke(client, invoke_path(f"{runtime.name}-{index}"))
                served[runtime.name].append((headers[b"x-amzn-requestid"].decode(), elapsed))
                tick(f"{runtime.name}, our harness")
                spawned[runtime.name].append(cold_start(spawnable[runtime.name], code, b"{}").init_ms)
            if peers.rie is not None:
                for runtime in runtimes:
                    name = f"rie+{runtime.name}"
                    tick(name)
                    emulator = Emulator(
                        peers.rie, runtime.argv("clock.handler"), code, directory / f"{name}.log"
                    )
                    try:
                        rie_client = InvokeClient(emulator.host, emulator.port)
                        elapsed, _ = _timed_first_invoke(rie_client, INVOKE_PATH)
                        rie_client.close()
                    finally:
                        emulator.stop()
                    reported = emulator.init_durations()
                    samples = emulated.setdefault(name, InitSamples([], [], spawned[runtime.name]))
                    samples.reported.append(reported[0] if reported else None)
                    samples.upper.append(elapsed)
        client.close()
    finally:
        stop_server(server)  # the log is complete once the server has stopped
    by_id = init_durations(log_path)
    results = {
        name: InitSamples(
            [by_id.get(request_id) for request_id, _ in pairs], [e for _, e in pairs], spawned[name]
        )
        for name, pairs in served.items()
    }
    return {**results, **emulated}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--payload-bytes", type=int, default=1024)
    parser.add_argument("--init", type=int, default=0, help="fresh-environment first invokes per runtime")
    parser.add_argument("--rie", type=Path, help="aws-lambda-rie binary, measured as a second server")
    parser.add_argument("--node-ric", action="store_true", help="add AWS's Node runtime client")
    args = parser.parse_args()
    peers = discover(args.rie, args.node_ric)
    with tempfile.TemporaryDirectory() as tmp:
        payload = big_event(args.payload_bytes)
        print(
            f"warm invoke, {len(payload)} B event, {args.samples} samples each, interleaved "
            f"({os.cpu_count()} cores)"
        )
        with warm_targets(peers, Path(tmp)) as targets:
            timings = warm_samples(targets, payload, args.samples, warmups=min(200, args.samples))
        for name, values in timings.items():
            s = summarize(values)
            print(
                f"  {name:20} p50 {s.median * 1000:8.0f} us  p90 {s.p90 * 1000:8.0f} us  "
                f"p99 {s.p99 * 1000:8.0f} us  max {s.max * 1000:9.0f} us"
            )
        if args.init:
            print(f"Init Duration (REPORT) vs invoke sent -> handler running (our clock), {args.init} each")
            for name, samples in init_samples(peers, Path(tmp), args.init).items():
                reported = summarize([value or 0.0 for value in samples.reported]).median
                spawned = summarize(samples.spawned).median
                upper = summarize(samples.upper).median
                print(
                    f"  {name:20} REPORT p50 {reported:7.2f} ms  "
                    f"harness spawn -> /next p50 {spawned:7.2f} ms "
                    f"(difference {reported - spawned:+.2f} ms)  invoke sent -> handler p50 {upper:7.2f} ms"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
