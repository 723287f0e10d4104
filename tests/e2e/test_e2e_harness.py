"""The harness must be able to fail: its orphan check, its REPORT parser and its bounded waits."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import sys
import threading
from pathlib import Path

import httpx
import pytest
from e2e_harness import (
    EXIT_TIMEOUT_S,
    HTTP_TIMEOUT_S,
    LineCollector,
    Report,
    is_supervisor,
    running_server,
    wait_process_gone,
)

pytestmark = pytest.mark.e2e

GOOD_REPORT = (
    "REPORT RequestId: 6f1c\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB"
    "\tMax Memory Used: 40 MB\tInit Duration: 123.45 ms"
)


def test_report_parser_accepts_lambdas_format() -> None:
    report = Report.parse(GOOD_REPORT + "\tStatus: error\tError Type: Runtime.ExitError")
    assert report == Report("6f1c", 12.34, 13, 128, 40, 123.45, "error", "Runtime.ExitError")
    assert Report.parse(GOOD_REPORT.split("\tInit")[0]).init_duration_ms is None


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(GOOD_REPORT.replace("\t", " "), id="spaces-not-tabs"),
        pytest.param(GOOD_REPORT.replace("12.34 ms", "12.3 ms"), id="one-decimal"),
        pytest.param(
            "REPORT RequestId: 6f1c\tInit Duration: 0.03 ms\tDuration: 12.34 ms\tBilled Duration: 13 ms"
            "\tMemory Size: 128 MB\tMax Memory Used: 128 MB",
            id="rie-init-duration-first",
        ),
        pytest.param(GOOD_REPORT + "\t", id="trailing-tab"),
    ],
)
def test_report_parser_rejects_other_formats(line: str) -> None:
    with pytest.raises(AssertionError, match="not in Lambda's format"):
        Report.parse(line)


def test_line_wait_is_bounded() -> None:
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as reader, os.fdopen(write_end, "wb") as writer:
        collector = LineCollector(reader, "silent")
        assert collector.wait_for(lambda line: True, timeout=0.2) is None
        writer.write(b"late line\n")
        writer.flush()
        assert collector.wait_for(lambda line: line == "late line") == "late line"
        writer.close()
        collector.join(5)
        assert collector.closed


def test_orphan_check_catches_a_runtime_the_server_left_behind(code_root: Path, tmp_path: Path) -> None:
    """SIGKILL of the server and of its supervisor (which would otherwise end its environments) gives
    nothing a chance to stop the runtime: the check must report (and reap) it."""
    handler = "handlers.state"
    command = shlex.join([sys.executable, "-m", "awslambdaric", handler])
    args = ["--code", str(code_root / "functions" / "basic"), "--handler", handler, "--command", command]
    with running_server(args, tmp_path, check_shutdown=False) as server:
        assert server.process is not None
        sleeper_pid = server.invoke("function", {}).json()["pid"]
        url = server.endpoint + server.invoke_path("function")
        caller = threading.Thread(target=_post_ignoring_errors, args=(url, b'{"sleep": 60}'), daemon=True)
        mark = len(server.stdout.lines)
        caller.start()
        server.wait_for_line(lambda line: line.startswith("START RequestId: "), after=mark)
        sleeper = server.seen_process(sleeper_pid)
        [supervisor] = [p for p in server.record_processes() if is_supervisor(p)]
        os.kill(supervisor.pid, signal.SIGKILL)
        assert wait_process_gone(supervisor, EXIT_TIMEOUT_S)

        server.process.kill()
        server.process.wait(EXIT_TIMEOUT_S)
        with pytest.raises(AssertionError, match="processes outlived the server"):
            server.assert_no_survivors(grace=0.5)
        assert wait_process_gone(sleeper, EXIT_TIMEOUT_S), "the check must also reap what it found"
        caller.join(HTTP_TIMEOUT_S)
        assert not caller.is_alive()


def _post_ignoring_errors(url: str, content: bytes) -> None:
    with contextlib.suppress(httpx.HTTPError), httpx.Client(timeout=HTTP_TIMEOUT_S) as client:
        client.post(url, content=content)
