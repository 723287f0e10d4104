"""`rapidboot --version`: the installed distribution's version, and nothing loaded for it otherwise."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version


def test_version_prints_the_installed_distributions_version() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "rapidboot.rapid_server", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"rapidboot {version('rapidboot')}\n"


def test_other_commands_do_not_load_importlib_metadata() -> None:
    probe = (
        "import sys; from rapidboot.rapid_server.cli import build_parser; "
        "build_parser().parse_args(['invoke', 'f']); "
        "print('importlib.metadata' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
