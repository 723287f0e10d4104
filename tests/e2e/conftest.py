"""Fixtures for the end-to-end suite; the machinery lives in e2e_harness.py (the per-test ceiling is in
tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_harness import (
    RUNTIMES,
    SUITE_FUNCTIONS,
    RapidServer,
    prepare_code,
    running_server,
    write_config,
)

# --- Fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def code_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the function code: runtimes never write into the repository."""
    root = tmp_path_factory.mktemp("rapidboot-e2e")
    prepare_code(root)
    return root


@pytest.fixture(scope="session", params=RUNTIMES)
def runtime(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def suite_server(
    runtime: str, code_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RapidServer]:
    """The shared server for one runtime, configured with SUITE_FUNCTIONS through a rapidboot.toml.

    The toml sits beside the copied code and names it relatively; the server runs from another directory, so a
    server resolving `code` against its own cwd fails here.
    """
    config = write_config(code_root / f"rapidboot-{runtime}.toml", SUITE_FUNCTIONS, runtime, "functions")
    elsewhere = tmp_path_factory.mktemp(f"cwd-{runtime}")
    with running_server(["--config", str(config)], cwd=elsewhere) as server:
        yield server
