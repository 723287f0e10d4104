"""`rapidboot bench --code DIR --handler MODULE.FUNCTION [--event FILE]`: what would switching save on *your*
function?

Measures the user's function with each Python runtime installed (our bootstrap, awslambdaric), with the
suite's own machinery: the cold start is coldstart.py's spawn -> first response, interleaved; warm latency
is warm_invoke.py's interleaved loop through `rapidboot serve` with the raw-socket client
(invoke_client.py), one server per runtime so that each environment's process is known; idle RSS after the
first invoke and peak RSS (VmHWM) after the warm invokes come from `/proc`. The event is the user's
(default `{}`), and the function's answer is not checked beyond "not an error".

A runtime under which the function fails (it raises, times out, cannot be imported, exits) is reported as
that runtime's failure, with the error type and message, in every row and as a FAIL check; the other
runtimes are still measured. Bad input (no such directory, a handler that is not MODULE.FUNCTION, an
event that is not JSON) is one line naming the flag, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from rapidboot.benchmarks import coldstart, warm_invoke
from rapidboot.benchmarks.coldstart import Contender, ContenderFailed, error_text, rss_kib
from rapidboot.benchmarks.invoke_client import InvokeClient
from rapidboot.benchmarks.local_server import Function, invoke_path, start_server, stop_server, write_config
from rapidboot.benchmarks.memory import children
from rapidboot.benchmarks.peers import HOW_TO_RIC, Runtime, discover
from rapidboot.benchmarks.results import Check, Entry, Row
from rapidboot.benchmarks.stats import summarize
from rapidboot.benchmarks.suite import RAW_CLIENT, Progress, finish, new_results, prefixed

# `src/pkg/mod.fn` is a module path, as Lambda's handler setting allows (runtime/handler.py).
HANDLER = re.compile(r"[A-Za-z_]\w*(?:[./][A-Za-z_]\w*)*\.[A-Za-z_]\w*")
FUNCTION_NAME = "yours"
ERROR_CHARS = 160  # of an error message in a table cell


@dataclass(frozen=True, slots=True)
class UserPlan:
    """A quick run by default: a trivial handler takes a few seconds on 2 cores, both runtimes."""

    cold_spawns: int = 20
    warm_samples: int = 1000
    warm_warmups: int = 100


DEFAULT = UserPlan()
QUICK = UserPlan(cold_spawns=5, warm_samples=100, warm_warmups=10)


class BadInput(ValueError):
    """A flag's value that cannot be measured; the message names the flag."""


@dataclass(frozen=True, slots=True)
class UserFunction:
    code: Path
    handler: str
    event: bytes
    timeout_s: int


def user_function(code: Path | None, handler: str | None, event: Path | None, timeout_s: int) -> UserFunction:
    if code is None:
        raise BadInput("--code DIR is required: the directory of your function's code")
    if not code.is_dir():
        raise BadInput(f"--code {code}: no such directory")
    if handler is None:
        raise BadInput("--handler MODULE.FUNCTION is required with --code, e.g. --handler app.handler")
    if not HANDLER.fullmatch(handler):
        raise BadInput(f"--handler {handler}: expected MODULE.FUNCTION, e.g. app.handler")
    if not 1 <= timeout_s <= 900:
        raise BadInput(f"--timeout {timeout_s}: outside 1-900 seconds, Lambda's range")
    payload = b"{}"
    if event is not None:
        try:
            payload = event.read_bytes()
            json.loads(payload)
        except OSError as exc:
            raise BadInput(f"--event {event}: cannot read it ({exc.strerror})") from None
        except ValueError as exc:
            raise BadInput(f"--event {event}: not JSON ({exc})") from None
    return UserFunction(code.resolve(), handler, payload, timeout_s)


@dataclass(slots=True)
class Measured:
    cold_ms: dict[str, list[float]] = field(default_factory=dict)
    warm_ms: dict[str, list[float]] = field(default_factory=dict)
    idle_mib: dict[str, float] = field(default_factory=dict)
    peak_mib: dict[str, float] = field(default_factory=dict)
    answers: dict[str, str] = field(default_factory=dict)  # runtime -> what its first invoke returned
    failures: dict[str, str] = field(default_factory=dict)  # runtime -> `Stage: ErrorType: message`


def first_invoke(target: warm_invoke.Target, event: bytes) -> str:
    """The function's first answer through the server, described; a failure raises ContenderFailed."""
    status, headers, body = target.client.post(target.path, event)
    if status != 200 or b"x-amz-function-error" in headers:
        raise ContenderFailed(target.name, error_text(body))
    return f"answered {len(body)} B"


def environment_pid(server_pid: int, name: str) -> int:
    pids = children(server_pid)
    if len(pids) != 1:
        raise RuntimeError(f"{name}: {len(pids)} runtime processes under its server, expected 1")
    return pids[0]


def without_failures(
    names: list[str],
    measure: Callable[[list[str]], dict[str, list[float]]],
    stage: str,
    failures: dict[str, str],
) -> dict[str, list[float]]:
    """`measure(names)`, interleaved over all of them; a runtime that fails is recorded and the rest are
    measured again without it (interleaving needs every contender in every round)."""
    while names:
        try:
            return measure(names)
        except ContenderFailed as exc:
            failures[exc.name] = f"{stage}: {exc.detail}"
            names = [name for name in names if name != exc.name]
    return {}


