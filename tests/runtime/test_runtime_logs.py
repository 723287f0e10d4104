"""Error log lines and the lazy `logging` set-up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from runtime.errors import ErrorReport
from runtime.logs import error_log_lines

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
from runtime.logs import RequestState, StdoutSink, install_logging
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
