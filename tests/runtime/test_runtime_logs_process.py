"""Logging formats, levels and the telemetry fd, through the real bootstrap (and awslambdaric, for parity).

Every expectation below is asserted against both runtimes, so a pass is parity with awslambdaric 4.2.2.
`AWS_EXECUTION_ENV` is set as on Lambda's python3.12 runtime: only then does awslambdaric write
non-ASCII JSON as UTF-8 (rapidboot always does).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
from fake_runtime_api import FakeEvent
from runtime_harness import Run, run_runtime, write

HAVE_RIC = importlib.util.find_spec("awslambdaric") is not None
IMPLS = ["rapidboot", pytest.param("awslambdaric", marks=pytest.mark.skipif(not HAVE_RIC, reason="no ric"))]
ENV = {"AWS_EXECUTION_ENV": "AWS_Lambda_python3.12"}

APP = """\
import logging, os
log = logging.getLogger("app.mod")
logging.addLevelName(25, "NOTICE")
log.info("at init")

def handler(event, context):
    log.debug("dbg %s", 1)
    log.info("info é %s", "x", extra={"order": 7, "none": None, "obj": {1, 2}})
    log.info({"dict": "msg", "n": 1})
    log.log(25, "notice")
    log.warning("warn")
    try:
        raise ZeroDivisionError("division by zero")
    except ZeroDivisionError:
        log.exception("boom")
    log.critical("crit")
    print("printed")
    context.log("ctx")
    return os.environ.get("_LAMBDA_TELEMETRY_LOG_FD", "unset")

def fails(event, context):
    raise ValueError("bad é")
