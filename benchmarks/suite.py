"""`rapidboot bench`: the whole comparison in one command, on the user's own machine.

    rapidboot bench [--quick] [--only NAME[,NAME]] [--rie PATH] [--node-ric] [--out DIR]
    rapidboot bench --code DIR --handler MODULE.FUNCTION [--event FILE]   (your function: user_function.py)

Runs the benchmarks below (each also a plain script beside this file), prints a progress line while it
runs, then a table of medians with the ratio to the best peer measured in the same run, and leaves
`report.md`, `results.json` (with the machine it ran on) and PNG charts in DIR (default bench-results/).
AWS's emulator joins as a second server whenever it is found (`--rie PATH`, `RIE_BIN`, or `aws-lambda-rie`
on PATH). Latency rows use a raw-socket client (invoke_client.py) and show the floor of the same run
(floor.py); load rows use an asyncio client; the report says which row uses which.

- coldstart: spawn -> first response, trivial handler and a handler importing boto3; our bootstrap,
  awslambdaric (and the Node client), and the floor (coldstart.py);
- init: Init Duration in our server's REPORT against our own clock (warm_invoke.py);
- warm: warm invoke latency through the server, 1 KB / 100 KB / 3 MB events, one invoke per contender in
  turn (warm_invoke.py); at 1 KB also back to back (bursts of invokes in turn), and beside the Python
  server floor (python_floor.py), with the server CPU per invoke of each;
- throughput: invokes per second and tail latency with 1, 8, 64 clients (throughput.py);
- scaleout: N simultaneous first invokes (throughput.py);
- memory: idle RSS per environment, the server's RSS with 100 idle environments (memory.py);
- layers: layer merge the first time and cached (layers_merge.py);
- http: HTTP trigger request -> function -> response against an Invoke API call, 1 KB (http_triggers.py);
- deploy: CreateFunction with a 1 MB zip -> first answer, against unzip + first invoke of the same function
  configured in a rapidboot.toml (deploy.py);
- extensions: warm invokes with one extension subscribed to every telemetry stream against none, and the
  cold start with one external extension (extensions.py);
- metrics: the per-invoke cost of Lambda's metrics with nothing scraping: the recording call in process
  (against prometheus-client's), and warm invokes with it against the same server with it stubbed
  (metrics_cost.py).
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from rapidboot.benchmarks import (
    coldstart,
    deploy,
    extensions,
    hot_reload,
    http_triggers,
    layers_merge,
    memory,
    metrics_cost,
    report,
    snapstart,
    throughput,
    warm_invoke,
)
from rapidboot.benchmarks.invoke_client import InvokeClient
from rapidboot.benchmarks.local_server import invoke_path
from rapidboot.benchmarks.machine import describe
from rapidboot.benchmarks.peers import Peers, discover, node_version
from rapidboot.benchmarks.python_floor import PythonFloor
from rapidboot.benchmarks.results import FLOOR, OURS, PEER, REFERENCE, Check, Entry, Results, Row
from rapidboot.benchmarks.stats import percentile, summarize

BENCHMARKS = (
    "coldstart",
    "init",
    "warm",
    "throughput",
    "scaleout",
    "memory",
    "layers",
    "http",
    "reload",
    "deploy",
    "snapstart",
    "extensions",
    "metrics",
)
# Which client each kind of row uses: latency rows must time the server, not a client heavier than it.
RAW_CLIENT = "one keep-alive connection over a raw socket, one invoke at a time (invoke_client.py)"
LOAD_CLIENT = "asyncio (uvloop) keep-alive connections, responses parsed by httptools (throughput.py)"
Tick = Callable[[str], None]
PYTHON_FLOOR = "python floor"  # python_floor.py's relay: the row entry and its server CPU
# Issue 18's targets, printed beside what this machine allows.
TARGET_FLOOR_RATIO = 1.6  # warm 1 KB p50 over the floor's
TARGET_SERVER_CPU_US = 100.0  # server CPU per warm invoke


@dataclass(frozen=True, slots=True)
class Plan:
    """How many repetitions of everything: the full suite or --quick (their times: `build_parser`)."""

    cold_spawns: int = 30
    boto3_spawns: int = 30
    init_rounds: int = 30
    warm_samples: dict[str, int] = field(default_factory=lambda: {"1 KB": 2000, "100 KB": 500, "3 MB": 30})
    warm_warmups: dict[str, int] = field(default_factory=lambda: {"1 KB": 200, "100 KB": 50, "3 MB": 3})
    # Rapidboot, the Python floor and the floor: latency interleaved as in the warm rows, then the servers'
    # CPU in rounds of back-to-back batches (warm_invoke.server_cpu_us).
    python_floor_samples: int = 500
    python_floor_warmups: int = 100
    python_floor_batches: int = 5
    python_floor_batch: int = 100
    # Warm 1 KB back to back: every contender in turn, `back_to_back_batch` invokes a turn (the first
    # `back_to_back_warmups` of each discarded), for `back_to_back_rounds` rounds.
    back_to_back_rounds: int = 20
    back_to_back_batch: int = 100
    back_to_back_warmups: int = 5
    clients: tuple[int, ...] = (1, 8, 64)
    invokes: int = 3000
    load_rounds: int = 2
    scale_out: int = 16
    scale_rounds: int = 5
    environments: int = 100
    layer_mb: int = 100
    layer_samples: int = 3
    reload_samples: int = 30
    reload_restarts: int = 5
    deploy_samples: int = 20
    snap_spawns: int = 20
    snap_scale_out: int = 64
    snap_scale_rounds: int = 2
    extension_samples: int = 1000
    extension_cold: int = 10
    metrics_samples: int = 2000
    metrics_record_samples: int = 30


FULL = Plan()
QUICK = Plan(
    init_rounds=20,
    warm_samples={"1 KB": 300, "100 KB": 60, "3 MB": 6},
    warm_warmups={"1 KB": 50, "100 KB": 10, "3 MB": 2},
    python_floor_samples=200,
    python_floor_batches=4,
    python_floor_batch=50,
    python_floor_warmups=50,
    back_to_back_rounds=6,
    back_to_back_batch=50,
    invokes=500,
    load_rounds=1,
    scale_rounds=2,
    layer_mb=20,
    layer_samples=1,
    reload_samples=10,
    reload_restarts=2,
    deploy_samples=6,
    snap_spawns=8,
    snap_scale_out=16,
    snap_scale_rounds=1,
    extension_samples=300,
    extension_cold=3,
    metrics_samples=400,
    metrics_record_samples=10,
)


class Progress:
    """`[2/7 init] awslambdaric, our server 12/60` on one rewritten line (a terminal), or a line per
    tenth of each benchmark (a log file)."""

    def __init__(self, stream: TextIO, count: int) -> None:
        self._stream = stream
        self._count = count
        self._index = 0
        self._tty = stream.isatty()

    def benchmark(self, name: str, steps: int) -> Tick:
        self._index += 1
        prefix = f"[{self._index}/{self._count} {name}]"
        done = 0
        every = max(1, steps // 10)

        def tick(what: str) -> None:
            nonlocal done
            done += 1
            line = f"{prefix} {what} {done}/{steps}"
            if self._tty:
                self._stream.write(f"\r\033[K{line}")
                self._stream.flush()
            elif done == 1 or done % every == 0 or done == steps:
                self._stream.write(line + "\n")
                self._stream.flush()

        return tick

    def finish(self) -> None:
        if self._tty:
            self._stream.write("\r\033[K")
            self._stream.flush()


def prefixed(tick: Tick, prefix: str) -> Tick:
    return lambda what: tick(prefix + what)


def role(name: str) -> str:
    return OURS if name == "rapidboot" else PEER


def run_coldstart(peers: Peers, plan: Plan, scratch: Path, progress: Progress) -> list[Row]:
    handlers = [("trivial", "trivial handler", peers.runtimes, plan.cold_spawns)]
    if peers.boto3:
        handlers.append(("boto3", "handler importing boto3", peers.python_runtimes(), plan.boto3_spawns))
    steps = sum(spawns * (len(runtimes) + 1) for _, _, runtimes, spawns in handlers)
    tick = progress.benchmark("coldstart", steps)
    rows = []
    for handler, label, runtimes, spawns in handlers:
        task_root = coldstart.task_root_for(scratch / f"cold-{handler}", coldstart.HANDLERS[handler])
        spawned = coldstart.contenders(runtimes, task_root)
        samples = coldstart.cold_samples(spawned, task_root, spawns, prefixed(tick, f"{handler}: "))
        entries = [Entry(c.name, c.role, samples[c.name]) for c in spawned]
        ours = summarize(samples["rapidboot"]).median
        floor = summarize(samples["floor"]).median
        note = f"rapidboot is {ours / floor:.2f} x the floor (a bare python3 answering one invoke by hand)"
        rows.append(
            Row("coldstart", f"coldstart.{handler}", f"cold start, {label}", "ms", entries, note=note)
        )
    return rows


def run_init(peers: Peers, plan: Plan, scratch: Path, progress: Progress) -> tuple[list[Row], list[Check]]:
    runtimes = len(peers.python_runtimes())
    steps = plan.init_rounds * runtimes * (3 if peers.rie is not None else 2)
    samples = warm_invoke.init_samples(
        peers, scratch / "init", plan.init_rounds, progress.benchmark("init", steps)
    )

    def entry_role(name: str) -> str:
        return role(name) if not name.startswith("rie+") else REFERENCE  # its REPORT is not comparable

    reported = [
        Entry(name, entry_role(name), [value for value in s.reported if value is not None])
        for name, s in samples.items()
    ]
    upper = [Entry(name, entry_role(name), s.upper) for name, s in samples.items()]
    spawned = [
        Entry(name, role(name), s.spawned) for name, s in samples.items() if not name.startswith("rie+")
    ]
    rows = [
        Row("init", "init.report", "Init Duration in the server's REPORT", "ms", reported),
        Row(
            "init",
            "init.harness",
            "first invoke: invoke sent -> handler running",
            "ms",
            upper,
            params={"client": RAW_CLIENT},
        ),
        Row("init", "init.spawned", "init without a server: spawn -> first /next", "ms", spawned),
    ]
    checks = []
    for name, s in samples.items():
        server = "AWS's emulator" if name.startswith("rie+") else "rapidboot serve"
        runtime = name.removeprefix("rie+")
        pairs = [(r, u) for r, u in zip(s.reported, s.upper, strict=True) if r is not None]
        if not pairs:
            detail = "no Init Duration in any REPORT line"
            checks.append(
                Check(
                    "Init Duration agrees with our clock within 1 ms", f"{server} + {runtime}", False, detail
                )
            )
            continue
        # Two clocks on the same quantity: the server's spawn -> first /next (REPORT) and ours, spawning the
        # same runtime ourselves; and every REPORT must fit inside the first invoke as we timed it (an
        # Init Duration that measures nothing, or too much, fails either). The interval is longer than
        # the Init Duration by what lies outside it (routing, setting up the environment, dispatch).
        gap = summarize([u - r for r, u in pairs])
        within = sum(1 for r, u in pairs if r <= u + 0.01)
        report_median = summarize([r for r, _ in pairs]).median
        spawn = summarize(s.spawned).median if s.spawned else float("nan")
        agreement = report_median - spawn
        passed = len(pairs) == len(s.reported) and within == len(pairs) and abs(agreement) <= 1.0
        detail = (
            f"REPORT median {report_median:.2f} ms; the same runtime spawned by the harness: "
            f"{spawn:.2f} ms to its first /next ({agreement:+.2f} ms); REPORT inside the first invoke as "
            f"timed by the harness "
            f"(median {summarize([u for _, u in pairs]).median:.2f} ms, {gap.median:.2f} ms more) in "
            f"{within}/{len(s.reported)}"
        )
        checks.append(
            Check("Init Duration agrees with our clock within 1 ms", f"{server} + {runtime}", passed, detail)
        )
    return rows, checks


def run_warm(peers: Peers, plan: Plan, scratch: Path, progress: Progress) -> list[Row]:
    """Per event size, a row of whole stacks (our server + our bootstrap against each peer, the floor
    beside them) and, with the emulator, a row of the runtimes alone on AWS's emulator; every sample of
    every contender from the same interleaved run."""
    targets = len(peers.runtimes) * (2 if peers.rie is not None else 1) + 1  # + the floor
    python_floor = plan.python_floor_samples * 3 + plan.python_floor_batches * plan.python_floor_batch * 2
    back_to_back = plan.back_to_back_rounds * (plan.back_to_back_batch + plan.back_to_back_warmups) * targets
    steps = sum(plan.warm_samples.values()) * targets + python_floor + back_to_back
    tick = progress.benchmark("warm", steps)
    rows = []
    directory = scratch / "warm"
    directory.mkdir()
    with warm_invoke.warm_targets(peers, directory) as connected:
        for size, samples in plan.warm_samples.items():
            payload = coldstart.big_event(warm_invoke.PAYLOAD_SIZES[size])
            timings = warm_invoke.warm_samples(
                connected,
                payload,
                samples,
                plan.warm_warmups[size],
                prefixed(tick, f"{size}: "),
            )
            entries = [Entry(t.name, t.role, timings[t.name]) for t in connected]
            params = {"percentiles": True, "payload_bytes": len(payload), "client": RAW_CLIENT}
            key = f"warm.{size.replace(' ', '')}"
            rows.append(
                Row(
                    "warm",
                    key,
                    f"warm invoke, {size} event",
                    "ms",
                    entries,
                    params=params,
                    note=_targets(entries),
                )
            )
            if peers.rie is not None:
                on_emulator = [
                    Entry(e.name, OURS if e.name == "rie+rapidboot" else e.role, e.samples)
                    for e in entries
                    if e.name.startswith("rie+") or e.name == FLOOR
                ]
                label = f"warm invoke, {size} event, the runtimes alone on AWS's emulator"
                rows.append(Row("warm", f"{key}.rie", label, "ms", on_emulator, params=params))
        rows.append(run_back_to_back(connected, plan, prefixed(tick, "1 KB back to back: ")))
        rows.append(
            run_python_floor(connected, plan, directory, prefixed(tick, "1 KB beside the Python floor: "))
        )
    return rows


def run_back_to_back(connected: list[warm_invoke.Target], plan: Plan, tick: Tick) -> Row:
    """Warm 1 KB invokes in bursts: each contender's turn is `back_to_back_batch` invokes in a row
    (warm_invoke.back_to_back_samples), where the warm rows give one invoke per turn."""
    payload = coldstart.big_event(warm_invoke.PAYLOAD_SIZES["1 KB"])
    timings = warm_invoke.back_to_back_samples(
        connected,
        payload,
        plan.back_to_back_rounds,
        plan.back_to_back_batch,
        plan.back_to_back_warmups,
        tick,
    )
    entries = [Entry(t.name, t.role, timings[t.name]) for t in connected]
    params = {
        "percentiles": True,
        "payload_bytes": len(payload),
        "client": RAW_CLIENT,
        "batch": plan.back_to_back_batch,
    }
    label = f"warm invoke, 1 KB event, back to back ({plan.back_to_back_batch} a turn)"
    return Row("warm", "warm.1KB.back_to_back", label, "ms", entries, params=params, note=_targets(entries))


def run_python_floor(connected: list[warm_invoke.Target], plan: Plan, directory: Path, tick: Tick) -> Row:
    """Our server, the Python server floor (python_floor.py) and the floor, 1 KB: their latency interleaved as
    in the warm rows (so the multiples of the floor compare with theirs), then the server CPU per invoke of
    ours and of the Python floor's: what of issue 18's targets this stack allows at all."""
    by_name = {target.name: target for target in connected}
    payload = coldstart.big_event(warm_invoke.PAYLOAD_SIZES["1 KB"])
    relay = PythonFloor.start(directory / "python-floor.log")
    client = InvokeClient(relay.host, relay.port)
    try:
        python = warm_invoke.Target(PYTHON_FLOOR, REFERENCE, client, invoke_path("echo"), relay.process.pid)
        targets = [by_name["rapidboot"], python, by_name[FLOOR]]
        timings = warm_invoke.warm_samples(
            targets, payload, plan.python_floor_samples, plan.python_floor_warmups, tick
        )
        server_cpu_us = warm_invoke.server_cpu_us(
            targets, payload, plan.python_floor_batches, plan.python_floor_batch, tick
        )
    finally:
        client.close()
        relay.stop()
    return python_floor_row(timings, server_cpu_us, len(payload), plan.python_floor_batch)


def python_floor_row(
    timings: dict[str, list[float]], server_cpu_us: dict[str, float], payload_bytes: int, batch: int
) -> Row:
    entries = [
        Entry("rapidboot", OURS, timings["rapidboot"]),
        Entry(PYTHON_FLOOR, REFERENCE, timings[PYTHON_FLOOR]),
        Entry(FLOOR, REFERENCE, timings[FLOOR]),
    ]
    params = {"payload_bytes": payload_bytes, "client": RAW_CLIENT, "server_cpu_us": server_cpu_us}
    label = "warm invoke, 1 KB event, beside the Python server floor"
    return Row(
        "warm",
        "warm.1KB.python_floor",
        label,
        "ms",
        entries,
        params=params,
        note=_python_floor(entries, server_cpu_us, batch),
    )


def _python_floor(entries: list[Entry], server_cpu_us: dict[str, float], batch: int) -> str:
    """Issue 18's arithmetic: the warm p50 that any Python server with our Python runtime has on this machine
    (the Python floor's) as a multiple of the floor, beside the target and ours; and the server CPU per
    invoke against the target, ours and the Python floor's."""
    ours, python, floor = (entry.summary.median for entry in entries)
    return (
        f"the Python server floor (python_floor.py: three HTTP exchanges on uvloop + httptools, our "
        f"bootstrap): p50 {python:.3f} ms = {python / floor:.2f} x the floor, against issue 18's target "
        f"{TARGET_FLOOR_RATIO} x (rapidboot {ours / floor:.2f} x); server CPU per invoke ({batch} back to "
        f"back) {server_cpu_us[PYTHON_FLOOR]:.0f} us, against the target {TARGET_SERVER_CPU_US:.0f} us "
        f"(rapidboot {server_cpu_us['rapidboot']:.0f} us)"
    )


def _targets(entries: list[Entry]) -> str:
    """Issue 18's targets for a warm row: our p50 and p99 as multiples of the floor's (the same bytes through
    two bare-socket round trips, the same run), and our p50 against AWS's emulator with awslambdaric."""
    by_name = {entry.name: entry for entry in entries if entry.samples}
    ours, floor = by_name.get("rapidboot"), by_name.get(FLOOR)
    if ours is None or floor is None:
        return ""
    o, f = ours.summary, floor.summary
    parts = [f"p50 {o.median / f.median:.2f} x the floor", f"p99 {o.p99 / f.p99:.2f} x the floor's p99"]
    emulator = by_name.get("rie+awslambdaric")
    if emulator is not None:
        parts.append(f"p50 {o.median / emulator.summary.median:.2f} x AWS's emulator + awslambdaric")
    return ", ".join(parts)


def run_throughput(peers: Peers, plan: Plan, scratch: Path, progress: Progress) -> list[Row]:
    names = [runtime.name for runtime in peers.runtimes]
    tick = progress.benchmark("throughput", len(plan.clients) * plan.load_rounds * len(names))
    config = throughput.server_config(peers, scratch / "throughput")
    levels = throughput.load_levels(config, names, list(plan.clients), plan.invokes, plan.load_rounds, tick)
    rows = []
    for clients, by_name in levels.items():
        rates = [Entry(name, role(name), level.rates) for name, level in by_name.items()]
        latencies = [Entry(name, role(name), level.latencies_ms) for name, level in by_name.items()]
        errors = sum(level.errors for level in by_name.values())
        notes = [f"{errors} invokes failed"] if errors else []
        for name, level in by_name.items():
            # Issue 18's target: beside the figure, the machine's CPU bound: all cores divided by what one
            # invoke costs (server + runtime + client) on the warm path, i.e. as measured with one client;
            # the CPU per invoke at this level shows what concurrency itself costs.
            server_us, client_us, own_bound = level.cpu_bound()
            one = levels[1][name] if 1 in levels else level
            one_server_us, one_client_us, bound = one.cpu_bound()
            rate = summarize(level.rates).median
            scaling = ""
            if clients != 1 and 1 in levels:
                scaling = f", {rate / summarize(levels[1][name].rates).median:.2f} x 1 client"
            machine = ""
            if level.idle_share:
                # What the bound's denominator cannot see: the cores idle, and the kernel's interrupt work.
                machine = (
                    f"; the machine meanwhile {100 * percentile(level.idle_share, 0.5):.0f}% idle, "
                    f"{100 * percentile(level.irq_share, 0.5):.0f}% in interrupts (loopback TCP's softirq, "
                    "in no process's CPU time)"
                )
            notes.append(
                f"{name}: {rate:.0f}/s is {rate / bound:.2f} of the CPU bound {os.cpu_count()} cores / "
                f"{one_server_us + one_client_us:.0f} us = {bound:.0f}/s{scaling}; CPU per invoke here "
                f"{server_us:.0f} us server + runtime, {client_us:.0f} us client ({own_bound:.0f}/s){machine}"
            )
        note = "; ".join(notes)
        rows.append(
            Row(
                "throughput",
                f"throughput.rate.{clients}",
                f"throughput, {clients} clients",
                "invokes/s",
                rates,
                higher_is_better=True,
                params={"kind": "rate", "clients": clients, "client": LOAD_CLIENT},
                note=note,
            )
        )
        rows.append(
            Row(
                "throughput",
                f"throughput.latency.{clients}",
                f"latency with {clients} clients",
                "ms",
                latencies,
                params={"kind": "latency", "clients": clients, "percentiles": True, "client": LOAD_CLIENT},
            )
        )
    return rows


def run_scaleout(peers: Peers, plan: Plan, scratch: Path, progress: Progress) -> list[Row]:
    names = [runtime.name for runtime in peers.runtimes]
    tick = progress.benchmark("scaleout", plan.scale_rounds * len(names))
    config = throughput.server_config(peers, scratch / "scaleout")
    times = throughput.scale_out_rounds(config, names, plan.scale_out, plan.scale_rounds, tick)
    entries = [Entry(name, role(name), values) for name, values in times.items()]
    label = f"scale-out: {plan.scale_out} simultaneous first invokes"
    params = {"environments": plan.scale_out, "client": LOAD_CLIENT}
    return [Row("scaleout", "scaleout", label, "ms", entries, params=params)]


def run_memory(peers: Peers, plan: Plan, scratch: Path, progress: Progress) -> list[Row]:
    tick = progress.benchmark("memory", 1 + len(peers.runtimes))
    directory = scratch / "memory"
    directory.mkdir()
    measured = memory.idle_memory(peers, directory, plan.environments, tick)
    environments = [Entry(name, role(name), values) for name, values in measured.environments_mib.items()]
    server = [Entry("no environment", REFERENCE, [measured.server_idle_mib])]
    server += [
        Entry(f"{measured.count} x {name}", OURS if name == "rapidboot" else REFERENCE, [value])
        for name, value in measured.server_loaded_mib.items()
    ]
    return [
        Row("memory", "memory.environment", "idle RSS of one environment", "MiB", environments),
        Row(
            "memory",
            "memory.server",
            f"rapidboot serve's own RSS with {measured.count} idle environments",
            "MiB",
            server,
            comparable=False,
        ),
    ]


def run_layers(peers: Peers, plan: Plan, scratch: Path, progress: Progress) -> list[Row]:
    tick = progress.benchmark("layers", plan.layer_samples * 3 + 1)
    directory = scratch / "layers"
    directory.mkdir()
    times = layers_merge.layer_times(directory, plan.layer_mb, plan.layer_samples, tick=tick)

    def ms(values: list[float]) -> list[float]:
        return [value * 1000 for value in values]

    first = [
        Entry("rapidboot", OURS, ms(times.first["merge --into"])),
        Entry("rapidboot, into the cache", REFERENCE, ms(times.first["first merge into the cache"])),
    ]
    note = (
        f"{layers_merge.LAYERS} layers, {times.members} members, {times.unzipped_bytes / 1e6:.0f} MB unzipped"
    )
    if times.first["unzip"]:
        first.append(Entry("unzip", PEER, ms(times.first["unzip"])))
    else:
        note += "; `unzip` is not installed, so there is no peer (install the unzip package)"
    cached = [Entry("rapidboot", OURS, ms(times.cached))]
    return [
        Row("layers", "layers.first", f"layer merge, first time, {plan.layer_mb} MB", "ms", first, note=note),
        Row("layers", "layers.cached", "layer merge, cached (an environment's wait)", "ms", cached),
    ]


def run_reload(peers: Peers, plan: Plan, scratch: Path, progress: Progress) -> list[Row]:
    tick = progress.benchmark("reload", plan.reload_samples + plan.reload_restarts)
    directory = scratch / "reload"
    directory.mkdir()
    times = hot_reload.reload_times(directory, plan.reload_samples, plan.reload_restarts, tick)
    entries = [
        Entry("rapidboot --watch", OURS, [value * 1000 for value in times.reload_s]),
        Entry("restart the server", REFERENCE, [value * 1000 for value in times.restart_s]),
    ]
    label = "hot reload: handler written -> first answer from the new code"
    return [Row("reload", "reload.edit", label, "ms", entries, note="goal: under 150 ms")]


def run_deploy(peers: Peers, plan: Plan, scratch: Path, progress: Progress) -> list[Row]:
    tick = progress.benchmark("deploy", plan.deploy_samples)
    directory = scratch / "deploy"
    directory.mkdir()
    times = deploy.deploy_times(directory, plan.deploy_samples, tick)
    entries = [
        Entry("CreateFunction + first invoke", OURS, [value * 1000 for value in times.api_s]),
        Entry("unzip + first invoke (TOML)", REFERENCE, [value * 1000 for value in times.toml_s]),
    ]
    label = f"deploy: {times.zip_bytes / 1e6:.0f} MB zip -> first answer"
    return [Row("deploy", "deploy.create", label, "ms", entries, note=f"goal: at most {deploy.GOAL}x")]


def run_snapstart(peers: Peers, plan: Plan, scratch: Path, progress: Progress) -> list[Row]:
    """SnapStart (issue 17): forks of an initialised template against spawns of the same function, in one
    server and one run (benchmarks/snapstart.py)."""
    handlers = ["trivial", "boto3"]
    tick = progress.benchmark("snapstart", plan.snap_spawns * 2 * len(handlers) + 2 * plan.snap_scale_rounds)
    directory = scratch / "snapstart"
    directory.mkdir()
    config = snapstart.write_functions(directory, handlers)
    samples, inits = snapstart.cold_starts(config, handlers, plan.snap_spawns, tick)
    rows = []
    for handler in handlers:
        entries = [
            Entry("rapidboot snap_start", OURS, samples[f"{handler}_snap"]),
            Entry("rapidboot (spawned)", PEER, samples[handler]),
            # No server, no runtime: a fork of the initialised module to its first connection, now.
            Entry(FLOOR, REFERENCE, snapstart.fork_floor(directory / handler, plan.snap_spawns)),
        ]
        label = f"cold start through the server, {handler} handler: a fork of the template vs a spawn"
        note = (
            "invoke -> response of a new environment's first invoke; the spawned function is the peer; "
            "floor: fork of a process that imported the module -> its first TCP connection, no server"
            + ("; goal: under 5 ms" if handler == "boto3" else "")
        )
        rows.append(Row("snapstart", f"snapstart.coldstart.{handler}", label, "ms", entries, note=note))
    scaled = snapstart.scale_out(config, "boto3", plan.snap_scale_out, plan.snap_scale_rounds, tick)
    forked, spawned = scaled["boto3_snap"], scaled["boto3"]
    count = plan.snap_scale_out
    rows.append(
        Row(
            "snapstart",
            "snapstart.scaleout",
            f"scale-out: {count} simultaneous first invokes, boto3 handler",
            "ms",
            [
                Entry("rapidboot snap_start", OURS, forked["ms"]),
                Entry("rapidboot (spawned)", PEER, spawned["ms"]),
            ],
            params={"environments": count, "client": LOAD_CLIENT},
        )
    )
    template = [a + b for a, b in zip(forked["uss_mb"], forked["template_mb"], strict=True)]
    rows.append(
        Row(
            "snapstart",
            "snapstart.scaleout.memory",
            f"memory of {count} boto3 environments after their first invoke",
            "MiB",
            [
                Entry("rapidboot snap_start", OURS, template),
                Entry("rapidboot (spawned)", PEER, spawned["uss_mb"]),
            ],
            note="the environments' unique pages (USS, smaps_rollup), plus the template's RSS for snap_start",
        )
    )
    init_entries = [
        Entry(f"{handler} template", OURS if handler == "trivial" else REFERENCE, [inits[f"{handler}_snap"]])
        for handler in handlers
        if f"{handler}_snap" in inits
    ]
    rows.append(
        Row(
            "snapstart",
            "snapstart.template_init",
            "SnapStart template's one-time init (spawn, imports, before-snapshot hooks)",
            "ms",
            init_entries,
            comparable=False,
        )
    )
    return rows


def run_metrics(peers: Peers, plan: Plan, scratch: Path, progress: Progress) -> list[Row]:
    tick = progress.benchmark("metrics", plan.metrics_record_samples * 3 + plan.metrics_samples * 2)
    directory = scratch / "metrics"
    directory.mkdir()
    cost = metrics_cost.measure(directory, plan.metrics_samples, plan.metrics_record_samples, tick)
    record = [
        Entry("rapidboot (plain counters, console on)", OURS, cost.record_us),
        Entry("rapidboot --no-console", REFERENCE, cost.record_without_console_us),
    ]
    if cost.prometheus_client_us:
        record.append(Entry("prometheus-client Counter + Histogram", PEER, cost.prometheus_client_us))
    warm = [
        Entry("rapidboot", OURS, cost.warm_ms),
        Entry("rapidboot, metrics stubbed", PEER, cost.warm_stubbed_ms),
    ]
    params = {"client": RAW_CLIENT}
    return [
        Row(
            "metrics",
            "metrics.record",
            "metrics: recording one invoke, in process",
            "us",
            record,
            note="goal: under 5 us",
        ),
        Row(
            "metrics",
            "metrics.warm",
            "warm invoke 1 KB, metrics recorded vs stubbed, nobody scraping",
            "ms",
            warm,
            params=params,
        ),
    ]


def parse_only(values: list[str] | None, parser: argparse.ArgumentParser) -> list[str]:
    if not values:
        return list(BENCHMARKS)
    chosen = [name.strip() for value in values for name in value.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(
            f"--only {', '.join(unknown)}: unknown benchmark; the valid names are {', '.join(BENCHMARKS)}"
        )
    return [name for name in BENCHMARKS if name in chosen]


def build_parser(prog: str = "rapidboot bench") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Measure rapidboot against its peers on this machine; leave report.md, results.json "
        "and charts. Each run ends by saying how long it took.",
    )
    # The one place the suite's duration is stated (the README and the Makefile point here): measured with
    # `make bench-quick`, 2026-12-06, on the project's 2-core VM shared with other work, no RIE or Node peer.
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer repetitions: about 1 minute on 2 cores, against about 2.5 for the full run (59 s and "
        "144 s measured, with AWS's emulator)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help=f"run only these benchmarks (repeatable or comma-separated): {', '.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--rie", type=Path, metavar="PATH", help="add AWS's aws-lambda-rie binary as a server"
    )
    parser.add_argument(
        "--node-ric", action="store_true", help="add AWS's Node runtime client (aws-lambda-ric)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        metavar="DIR",
        help="where the report goes (%(default)s)",
    )
    parser.add_argument("--no-charts", action="store_true", help="skip the PNG charts")
    mine = parser.add_argument_group(
        "your own function",
        "measure it with each Python runtime installed instead of the suite (seconds, for a trivial handler)",
    )
    mine.add_argument("--code", type=Path, metavar="DIR", help="the function's code directory")
    mine.add_argument("--handler", metavar="MODULE.FUNCTION", help="its handler, e.g. app.handler")
    mine.add_argument("--event", type=Path, metavar="FILE", help="the event, a JSON file (default: {})")
    mine.add_argument(
        "--timeout", type=int, default=3, metavar="SECONDS", help="its timeout (%(default)s s, as Lambda's)"
    )
    return parser


def run(
    names: list[str], peers: Peers, plan: Plan, progress: Progress, results: Results, scratch: Path
) -> None:
    for name in names:
        if name == "init":
            rows, checks = run_init(peers, plan, scratch, progress)
            results.checks += checks
        else:
            runner = {
                "coldstart": run_coldstart,
                "warm": run_warm,
                "throughput": run_throughput,
                "scaleout": run_scaleout,
                "memory": run_memory,
                "layers": run_layers,
                "http": http_triggers.run_http,  # vs the Invoke API (benchmarks/http_triggers.py)
                "reload": run_reload,
                "deploy": run_deploy,  # CreateFunction vs a configured function (benchmarks/deploy.py)
                "snapstart": run_snapstart,
                "extensions": extensions.run_extensions,  # with one extension vs none (extensions.py)
                "metrics": run_metrics,  # per-invoke cost of the metrics (benchmarks/metrics_cost.py)
            }[name]
            rows = runner(peers, plan, scratch, progress)
        results.rows += rows


def new_results(command: str, quick: bool, skipped: list[str]) -> Results:
    for line in skipped:
        print(f"skipped: {line}", flush=True)
    return Results(
        command=command,
        quick=quick,
        started=datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        machine=describe(node_version()),
        skipped=list(skipped),
    )


def finish(results: Results, out: Path, draw: bool, per_runtime: bool = False) -> None:
    """Write the report, the JSON and the charts; print the table and where they went."""
    charts, missing = report.write(results, out, draw=draw, per_runtime=per_runtime)
    if missing:
        results.skipped.append(missing)
        print(f"skipped: {missing}")
    print(report.terminal_table(results, per_runtime))
    written = ", ".join(str(out / name) for name in ["report.md", "results.json", *(c.name for c in charts)])
    print(f"\n{results.elapsed_s:.0f} s; wrote {written}")


def main(argv: list[str] | None = None, prog: str = "rapidboot bench") -> int:
    arguments = sys.argv[1:] if argv is None else argv
    parser = build_parser(prog)
    args = parser.parse_args(arguments)
    if args.code is not None or args.handler is not None or args.event is not None:
        # Imported here: user_function builds on this module (Progress, new_results, finish).
        from rapidboot.benchmarks import user_function

        return user_function.main(args, " ".join([prog, *arguments]), prog)
    names = parse_only(args.only, parser)
    try:
        peers = discover(args.rie, args.node_ric)
    except ValueError as exc:
        parser.error(str(exc))
    started = time.monotonic()
    results = new_results(" ".join([prog, *arguments]), args.quick, peers.skipped)
    progress = Progress(sys.stderr, len(names))
    with tempfile.TemporaryDirectory(prefix="rapidboot-bench-") as scratch:
        try:
            run(names, peers, QUICK if args.quick else FULL, progress, results, Path(scratch))
        finally:
            progress.finish()
    results.elapsed_s = time.monotonic() - started
    finish(results, args.out, draw=not args.no_charts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
