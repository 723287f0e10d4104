"""`rapidboot bench --code DIR --handler MODULE.FUNCTION [--event FILE]`: the user's own function, measured
with each runtime installed; a failing handler is that runtime's failure; bad input is one line, status 2."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rapidboot.rapid_server import cli

KEYS = ["user.coldstart", "user.warm", "user.warm.p99", "user.memory.idle", "user.memory.peak"]
RUNTIMES = ["rapidboot", "awslambdaric"] if importlib.util.find_spec("awslambdaric") else ["rapidboot"]
# Needs the event's "orders" (a run without the user's event fails) and answers something that is not it.
ORDERS = 'def handler(event, context):\n    return {"count": len(event["orders"])}\n'


@pytest.fixture(autouse=True)
def no_peer_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RIE_BIN", "NODE22", "NODE_RIC"):
        monkeypatch.delenv(name, raising=False)


def bench(tmp_path: Path, *arguments: str, charts: bool = False) -> dict[str, Any]:
    """An in-process `rapidboot bench --quick` of the user's function; its results.json."""
    out = tmp_path / "out"
    flags = ["--quick", "--out", str(out)] + ([] if charts else ["--no-charts"])
    assert cli.main(["bench", *arguments, *flags]) == 0
    results: dict[str, Any] = json.loads((out / "results.json").read_text())
    return results


def entries(results: dict[str, Any], key: str) -> dict[str, dict[str, Any]]:
    row = next(row for row in results["rows"] if row["key"] == key)
    return {entry["name"]: entry for entry in row["entries"]}


def test_measures_the_users_function_with_each_runtime(tmp_path: Path) -> None:
    code = tmp_path / "code"
    (code / "orders").mkdir(parents=True)
    (code / "orders" / "api.py").write_text(ORDERS)  # a module in a package directory, as Lambda allows
    event = tmp_path / "event.json"
    event.write_text('{"orders": [1, 2, 3]}')
    out = tmp_path / "out"
    command = [sys.executable, "-m", "rapidboot.rapid_server", "bench", "--code", str(code)]
    command += ["--handler", "orders/api.handler", "--event", str(event), "--quick", "--out", str(out)]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert completed.returncode == 0, completed.stderr
    results = json.loads((out / "results.json").read_text())
    assert [row["key"] for row in results["rows"]] == KEYS
    for key, samples in zip(KEYS, [5, 100, 1, 1, 1], strict=True):  # --quick: 5 spawns, 100 warm invokes
        by_name = entries(results, key)
        assert list(by_name) == RUNTIMES
        for entry in by_name.values():
            assert len(entry["samples"]) == samples and "error" not in entry, (key, entry)
    for name in RUNTIMES:
        idle, peak = entries(results, "user.memory.idle")[name], entries(results, "user.memory.peak")[name]
        assert 0 < idle["samples"][0] <= peak["samples"][0]
    assert [check["passed"] for check in results["checks"]] == [True] * len(RUNTIMES)
    report = (out / "report.md").read_text()
    assert "| cold start, orders/api.handler (ms) |" in report
    assert "warm invoke, orders/api.handler, 21 B event (p50)" in completed.stdout
    if len(RUNTIMES) > 1:
        assert "## Ratio per runtime" in report and "rapidboot / awslambdaric" in completed.stdout
    if importlib.util.find_spec("matplotlib"):
        assert (out / "coldstart.png").stat().st_size > 0 and (out / "warm_latency.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("source", "handler", "error"),
    [
        (
            'def handler(event, context):\n    raise ValueError("no such order: 42")\n',
            "app.handler",
            "ValueError",
        ),
        ("import no_such_dependency\n", "app.handler", "Runtime.ImportModuleError"),
        (
            "import time\n\n\ndef handler(event, context):\n    time.sleep(30)\n",
            "app.handler",
            "Sandbox.Timedout",
        ),
    ],
    ids=["raises", "cannot-import", "times-out"],
)
def test_a_failing_handler_is_each_runtimes_failure(
    tmp_path: Path, source: str, handler: str, error: str
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(source)
    # With the charts once: a row without any samples is not drawn.
    charts = error == "ValueError"
    results = bench(tmp_path, "--code", str(code), "--handler", handler, "--timeout", "1", charts=charts)
    for key in KEYS:
        for name, entry in entries(results, key).items():
            assert entry["samples"] == [] and entry["error"].startswith(f"first invoke: {error}"), (key, name)
    assert [(c["subject"], c["passed"]) for c in results["checks"]] == [(name, False) for name in RUNTIMES]
    assert all(error in check["detail"] for check in results["checks"])
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"FAIL**: your function answers its event (rapidboot): first invoke: {error}" in report


@pytest.mark.skipif(len(RUNTIMES) < 2, reason="needs a second runtime: `pip install awslambdaric`")
def test_one_runtime_failing_mid_run_leaves_the_others_measured(tmp_path: Path) -> None:
    """The function fails under awslambdaric on its third invoke (the warm loop): ours is measured in full."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(
        "import sys\n\nCALLS = []\n\n\ndef handler(event, context):\n    CALLS.append(1)\n"
        '    if "awslambdaric" in sys.modules and len(CALLS) == 3:\n'
        '        raise KeyError("orders")\n    return len(CALLS)\n'
    )
    results = bench(tmp_path, "--code", str(code), "--handler", "app.handler")
    for key in KEYS:
        ours, theirs = entries(results, key)["rapidboot"], entries(results, key)["awslambdaric"]
        assert ours["samples"] and "error" not in ours, key
        assert theirs["samples"] == [] and theirs["error"] == "warm invoke: KeyError: 'orders'", key
    assert [(c["subject"], c["passed"]) for c in results["checks"]] == [
        ("rapidboot", True),
        ("awslambdaric", False),
    ]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--code", "{tmp}/missing", "--handler", "app.handler"], "--code {tmp}/missing: no such directory"),
        (
            ["--code", "{tmp}", "--handler", "app"],
            "--handler app: expected MODULE.FUNCTION, e.g. app.handler",
        ),
        (
            ["--code", "{tmp}", "--handler", "app.handler", "--event", "{tmp}/bad.json"],
            "--event {tmp}/bad.json: not JSON",
        ),
        (
            ["--code", "{tmp}", "--handler", "app.handler", "--event", "{tmp}/none.json"],
            "--event {tmp}/none.json: cannot read it",
        ),
        (["--handler", "app.handler"], "--code DIR is required"),
        (["--code", "{tmp}"], "--handler MODULE.FUNCTION is required"),
        (["--code", "{tmp}", "--handler", "app.handler", "--timeout", "0"], "--timeout 0: outside 1-900"),
    ],
    ids=[
        "no-code-dir",
        "malformed-handler",
        "event-not-json",
        "event-missing",
        "no-code",
        "no-handler",
        "timeout",
    ],
)
def test_bad_input_is_one_line_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    (tmp_path / "bad.json").write_text('{"orders": [1,')
    given = [argument.replace("{tmp}", str(tmp_path)) for argument in arguments]
    assert cli.main(["bench", *given, "--out", str(tmp_path / "out")]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"rapidboot bench: {message.replace('{tmp}', str(tmp_path))}")
    assert captured.err.count("\n") == 1 and captured.out == ""
    assert not (tmp_path / "out").exists()  # nothing measured, nothing written
