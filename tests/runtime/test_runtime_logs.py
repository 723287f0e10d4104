"""Error log lines and the lazy `logging` set-up."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from rapidboot.runtime.errors import ErrorReport
from rapidboot.runtime.logs import error_log_lines

REPO = Path(__file__).resolve().parents[2]


def test_error_lines_match_awslambdaric() -> None:
    report = ErrorReport(
        "ValueError", "bad\nthing", ['  File "a.py", line 1, in f\n    x()\n', ""], [], "ValueError"
    )
    assert error_log_lines(report) == [
        "[ERROR] ValueError: bad\nthing",
        "Traceback (most recent call last):",
        '\u00a0\u00a0File "a.py", line 1, in f',
        "\u00a0\u00a0\u00a0\u00a0x()",
        "",
    ]
    assert error_log_lines(ErrorReport("T", "", [], [], "T"))[0] == "[ERROR] T"


def test_logging_configured_on_first_import_only() -> None:
    # In a fresh interpreter: nothing imports logging until the user does; then it is wired up.
    script = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from rapidboot.runtime.logs import RequestState, StdoutSink, install_logging
state = RequestState()
install_logging("INFO", state, StdoutSink())
assert "logging" not in sys.modules
import logging
state.request_id = "rid-1"
logging.getLogger("x").info("hi %s", 1)
assert logging.getLogger().level == logging.INFO
assert logging.__spec__.loader.__class__.__name__ == "SourceFileLoader"
assert not any(type(f).__name__ == "_ConfigureOnImport" for f in sys.meta_path)
"""
    out = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("[INFO]\t") and out.stdout.endswith("Z\trid-1\thi 1\n")


def _record(msg: object = "m", exc_info: object = None, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("lg", 25, "/p.py", 7, msg, None, exc_info)  # type: ignore[arg-type]
    record.funcName = "fn"
    record.__dict__.update(extra)
    return record


def test_json_formatter_edge_cases() -> None:
    from rapidboot.runtime.json_log import JsonFormatter

    formatter = JsonFormatter()
    record = _record({"k": "v"}, aws_request_id="r", tenant_id=None, obj={1}, gone=None)
    out = formatter.format(record)
    assert out.endswith("}\n") and "\n" not in out[:-1]
    parsed = json.loads(out)
    assert parsed["level"] == "INFO" and parsed["message"] == {"k": "v"} and parsed["obj"] == "{1}"
    assert "gone" not in parsed and "tenantId" not in parsed and parsed["requestId"] == "r"
    assert (record.levelno, record.levelname) == (25, "Level 25")  # the record is left alone
    # logger.exception() outside an except block: awslambdaric raises AttributeError here.
    parsed = json.loads(formatter.format(_record("x", (None, None, None))))
    assert "errorType" not in parsed and "location" not in parsed


def test_json_error_record_shape() -> None:
    from rapidboot.runtime.logs import json_error_record

    report = ErrorReport("ValueError", "bad \ud800 é", ["  File ..."], [], "ValueError")
    record = json.loads(json_error_record(report, "rid"))
    assert list(record) == ["timestamp", "level", "errorMessage", "errorType", "requestId", "stackTrace"]
    assert record["level"] == "ERROR" and record["errorMessage"] == "bad \ud800 é"


def test_telemetry_sink_frames_and_bad_fd(tmp_path: Path) -> None:
    from rapidboot.runtime.config import RuntimeConfig
    from rapidboot.runtime.logs import StdoutSink, open_log_sink
    from rapidboot.runtime.telemetry import TelemetryFdSink

    path = tmp_path / "frames"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    sink = TelemetryFdSink(fd, json_format=False)
    sink.log("é")
    sink.log_error(["a", "b"])
    sink.log("\ud800", 0xA55A000F)  # a lone surrogate must not raise
    data = path.read_bytes()
    assert data[:8] == bytes.fromhex("a55a0003 00000002") and data[16:18] == "é".encode()
    assert data[18:26] == bytes.fromhex("a55a0017 00000003") and data[34:37] == b"a\nb"
    assert data[37:41] == bytes.fromhex("a55a000f") and data[53:] == b"\\ud800"
    config = RuntimeConfig("a.b", "x:1", "/", telemetry_log_fd=987654)
    assert type(open_log_sink(config)) is StdoutSink  # unusable fd: stdout, not a crash


def test_json_and_telemetry_cost_nothing_unless_enabled(task_root: Path) -> None:
    from fake_runtime_api import FakeEvent
    from runtime_harness import run_runtime, write

    app = (
        "import sys\n"
        "def handler(e, c):\n"
        "    return sorted(m.rpartition('.')[2] for m in sys.modules if 'rapidboot' in m)\n"
    )
    write(task_root, {"app.py": app})
    for env in ({}, {"AWS_LAMBDA_LOG_FORMAT": "JSON"}):
        run = run_runtime(task_root, [FakeEvent({})], env=env)
        loaded = json.loads(run.api.posts("/response")[0].body)
        assert not {"json_log", "telemetry", "log_handler"} & set(loaded), loaded
