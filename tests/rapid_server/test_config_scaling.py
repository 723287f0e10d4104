"""Configuration of pools and limits (`reserved_concurrency`, `provisioned_concurrency`, `idle_timeout`,
`ephemeral_storage`, `--max-concurrency`): typed when good, one ConfigError naming file, function and key
when not."""

from __future__ import annotations

from pathlib import Path

import pytest

from rapidboot.rapid_server.cli import main
from rapidboot.rapid_server.config import ConfigError, FunctionConfig, ServerConfig, load_toml


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "code").mkdir()
    return tmp_path


def load(project: Path, keys: str) -> FunctionConfig:
    path = project / "rapidboot.toml"
    path.write_text(f'[functions.fn]\ncode = "code"\nhandler = "app.handler"\n{keys}\n')
    return load_toml(path)["fn"]


def load_error(project: Path, keys: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(project, keys)
    message = str(caught.value)
    assert str(project / "rapidboot.toml") in message, message
    return message


def test_defaults(project: Path) -> None:
    config = load(project, "")
    assert (
        config.reserved_concurrency,
        config.provisioned_concurrency,
        config.idle_timeout_s,
        config.ephemeral_storage_mb,
    ) == (None, 0, 300.0, 512)


def test_good_values_are_typed(project: Path) -> None:
    config = load(
        project,
        "reserved_concurrency = 5\nprovisioned_concurrency = 2\nidle_timeout = 1\nephemeral_storage = 10240",
    )
    assert (
        config.reserved_concurrency,
        config.provisioned_concurrency,
        config.idle_timeout_s,
        config.ephemeral_storage_mb,
    ) == (5, 2, 1.0, 10240)
    assert isinstance(config.idle_timeout_s, float)
    assert load(project, "reserved_concurrency = 0").reserved_concurrency == 0
    assert load(project, "idle_timeout = 0.5").idle_timeout_s == 0.5


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ("reserved_concurrency = -1", "functions.fn.reserved_concurrency: -1 is outside"),
        ('reserved_concurrency = "2"', "functions.fn.reserved_concurrency: must be an integer"),
        ("reserved_concurrency = true", "functions.fn.reserved_concurrency: must be an integer"),
        ("reserved_concurrency = 1.5", "functions.fn.reserved_concurrency: must be an integer"),
        ("provisioned_concurrency = -1", "functions.fn.provisioned_concurrency: -1 is outside"),
        (
            "reserved_concurrency = 1\nprovisioned_concurrency = 2",
            "functions.fn.provisioned_concurrency: 2 is more than reserved_concurrency 1",
        ),
        ("idle_timeout = 0", "functions.fn.idle_timeout: must be a positive number"),
        ("idle_timeout = -3", "functions.fn.idle_timeout: must be a positive number"),
        ('idle_timeout = "5"', "functions.fn.idle_timeout: must be a positive number"),
        ("idle_timeout = false", "functions.fn.idle_timeout: must be a positive number"),
        ("ephemeral_storage = 511", "functions.fn.ephemeral_storage: 511 is outside 512-10240"),
        ("ephemeral_storage = 10241", "functions.fn.ephemeral_storage: 10241 is outside 512-10240"),
        ("ephemeral_storage = 1024.0", "functions.fn.ephemeral_storage: must be an integer"),
    ],
)
def test_bad_values_name_the_key(project: Path, keys: str, expected: str) -> None:
    assert expected in load_error(project, keys)


def test_reservations_over_max_concurrency_name_the_functions(project: Path) -> None:
    a = FunctionConfig("a", project / "code", "app.handler", reserved_concurrency=6)
    b = FunctionConfig("b", project / "code", "app.handler", reserved_concurrency=5)
    free = FunctionConfig("free", project / "code", "app.handler")
    with pytest.raises(ConfigError) as caught:
        ServerConfig({"a": a, "b": b, "free": free}, max_concurrency=10)
    message = str(caught.value)
    assert "11" in message and "a=6" in message and "b=5" in message and "10" in message, message
    assert "free" not in message
    # Exactly the maximum is fine.
    ServerConfig({"a": a, "free": free}, max_concurrency=6)


def test_cli_refuses_a_max_concurrency_below_one(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["serve", "--code", str(project / "code"), "--handler", "app.handler", "--max-concurrency", "0"]
    )
    assert code == 2
    assert "--max-concurrency 0: must be at least 1" in capsys.readouterr().err


def test_cli_flags_reach_the_function(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A flag value the validator refuses proves the flag is wired to its key."""
    base = ["serve", "--code", str(project / "code"), "--handler", "app.handler"]
    for flag, value, expected in [
        ("--reserved-concurrency", "-2", "--reserved-concurrency: -2 is outside"),
        ("--provisioned-concurrency", "-1", "--provisioned-concurrency: -1 is outside"),
        ("--idle-timeout", "0", "--idle-timeout: must be a positive number"),
        ("--ephemeral-storage", "100", "--ephemeral-storage: 100 is outside 512-10240"),
    ]:
        assert main([*base, flag, value]) == 2
        assert expected in capsys.readouterr().err, flag
