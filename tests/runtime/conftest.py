from __future__ import annotations

import sys
from pathlib import Path

import pytest

# The helpers beside this file (fake_runtime_api, runtime_harness) are imported by plain name.
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    root = tmp_path / "task"
    root.mkdir()
    return root