"""


DIVIDE_LINE = 'raise ZeroDivisionError("division by zero")'
EXCEPTION_LINE = 'log.exception("boom")'
RAISE_LINE = 'raise ValueError("bad é")'


def _line(text: str) -> int:
    return next(n for n, line in enumerate(APP.split("\n"), 1) if line.strip() == text)


def _events() -> list[FakeEvent]:
    return [
        FakeEvent({}, request_id="r1", headers={"Lambda-Runtime-Aws-Tenant-Id": "t1"}),
        FakeEvent({}, request_id="r2"),
    ]


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.split("\n") if line.startswith("{")]


def _expected_records(task_root: Path) -> list[dict[str, Any]]:
    """The JSON records of one `handler` invoke at level INFO, timestamps removed."""
    app = str(task_root / "app.py")
    base = {"logger": "app.mod", "requestId": "r1", "tenantId": "t1"}
    return [
        {"level": "INFO", "message": "info é x", **base, "order": 7, "obj": "{1, 2}"},
        {"level": "INFO", "message": {"dict": "msg", "n": 1}, **base},
        {"level": "INFO", "message": "notice", **base},  # custom level 25 rounds down to INFO
        {"level": "WARNING", "message": "warn", **base},
        {
            "level": "ERROR",
            "message": "boom",
            "logger": "app.mod",
            "stackTrace": [f'  File "{app}", line {_line(DIVIDE_LINE)}, in handler\n    {DIVIDE_LINE}\n'],
            "errorType": "ZeroDivisionError",
            "errorMessage": "division by zero",
            "requestId": "r1",
            "location": f"{app}:handler:{_line(EXCEPTION_LINE)}",
            "tenantId": "t1",
        },
        {"level": "CRITICAL", "message": "crit", **base},
    ]


def _strip_timestamp(record: dict[str, Any]) -> dict[str, Any]:
    timestamp = record.pop("timestamp")
    assert time.strptime(timestamp, "%Y-%m-%dT%H:%M:%SZ")
    return record


@pytest.mark.parametrize("impl", IMPLS)
def test_json_records_on_stdout(task_root: Path, impl: str) -> None:
    write(task_root, {"app.py": APP})
    env = {**ENV, "AWS_LAMBDA_LOG_FORMAT": "json", "AWS_LAMBDA_LOG_LEVEL": "INFO"}
    run = run_runtime(task_root, _events()[:1], impl=impl, env=env)
    assert [p.body for p in run.api.posts("/response")] == [b'"unset"']
    lines = [line for line in run.stdout.split("\n") if line.startswith("{")]
    records = [_strip_timestamp(json.loads(line)) for line in lines]
    assert records[0] == {"level": "INFO", "message": "at init", "logger": "app.mod", "requestId": ""}
    assert records[1:] == _expected_records(task_root)
    # Key order and byte shape: json.dumps defaults (", ", ": "), non-ASCII as UTF-8, one line each.
    assert [list(r) for r in records[1:]] == [list(r) for r in _expected_records(task_root)]
    assert lines[1].startswith('{"timestamp": "') and '"level": "INFO", "message": "info é x"' in lines[1]
    assert "printed\n" in run.stdout and "ctx" in run.stdout
    assert "dbg" not in run.stdout  # below the level


@pytest.mark.parametrize("impl", IMPLS)
def test_json_uncaught_error_records(task_root: Path, impl: str) -> None:
    write(task_root, {"app.py": APP})
    run = run_runtime(
        task_root,
        [FakeEvent({}, request_id="e1")],
        "app.fails",
        impl=impl,
        env={**ENV, "AWS_LAMBDA_LOG_FORMAT": "JSON"},
    )
    body = run.api.posts("/error")[0].json()
    lines = [line for line in run.stdout.split("\n") if '"level": "ERROR"' in line]
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert list(record) == ["timestamp", "level", "errorMessage", "errorType", "requestId", "stackTrace"]
    assert _strip_timestamp(record) == {"level": "ERROR", **body}
    assert record["errorMessage"] == "bad é" and record["requestId"] == "e1"
    assert '"errorMessage": "bad é"' in lines[0]


@pytest.mark.parametrize("impl", IMPLS)
def test_json_init_error_records(task_root: Path, impl: str) -> None:
    write(task_root, {"app.py": "raise KeyError('k')\n"})
    run = run_runtime(task_root, [FakeEvent({})], impl=impl, env={**ENV, "AWS_LAMBDA_LOG_FORMAT": "JSON"})
    warning, error = (_strip_timestamp(r) for r in _json_lines(run.stdout)[:2])
    assert warning["level"] == "WARNING" and warning["logger"] == "root" and warning["requestId"] == ""
    assert warning["message"].startswith("LAMBDA_WARNING: Unhandled exception.")
    assert error["level"] == "ERROR" and error["errorType"] == "KeyError" and error["requestId"] == ""
    assert error["errorMessage"] == "'k'"


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("level", "shown"),
    [
        ("TRACE", ["dbg 1", "info é x", "{'dict': 'msg', 'n': 1}", "notice", "warn", "boom", "crit"]),
        ("warn", ["warn", "boom", "crit"]),
        ("FATAL", ["crit"]),
        ("", ["warn", "boom", "crit"]),  # unset: Python's default, WARNING
    ],
)
def test_text_records_and_levels(task_root: Path, impl: str, level: str, shown: list[str]) -> None:
    if impl == "awslambdaric" and level == "warn":
        pytest.skip("awslambdaric matches level names case-sensitively; rapidboot accepts any case")
    write(task_root, {"app.py": APP})
    run = run_runtime(task_root, _events()[:1], impl=impl, env={**ENV, "AWS_LAMBDA_LOG_LEVEL": level})
    records = re.findall(r"\[(\w+)\]\t([-0-9T:.]+Z)\tr1\t([^\n]*)", run.stdout)
    assert [message for _, _, message in records] == shown
    names = {"dbg 1": "DEBUG", "notice": "NOTICE", "warn": "WARNING", "boom": "ERROR", "crit": "CRITICAL"}
    for name, timestamp, message in records:
        assert name == names.get(message, "INFO")
        assert time.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    # The exception text follows the record as logging.Formatter writes it, without a final newline
    # (so the next record starts on the same line, in awslambdaric too).
    if "boom" in shown:
        assert "\tr1\tboom\nTraceback (most recent call last):\n" in run.stdout
        assert "ZeroDivisionError: division by zero[CRITICAL]\t" in run.stdout


# -- the telemetry fd -------------------------------------------------------------------------------

TEXT = {"NOTSET": 0xA55A0003, "DEBUG": 0xA55A000B, "INFO": 0xA55A000F, "WARNING": 0xA55A0013}
TEXT |= {"ERROR": 0xA55A0017, "CRITICAL": 0xA55A001B}
JSON = {name: value - 1 for name, value in TEXT.items()}


def _frames(data: bytes) -> list[tuple[int, int, str]]:
    """(type, timestamp µs, payload) per frame; the stream must be whole frames, nothing else."""
    frames, offset = [], 0
    while offset < len(data):
        header = data[offset : offset + 16]
        assert len(header) == 16
        kind, length, timestamp = (
            int.from_bytes(header[:4]),
            int.from_bytes(header[4:8]),
            int.from_bytes(header[8:]),
        )
        payload = data[offset + 16 : offset + 16 + length]
        assert len(payload) == length
        frames.append((kind, timestamp, payload.decode("utf-8")))
        offset += 16 + length
    return frames


def _run_with_fd(
    tmp_path: Path, task_root: Path, handler: str, impl: str, env: dict[str, str]
) -> tuple[Run, list]:  # type: ignore[type-arg]
    path = tmp_path / "telemetry.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        start_us = time.time_ns() // 1000
        run = run_runtime(
            task_root,
            _events(),
            handler,
            impl=impl,
            env={**ENV, **env, "_LAMBDA_TELEMETRY_LOG_FD": str(fd)},
            pass_fds=(fd,),
        )
        end_us = time.time_ns() // 1000
    finally:
        os.close(fd)
    frames = _frames(path.read_bytes())
    assert all(start_us <= timestamp <= end_us for _, timestamp, _ in frames)
    return run, [(kind, payload) for kind, _, payload in frames]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_telemetry_fd_frames(tmp_path: Path, task_root: Path, impl: str, log_format: str) -> None:
    write(task_root, {"app.py": APP})
    env = {"AWS_LAMBDA_LOG_FORMAT": log_format, "AWS_LAMBDA_LOG_LEVEL": "INFO"}
    run, frames = _run_with_fd(tmp_path, task_root, "app.handler", impl, env)
    # The variable is gone before user code runs; print still goes to stdout; records only to the fd.
    assert [p.body for p in run.api.posts("/response")] == [b'"unset"', b'"unset"']
    assert run.stdout.count("printed\n") == 2
    assert "crit" not in run.stdout and "ctx" not in run.stdout
    types = TEXT if log_format == "Text" else JSON
    levels = ["INFO", "INFO", "INFO", "INFO", "WARNING", "ERROR", "CRITICAL"]
    kinds = [kind for kind, payload in frames if payload != "ctx"]
    assert kinds == [types[level] for level in levels + levels[1:]]
    # context.log: as is, no newline, an untyped (text NOTSET) frame even in JSON format.
    assert [kind for kind, payload in frames if payload == "ctx"] == [TEXT["NOTSET"]] * 2
    payloads = [payload for _, payload in frames]
    if log_format == "Text":
        assert payloads[0].startswith("[INFO]\t") and payloads[0].endswith("Z\t\tat init\n")
        assert payloads[5].startswith("[ERROR]\t") and "\tr1\tboom\nTraceback" in payloads[5]
    else:
        records = [_strip_timestamp(json.loads(p)) for p in payloads if p != "ctx"]
        assert records[1:7] == _expected_records(task_root)


@pytest.mark.parametrize("impl", IMPLS)
def test_telemetry_fd_text_without_level_is_untyped(tmp_path: Path, task_root: Path, impl: str) -> None:
    write(task_root, {"app.py": APP})
    _, frames = _run_with_fd(tmp_path, task_root, "app.handler", impl, {})
    assert [payload.split("\t")[-1].partition("\n")[0] for _, payload in frames][:4] == [
        "warn",
        "boom",
        "crit",
        "ctx",
    ]
    assert {kind for kind, _ in frames} == {TEXT["NOTSET"]}
    assert len(frames) == 8  # warn, boom, crit, ctx, twice


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_telemetry_fd_uncaught_error(tmp_path: Path, task_root: Path, impl: str, log_format: str) -> None:
    write(task_root, {"app.py": APP})
    run, frames = _run_with_fd(tmp_path, task_root, "app.fails", impl, {"AWS_LAMBDA_LOG_FORMAT": log_format})
    assert len(run.api.posts("/error")) == 2
    assert "ValueError" not in run.stdout
    assert len(frames) == 2
    kind, payload = frames[0]
    if log_format == "Text":
        assert kind == TEXT["ERROR"]
        app = task_root / "app.py"
        assert payload == (
            "[ERROR] ValueError: bad é\nTraceback (most recent call last):\n"
            f'\u00a0\u00a0File "{app}", line {_line(RAISE_LINE)}, in fails\n'
            '\u00a0\u00a0\u00a0\u00a0raise ValueError("bad é")'
        )
    else:
        assert kind == JSON["ERROR"]
        record = json.loads(payload)
        assert not payload.endswith("\n")
        assert _strip_timestamp(record) == {"level": "ERROR", **run.api.posts("/error")[0].json()}
