"""Extensions and the Telemetry API through a real server, with an extension written as authors write
them (tests/e2e/extensions/probe, from a layer's `extensions/` directory) and one registered by the runtime
process itself (internal).

The probe appends what it sees (its registration, each event, each telemetry batch) as JSON lines to a file
the test reads; the test waits on that file's contents (bounded), never on the clock.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from e2e_harness import RapidServer, request_id_of, running_server, write_tables

from rapidboot.benchmarks.rie import free_port

pytestmark = pytest.mark.e2e

HERE = Path(__file__).resolve().parent
PROBE = HERE / "extensions" / "probe"
CODE = HERE / "functions" / "extensions"
ALL_TYPES = "platform,function,extension"
WAIT_S = 10.0


def read_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_records(
    path: Path, predicate: Callable[[list[dict[str, Any]]], bool], what: str
) -> list[dict[str, Any]]:
    """The probe's records once `predicate` holds for them (a gate on the file; bounded)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        records = read_records(path)
        if predicate(records):
            return records
        time.sleep(0.02)
    raise AssertionError(f"the probe never recorded {what}: {read_records(path)!r:.3000}")


def telemetry_events(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [event for r in records if r["probe"] == "telemetry" for event in r["events"]]


def has_event(type_: str, **fields: Any) -> Callable[[list[dict[str, Any]]], bool]:
    def check(records: list[dict[str, Any]]) -> bool:
        return any(
            e["type"] == type_ and all(e["record"].get(k) == v for k, v in fields.items())
            for e in telemetry_events(records)
        )

    return check


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("extension-layer")
    (root / "extensions").mkdir()
    shutil.copy2(PROBE, root / "extensions" / "probe")
    return root


def function(layer: Path, out: Path, handler: str = "app.plain", **environment: str) -> dict[str, Any]:
    return {
        "code": str(CODE),
        "handler": handler,
        "layers": [str(layer)],
        "timeout": 10,
        "environment": {"PROBE_OUT": str(out), **environment},
    }


def serve(tmp_path: Path, tables: dict[str, dict[str, Any]]) -> Any:
    config = write_tables(tmp_path / "rapidboot.toml", tables)
    return running_server(["--config", str(config), "--state-dir", str(tmp_path / "state")], tmp_path)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, layer: Path) -> Iterator[tuple[RapidServer, Path]]:
    """One server for the tests that need no server stop of their own; each function has its own file."""
    root = tmp_path_factory.mktemp("extensions-shared")
    tables = {
        "holding": function(
            layer,
            root / "holding.jsonl",
            PROBE_MODE="hold_after_invoke",
            PROBE_GATE=str(root / "holding.gate"),
        ),
        "crash-invoke": function(layer, root / "crash-invoke.jsonl", PROBE_MODE="crash_on_invoke"),
        "crash-init": function(layer, root / "crash-init.jsonl", PROBE_MODE="crash_init"),
        "init-error": function(layer, root / "init-error.jsonl", PROBE_MODE="init_error"),
        "exit-error": function(layer, root / "exit-error.jsonl", PROBE_MODE="exit_error_on_invoke"),
        "reaped": {**function(layer, root / "reaped.jsonl"), "idle_timeout": 1},
        "slow": function(
            layer,
            root / "slow.jsonl",
            PROBE_MODE="slow_subscriber",
            PROBE_TYPES=ALL_TYPES,
            PROBE_GATE=str(root / "slow.gate"),
        ),
        "powertools": function(
            layer,
            root / "powertools.jsonl",
            "app.powertools",
            PROBE_TYPES="function",
            AWS_LAMBDA_LOG_FORMAT="JSON",
        ),
        "internal": {
            "code": str(CODE),
            "handler": "internal_app.handler",
            "timeout": 10,
            "environment": {"PROBE_OUT": str(root / "internal.jsonl")},
        },
        "fixed-port": function(
            layer, root / "fixed-port.jsonl", PROBE_TYPES="platform", PROBE_PORT=str(free_port())
        ),
    }
    with serve(root, tables) as server:
        yield server, root


