"""Fixtures for the end-to-end suite; the machinery lives in e2e_harness.py (the per-test ceiling is in
tests/conftest.py)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from e2e_harness import (
    RUNTIMES,
    SUITE_FUNCTIONS,
    RapidServer,
    prepare_code,
    server_environment,
    supervised,
    write_config,
)
from not_linux import refused_lines, server_command

from rapidboot.benchmarks.peers import HOW_TO_NODE_RIC_ENV, node_ric_from_environment
from rapidboot.benchmarks.rie import HOW_TO_GET as RIE_HOW_TO
from rapidboot.benchmarks.rie import find_rie
from rapidboot.rapid_server.host import PORTABLE_VARIABLE

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
def portable(request: pytest.FixtureRequest) -> bool:
    """The suite server runs with RAPIDBOOT_PORTABLE=1: every Linux fallback forced (rapid_server/host.py),
    as on a host without /proc, pidfds or cgroups. False unless a module parametrises it."""
    return bool(getattr(request, "param", False))


@pytest.fixture(scope="session")
def suite_server(
    runtime: str, portable: bool, code_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RapidServer]:
    """The shared server for one runtime, configured with SUITE_FUNCTIONS through a rapidboot.toml.

    The toml sits beside the copied code and names it relatively; the server runs from another directory, so a
    server resolving `code` against its own cwd fails here.
    """
    variant = f"{runtime}-portable" if portable else runtime
    config = write_config(code_root / f"rapidboot-{variant}.toml", SUITE_FUNCTIONS, runtime, "functions")
    elsewhere = tmp_path_factory.mktemp(f"cwd-{variant}")
    env = server_environment()
    env.pop(PORTABLE_VARIABLE, None)
    if portable:
        env[PORTABLE_VARIABLE] = "1"
    server = RapidServer(["--config", str(config)], elsewhere, env)
    if portable:  # and with /proc and cgroups refused, to see that the server never reaches for them
        server.args = server_command(server.args)
    with supervised(server) as running:
        yield running
    refused = refused_lines(server.stderr.lines)
    assert refused == [], "the portable server reached for Linux:\n" + "\n".join(refused)


# --- AWS's own implementations (test_e2e_rie.py, test_e2e_node_ric.py) -----------------------------

RIE_SERVER = "aws-lambda-rie"  # the emulator's parameter value where tests are parametrised over servers
# A fixture naming a peer -> how it is found, and the line saying how to get it.
PEERS: dict[str, tuple[Callable[[], object | None], str]] = {
    "rie_bin": (find_rie, RIE_HOW_TO),
    "node_ric": (node_ric_from_environment, HOW_TO_NODE_RIC_ENV),
}


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """A test that needs a peer which is not installed is skipped with the line saying how to get it (raised
    here rather than in the fixture, so pytest folds every such skip into one summary line); in CI
    (`CI=true`), where .ci/run builds every peer, it fails. A peer variable naming nothing is an error."""
    needs = set(getattr(item, "fixturenames", ()))
    callspec = getattr(item, "callspec", None)
    if callspec is not None and RIE_SERVER in callspec.params.values():
        needs.add("rie_bin")  # a test parametrised over the servers, on the emulator's turn
    for fixture in PEERS.keys() & needs:
        find, how_to = PEERS[fixture]
        if find() is None:
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"CI=true and {how_to}")
            pytest.skip(how_to)


@pytest.fixture(scope="session")
def rie_bin() -> Path:
    """AWS's Runtime Interface Emulator: `RIE_BIN`, else `aws-lambda-rie` on PATH."""
    found = find_rie()
    assert found is not None
    return found


@pytest.fixture(scope="session")
def node_ric() -> list[str]:
    """AWS's Node runtime client's command: `[NODE22, NODE_RIC]`."""
    command = node_ric_from_environment()
    assert command is not None
    return command
