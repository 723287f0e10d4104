"""External extensions: the executables in `<opt>/extensions/` (from the layers, merged), started before
the runtime with the same environment variables, working directory and scratch space (TMPDIR), each in a
session of its own (killed with the environment), joining the environment's memory cgroup where it has one.
"""

from __future__ import annotations

import os
from pathlib import Path


def find_executables(opt_dir: Path | None) -> list[Path]:
    """The extensions to launch, in name order (the service launches them in alphabetical order)."""
    if opt_dir is None:
        return []
    directory = opt_dir / "extensions"
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return []
    return [
        Path(entry.path)
        for entry in entries
        if entry.is_file() and not entry.name.startswith(".") and os.access(entry.path, os.X_OK)
    ]