# --- The life of an extension -------------------------------------------------------------------------


def test_an_extension_registers_sees_invokes_and_telemetry_and_gets_shutdown_at_server_stop(
    tmp_path: Path, layer: Path
) -> None:
    out = tmp_path / "probe.jsonl"
    with serve(tmp_path, {"observed": function(layer, out, PROBE_TYPES=ALL_TYPES)}) as server:
        response = server.invoke("observed", {"n": 1})
        assert response.status_code == 200 and response.json() == {"ok": True}
        request_id = request_id_of(response)
        report = server.report(request_id)
        records = wait_records(out, has_event("platform.report", requestId=request_id), "the invoke's report")
    # The server has stopped: the extension had its SHUTDOWN, and the log its output.
    records = read_records(out)
    registered = next(r for r in records if r["probe"] == "registered")
    assert registered["status"] == 200
    assert registered["body"] == {
        "functionName": "observed",
        "functionVersion": "$LATEST",
        "handler": "app.plain",
        "accountId": "123456789012",
    }
    events = [r["event"] for r in records if r["probe"] == "event"]
    invoke, shutdown = events[0], events[-1]
    assert invoke["eventType"] == "INVOKE" and invoke["requestId"] == request_id
    assert invoke["invokedFunctionArn"].endswith(":function:observed")
    assert invoke["tracing"]["type"] == "X-Amzn-Trace-Id" and invoke["tracing"]["value"].startswith("Root=")
    assert isinstance(invoke["deadlineMs"], int)
    assert shutdown["eventType"] == "SHUTDOWN" and shutdown["shutdownReason"] == "spindown"
    assert any("probe: shutting down (spindown)" in line for line in server.stdout.lines)
    assert any(line.startswith("EXTENSION\tName: probe\tState: Ready") for line in server.stdout.lines)
    # Telemetry: the platform's events in order, the function's and the extension's lines, all schema-valid.
    telemetry = telemetry_events(records)
    for event in telemetry:
        jsonschema.validate(event, TELEMETRY_EVENT_SCHEMA)
    types = [e["type"] for e in telemetry]
    for earlier, later in [
        ("platform.initStart", "platform.initRuntimeDone"),
        ("platform.initRuntimeDone", "platform.initReport"),
        ("platform.initReport", "platform.start"),
        ("platform.start", "platform.runtimeDone"),
        ("platform.runtimeDone", "platform.report"),
    ]:
        assert types.index(earlier) < types.index(later), types
    assert {"platform.extension", "platform.telemetrySubscription"} <= set(types)
    assert {"type": "function", "record": "hello from the handler"} in [
        {"type": e["type"], "record": e["record"]} for e in telemetry
    ]
    assert any(e["type"] == "extension" and "probe: INVOKE" in e["record"] for e in telemetry)
    report_event = next(e for e in telemetry if e["type"] == "platform.report")
    metrics = report_event["record"]["metrics"]
    assert report_event["record"]["status"] == "success"
    assert metrics["billedDurationMs"] == report.billed_ms
    assert metrics["memorySizeMB"] == 128 and metrics["initDurationMs"] > 0
    runtime_done = next(e for e in telemetry if e["type"] == "platform.runtimeDone")
    assert runtime_done["record"]["metrics"]["producedBytes"] == len(b'{"ok":true}')