def measure(function: UserFunction, runtimes: list[Runtime], plan: UserPlan, scratch: Path) -> Measured:
    measured = Measured()
    names = [runtime.name for runtime in runtimes]
    progress = Progress(sys.stderr, 2)
    tick = progress.benchmark("warm", len(names) * (plan.warm_samples + 1))
    try:
        with ExitStack() as stack:
            targets: dict[str, warm_invoke.Target] = {}
            pids: dict[str, int] = {}
            for runtime in runtimes:
                directory = scratch / runtime.name
                directory.mkdir()
                options: dict[str, int | float] = {"timeout": function.timeout_s}
                table = Function(
                    FUNCTION_NAME, runtime, function.code, options=options, handler=function.handler
                )
                config = write_config(directory / "function.toml", [table])
                server, host, port = start_server(config, directory / "server.log")
                stack.callback(stop_server, server)
                client = InvokeClient(host, port)
                stack.callback(client.close)
                target = warm_invoke.Target(runtime.name, runtime.role, client, invoke_path(FUNCTION_NAME))
                tick(f"{runtime.name}, first invoke")
                try:
                    measured.answers[runtime.name] = first_invoke(target, function.event)
                except ContenderFailed as exc:
                    measured.failures[runtime.name] = f"first invoke: {exc.detail}"
                    continue
                targets[runtime.name] = target
                pids[runtime.name] = environment_pid(server.pid, runtime.name)
                # Parked on /next after one invoke: the idle environment Lambda would freeze.
                measured.idle_mib[runtime.name] = rss_kib(pids[runtime.name]) / 1024

            def warm(chosen: list[str]) -> dict[str, list[float]]:
                return warm_invoke.warm_samples(
                    [targets[name] for name in chosen],
                    function.event,
                    plan.warm_samples,
                    plan.warm_warmups,
                    tick,
                    echo=False,
                )

            measured.warm_ms = without_failures(list(targets), warm, "warm invoke", measured.failures)
            for name in measured.warm_ms:
                measured.peak_mib[name] = rss_kib(pids[name], "VmHWM") / 1024
        # The servers are stopped: nothing else runs during the cold starts.
        spawnable = {
            runtime.name: Contender(
                runtime.name, runtime.role, runtime.argv(function.handler), function.handler
            )
            for runtime in runtimes
            if runtime.name in measured.warm_ms
        }
        cold_tick = progress.benchmark("coldstart", plan.cold_spawns * len(spawnable))

        def cold(chosen: list[str]) -> dict[str, list[float]]:
            return coldstart.cold_samples(
                [spawnable[name] for name in chosen],
                function.code,
                plan.cold_spawns,
                prefixed(cold_tick, "spawn -> first response: "),
                event=function.event,
            )

        measured.cold_ms = without_failures(list(spawnable), cold, "cold start", measured.failures)
    finally:
        progress.finish()
    return measured


def rows(function: UserFunction, runtimes: list[Runtime], measured: Measured) -> list[Row]:
    def entries(values: dict[str, list[float]]) -> list[Entry]:
        """One per runtime; a runtime that failed at any stage has its failure and no samples anywhere."""
        out = []
        for runtime in runtimes:
            failure = measured.failures.get(runtime.name)
            samples = values.get(runtime.name, []) if failure is None else []
            out.append(Entry(runtime.name, runtime.role, samples, one_line(failure or "")))
        return out

    p99 = {name: [summarize(values).p99] for name, values in measured.warm_ms.items() if values}
    idle = {name: [mib] for name, mib in measured.idle_mib.items()}
    peak = {name: [mib] for name, mib in measured.peak_mib.items()}
    handler, size = function.handler, len(function.event)
    params = {"percentiles": True, "payload_bytes": size, "client": RAW_CLIENT}
    return [
        Row("coldstart", "user.coldstart", f"cold start, {handler}", "ms", entries(measured.cold_ms)),
        Row(
            "warm",
            "user.warm",
            f"warm invoke, {handler}, {size} B event (p50)",
            "ms",
            entries(measured.warm_ms),
            params=params,
        ),
        Row("warm", "user.warm.p99", f"warm invoke, {handler} (p99)", "ms", entries(p99)),
        Row("memory", "user.memory.idle", "idle RSS after the first invoke", "MiB", entries(idle)),
        Row("memory", "user.memory.peak", "peak RSS (VmHWM) after the warm invokes", "MiB", entries(peak)),
    ]


def one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= ERROR_CHARS else first[: ERROR_CHARS - 3] + "..."


def main(args: argparse.Namespace, command: str, prog: str) -> int:
    try:
        if args.only:
            raise BadInput("--only: not with --code, which measures your function alone")
        function = user_function(args.code, args.handler, args.event, args.timeout)
    except BadInput as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    # The handler is Python: the Python runtimes are the contenders, under our server (not the emulator).
    peers = discover()
    runtimes = peers.python_runtimes()
    plan = QUICK if args.quick else DEFAULT
    started = time.monotonic()
    results = new_results(command, args.quick, [line for line in peers.skipped if line == HOW_TO_RIC])
    with tempfile.TemporaryDirectory(prefix="rapidboot-bench-") as scratch:
        measured = measure(function, runtimes, plan, Path(scratch))
    results.rows += rows(function, runtimes, measured)
    for runtime in runtimes:
        failure = measured.failures.get(runtime.name)
        detail = failure if failure is not None else measured.answers.get(runtime.name, "")
        results.checks.append(Check("your function answers its event", runtime.name, failure is None, detail))
    results.elapsed_s = time.monotonic() - started
    finish(results, args.out, draw=not args.no_charts, per_runtime=True)
    return 0