def test_work_after_the_response_delays_the_next_invoke_not_the_caller(
    shared: tuple[RapidServer, Path],
) -> None:
    server, root = shared
    out, gate = root / "holding.jsonl", root / "holding.gate"
    first = server.invoke("holding", {})
    # The caller has its answer while the extension is still at work on the invoke (it waits for the gate):
    assert first.status_code == 200
    first_id = request_id_of(first)
    assert not server.lines_mentioning(f"REPORT RequestId: {first_id}")  # the invoke has not ended
    second: dict[str, Any] = {}
    caller = threading.Thread(target=lambda: second.update(response=server.invoke("holding", {})))
    caller.start()
    gate.touch()  # the extension finishes its work
    caller.join(WAIT_S * 3)
    assert second["response"].status_code == 200
    records = wait_records(out, lambda rs: sum(r["probe"] == "event" for r in rs) >= 2, "two invokes")
    order = [(r["probe"], r.get("requestId") or r.get("event", {}).get("requestId")) for r in records]
    released_at = order.index(("released", first_id))
    second_at = order.index(("event", request_id_of(second["response"])))
    assert released_at < second_at  # the second invoke waited for the extension, in the same environment
    first_report = server.report(first_id)
    assert first_report.status is None


def test_an_extension_that_crashes_during_an_invoke_fails_it_with_extension_crash(
    shared: tuple[RapidServer, Path],
) -> None:
    server, root = shared
    # The handler waits for a file that never comes: the extension's crash ends the invoke, not its answer.
    response = server.invoke("crash-invoke", {"wait_for": str(root / "never")})
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    body = response.json()
    assert body["errorType"] == "Extension.Crash"
    assert "exit status 5" in body["errorMessage"]
    report = server.report(request_id_of(response))
    assert report.error_type == "Extension.Crash"


def test_an_extension_that_crashes_during_init_fails_init(shared: tuple[RapidServer, Path]) -> None:
    server, _ = shared
    response = server.invoke("crash-init", {})
    assert response.json()["errorType"] == "Extension.Crash"
    line = server.wait_for_line(lambda line: line.startswith("INIT_REPORT") and "Extension.Crash" in line)
    assert "Status: error" in line
    assert server.lines_mentioning("probe: crashing before registering")


def test_init_error_and_exit_error_fail_with_the_extension_s_error_type(
    shared: tuple[RapidServer, Path],
) -> None:
    server, root = shared
    response = server.invoke("init-error", {})
    assert response.json()["errorType"] == "Extension.ProbeConfig"
    server.wait_for_line(lambda line: line.startswith("INIT_REPORT") and "Extension.ProbeConfig" in line)
    response = server.invoke("exit-error", {"wait_for": str(root / "never")})
    assert response.json()["errorType"] == "Extension.ProbeLost"
    assert server.report(request_id_of(response)).error_type == "Extension.ProbeLost"


def test_an_idle_environment_is_reaped_with_shutdown_first(shared: tuple[RapidServer, Path]) -> None:
    server, root = shared
    assert server.invoke("reaped", {}).status_code == 200
    records = wait_records(
        root / "reaped.jsonl",
        lambda rs: any(r["probe"] == "event" and r["event"]["eventType"] == "SHUTDOWN" for r in rs),
        "a SHUTDOWN",
    )
    shutdown = [r["event"] for r in records if r["probe"] == "event"][-1]
    assert shutdown["shutdownReason"] == "spindown"
    assert shutdown["deadlineMs"] > 0


# --- The environment's memory, shared -------------------------------------------------------------------


def test_an_extension_s_memory_counts_in_max_memory_used_and_in_the_function_s_limit(
    tmp_path: Path, layer: Path
) -> None:
    """The function's memory holds its runtime and its extensions together (one memory cgroup, as on
    Lambda): an extension's 60 MB show in Max Memory Used, and an extension that grows past the function's
    memory ends the environment as the runtime's own allocation would (Runtime.OutOfMemory)."""
    measured, hungry = tmp_path / "measured.jsonl", tmp_path / "hungry.jsonl"
    tables = {
        "measured": {**function(layer, measured, PROBE_ALLOCATE_MB="60"), "memory": 256},
        "hungry": {**function(layer, hungry, PROBE_ALLOCATE_MB="200"), "memory": 128},
    }
    with serve(tmp_path, tables) as server:
        first = server.invoke("measured", {})
        assert first.status_code == 200 and first.json() == {"ok": True}
        wait_records(measured, lambda rs: any(r["probe"] == "allocated" for r in rs), "its allocation")
        second = server.invoke("measured", {})  # ends once the probe has its 60 MB (it asked again)
        report = server.report(request_id_of(second))
        assert report.status is None, report
        # The runtime alone shows ~10 MB here (the old figure, without its extension), the probe ~15 + 60.
        assert report.max_memory_used_mb >= 60 + 25, report

        response = server.invoke("hungry", {"wait_for": str(tmp_path / "never")})
        request_id = request_id_of(response)
        assert response.headers.get("X-Amz-Function-Error") == "Unhandled", response.text
        assert response.json() == {
            "errorType": "Runtime.ExitError",
            "errorMessage": f"RequestId: {request_id} Error: Runtime exited with error: signal: killed",
        }
        report = server.report(request_id)
        assert (report.status, report.error_type) == ("error", "Runtime.OutOfMemory"), report
        assert report.max_memory_used_mb == 128, report


# --- SHUTDOWN after a timeout or a crash -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("reason", "event", "error_type"),
    [("timeout", {"wait_for": "never"}, "Sandbox.Timedout"), ("failure", {"exit": 3}, "Runtime.ExitError")],
)
def test_a_timeout_or_a_crash_sends_shutdown_with_its_reason_after_the_caller_s_answer(
    tmp_path: Path, layer: Path, reason: str, event: dict[str, Any], error_type: str
) -> None:
    out, gate = tmp_path / "probe.jsonl", tmp_path / "shutdown.gate"
    table = {**function(layer, out, PROBE_SHUTDOWN_GATE=str(gate)), "timeout": 1}
    with serve(tmp_path, {"ending": table}) as server:
        if "wait_for" in event:
            event = {"wait_for": str(tmp_path / "never")}
        response = server.invoke("ending", event)
        # The caller has its error while the extension is still at its SHUTDOWN work (held at the gate).
        assert response.headers.get("X-Amz-Function-Error") == "Unhandled", response.text
        assert response.json()["errorType"] == error_type
        records = wait_records(
            out,
            lambda rs: any(r["probe"] == "event" and r["event"]["eventType"] == "SHUTDOWN" for r in rs),
            "a SHUTDOWN",
        )
        assert not any(r["probe"] == "shutdown_done" for r in records)
        shutdown = [r["event"] for r in records if r["probe"] == "event"][-1]
        assert shutdown["shutdownReason"] == reason
        assert shutdown["deadlineMs"] > 0
        gate.touch()
        wait_records(out, lambda rs: any(r["probe"] == "shutdown_done" for r in rs), "its shutdown's end")
        # A new environment serves the next invoke.
        assert server.invoke("ending", {}).json() == {"ok": True}
    events = [r["event"] for r in read_records(out) if r["probe"] == "event"]
    # Its own SHUTDOWN, then the new environment's at the server's stop.
    assert [e["shutdownReason"] for e in events if e["eventType"] == "SHUTDOWN"] == [reason, "spindown"]


# --- Telemetry ------------------------------------------------------------------------------------------


def test_a_stuck_subscriber_loses_events_with_logs_dropped_and_never_blocks_the_function(
    shared: tuple[RapidServer, Path],
) -> None:
    server, root = shared
    out, gate = root / "slow.jsonl", root / "slow.gate"
    # The subscriber holds its first batch; meanwhile the function writes more than its buffer holds.
    response = server.invoke("slow", {"lines": 2500})
    assert response.status_code == 200  # the function was not held up by its subscriber
    gate.touch()
    assert server.invoke("slow", {}).status_code == 200
    records = wait_records(out, has_event_type("platform.logsDropped"), "platform.logsDropped")
    dropped = next(e for e in telemetry_events(records) if e["type"] == "platform.logsDropped")
    jsonschema.validate(dropped, TELEMETRY_EVENT_SCHEMA)
    assert dropped["record"]["droppedRecords"] > 0
    # At most one buffer (maxItems 1000) was kept while the subscriber was stuck.
    lines = [e["record"] for e in telemetry_events(records) if e["type"] == "function"]
    assert len([line for line in lines if str(line).startswith("line ")]) <= 1000 + 1000


def has_event_type(type_: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda records: any(e["type"] == type_ for e in telemetry_events(records))


def test_powertools_logger_and_metrics_arrive_as_structured_function_records(
    shared: tuple[RapidServer, Path],
) -> None:
    server, root = shared
    assert server.invoke("powertools", {}).status_code == 200
    records = wait_records(
        root / "powertools.jsonl",
        lambda rs: any(isinstance(e["record"], dict) and "_aws" in e["record"] for e in telemetry_events(rs)),
        "the Metrics record",
    )
    function_records = [e["record"] for e in telemetry_events(records) if e["type"] == "function"]
    logged = next(r for r in function_records if isinstance(r, dict) and r.get("message") == "order placed")
    assert logged["order_id"] == 7 and logged["service"] == "shop"
    emf = next(r for r in function_records if isinstance(r, dict) and "_aws" in r)
    assert emf["Orders"] == [1.0] or emf["Orders"] == 1.0
    assert "a plain line" in function_records  # a line that is no JSON stays text


def test_an_internal_extension_registers_from_the_runtime_and_gets_invokes(
    shared: tuple[RapidServer, Path],
) -> None:
    server, root = shared
    response = server.invoke("internal", {})
    assert response.status_code == 200
    records = wait_records(
        root / "internal.jsonl",
        lambda rs: any(r["probe"] == "event" for r in rs),
        "an INVOKE for the internal extension",
    )
    refused = next(r for r in records if r["probe"] == "refused")
    assert refused["status"] == 403 and refused["body"]["errorType"] == "Extension.InvalidEventType"
    assert next(r for r in records if r["probe"] == "logs_api")["status"] == 200
    after = next(r for r in records if r["probe"] == "telemetry_after_logs")
    assert after["status"] == 400 and "Logs API" in after["body"]["errorMessage"]
    event = next(r["event"] for r in records if r["probe"] == "event")
    assert event["eventType"] == "INVOKE" and event["requestId"] == request_id_of(response)


def test_two_environments_of_one_function_cannot_share_an_extension_s_fixed_port_and_say_so(
    shared: tuple[RapidServer, Path],
) -> None:
    server, root = shared
    gate = root / "fixed-port.gate"
    held: dict[str, Any] = {}
    first = threading.Thread(
        target=lambda: held.update(response=server.invoke("fixed-port", {"wait_for": str(gate)}))
    )
    first.start()
    wait_records(
        root / "fixed-port.jsonl", lambda rs: any(r["probe"] == "event" for r in rs), "the first INVOKE"
    )
    # The first environment is busy: a second starts, whose extension cannot listen on the same port.
    second = server.invoke("fixed-port", {})
    gate.touch()
    first.join(WAIT_S * 3)
    assert held["response"].status_code == 200
    body = second.json()
    assert body["errorType"] == "Extension.Crash"
    assert "share the host's network" in body["errorMessage"]


# --- AWS's telemetry event schema ----------------------------------------------------------------------
# The record schemas of AWS's "Telemetry API Event schema reference" (schema 2022-07-01): the required
# members and their types, per event type.


def _object(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "required": list(required),
        "properties": {**required, **(optional or {})},
    }


_STRING = {"type": "string"}
_NUMBER = {"type": "number"}
_INTEGER = {"type": "integer"}
_INIT_TYPE = {"enum": ["on-demand", "provisioned-concurrency", "snap-start"]}
_PHASE = {"enum": ["init", "invoke"]}
_STATUS = {"enum": ["success", "error", "failure", "timeout"]}
_TRACING = _object({"type": {"const": "X-Amzn-Trace-Id"}, "value": _STRING})
_SPAN = _object({"name": _STRING, "start": _STRING, "durationMs": _NUMBER})

RECORD_SCHEMAS: dict[str, dict[str, Any]] = {
    "platform.initStart": _object(
        {"initializationType": _INIT_TYPE, "phase": _PHASE},
        {
            "runtimeVersion": _STRING,
            "runtimeVersionArn": _STRING,
            "functionName": _STRING,
            "functionVersion": _STRING,
        },
    ),
    "platform.initRuntimeDone": _object(
        {"initializationType": _INIT_TYPE, "phase": _PHASE, "status": _STATUS}, {"errorType": _STRING}
    ),
    "platform.initReport": _object(
        {"initializationType": _INIT_TYPE, "phase": _PHASE, "metrics": _object({"durationMs": _NUMBER})},
        {"status": _STATUS, "errorType": _STRING},
    ),
    "platform.start": _object({"requestId": _STRING}, {"version": _STRING, "tracing": _TRACING}),
    "platform.runtimeDone": _object(
        {"requestId": _STRING, "status": _STATUS},
        {
            "errorType": _STRING,
            "metrics": _object({"durationMs": _NUMBER}, {"producedBytes": _INTEGER}),
            "spans": {"type": "array", "items": _SPAN},
            "tracing": _TRACING,
        },
    ),
    "platform.report": _object(
        {
            "requestId": _STRING,
            "status": _STATUS,
            "metrics": _object(
                {
                    "durationMs": _NUMBER,
                    "billedDurationMs": _INTEGER,
                    "memorySizeMB": _INTEGER,
                    "maxMemoryUsedMB": _INTEGER,
                },
                {"initDurationMs": _NUMBER, "restoreDurationMs": _NUMBER},
            ),
        },
        {"errorType": _STRING, "tracing": _TRACING, "spans": {"type": "array", "items": _SPAN}},
    ),
    "platform.extension": _object(
        {
            "name": _STRING,
            "state": _STRING,
            "events": {"type": "array", "items": {"enum": ["INVOKE", "SHUTDOWN"]}},
        },
        {"errorType": _STRING},
    ),
    "platform.telemetrySubscription": _object(
        {
            "name": _STRING,
            "state": _STRING,
            "types": {"type": "array", "items": {"enum": ["platform", "function", "extension"]}},
        }
    ),
    "platform.logsDropped": _object(
        {"reason": _STRING, "droppedRecords": _INTEGER, "droppedBytes": _INTEGER}
    ),
}

TELEMETRY_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["time", "type", "record"],
    "properties": {"time": {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"}},
    "allOf": [
        *(
            {"if": {"properties": {"type": {"const": name}}}, "then": {"properties": {"record": schema}}}
            for name, schema in RECORD_SCHEMAS.items()
        ),
        {
            "if": {"properties": {"type": {"enum": ["function", "extension"]}}},
            "then": {"properties": {"record": {"type": ["string", "object"]}}},
        },
        {"properties": {"type": {"enum": [*RECORD_SCHEMAS, "function", "extension"]}}},
    ],
}


# --- The example ----------------------------------------------------------------------------------------


def test_the_example_extension_prints_a_summary_of_each_invoke(tmp_path: Path) -> None:
    example = HERE.parents[1] / "examples" / "extension"
    config = example / "rapidboot.toml"
    args = ["--config", str(config), "--state-dir", str(tmp_path / "state")]
    with running_server(args, tmp_path) as server:
        response = server.invoke("hello", {"name": "you"})
        assert response.json() == {"greeting": "hello, you"}
        request_id = request_id_of(response)
        line = server.wait_for_line(lambda line: f"summary {request_id} success" in line)
    assert line.startswith("[hello invoke-summary] ")
    assert line.endswith("1 log lines")
