"""Emulator mode's settings: read once from the image's environment, with AWS's base-image defaults."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from rapidboot.rapid_server.config import ConfigError
from rapidboot.rapid_server.emulator import EmulatorSettings


def test_defaults_are_the_base_images_and_ries(tmp_path: Path) -> None:
    settings = EmulatorSettings.from_environ(["app.handler"], {}, str(tmp_path))
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)
    assert (settings.timeout_s, settings.memory_mb) == (300, 3008)
    assert settings.task_root == tmp_path
    assert settings.handler == "app.handler"
    assert settings.state_dir is None


def test_argument_beats_handler_variable_and_task_root_beats_cwd(tmp_path: Path) -> None:
    environ = {"_HANDLER": "other.fn", "LAMBDA_TASK_ROOT": "/var/task", "RAPIDBOOT_STATE_DIR": "/tmp/s"}
    settings = EmulatorSettings.from_environ(["app.handler"], environ, str(tmp_path))
    assert settings.handler == "app.handler"
    assert settings.task_root == Path("/var/task")
    assert settings.state_dir == Path("/tmp/s")
    assert EmulatorSettings.from_environ([], environ, "/").handler == "other.fn"


def test_overrides(tmp_path: Path) -> None:
    environ = {
        "RAPIDBOOT_HOST": "127.0.0.1",
        "RAPIDBOOT_PORT": "0",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "900",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    }
    settings = EmulatorSettings.from_environ(["m.f"], environ, str(tmp_path))
    assert (settings.host, settings.port, settings.timeout_s, settings.memory_mb) == (
        "127.0.0.1",
        0,
        900,
        128,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("RAPIDBOOT_PORT", "65536"),
        ("RAPIDBOOT_PORT", "-1"),
        ("AWS_LAMBDA_FUNCTION_TIMEOUT", "0"),
        ("AWS_LAMBDA_FUNCTION_TIMEOUT", "2.5"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "10241"),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "lots"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^{name}='{value}': must be a whole number"):
        EmulatorSettings.from_environ(["m.f"], {name: value}, "/")


def test_no_handler_says_how_to_give_one() -> None:
    with pytest.raises(ConfigError, match="CMD"):
        EmulatorSettings.from_environ([], {"_HANDLER": "  "}, "/")


def test_the_image_environment_reaches_the_function_except_what_the_server_sets(tmp_path: Path) -> None:
    environ = {
        "GREETING": "hi",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "RAPIDBOOT_OPT_DIR": "/layers",  # the runtime's own knob: passed on
        "AWS_LAMBDA_MAX_CONCURRENCY": "2",
        "lowercase_proxy": "x",
        "PATH": "/usr/bin",
        "HOME": "/root",
        "TMPDIR": "/tmp",
        "_HANDLER": "app.handler",
        "AWS_LAMBDA_FUNCTION_NAME": "mine",
        "AWS_LAMBDA_FUNCTION_TIMEOUT": "5",
        "RAPIDBOOT_PORT": "0",
        "RAPIDBOOT_HOST": "127.0.0.1",
        "RAPIDBOOT_STATE_DIR": "/tmp/s",
    }
    settings = EmulatorSettings.from_environ([], environ, str(tmp_path))
    function = settings.function([sys.executable, "/var/rapidboot/bootstrap"])
    assert dict(function.environment) == {
        "GREETING": "hi",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "RAPIDBOOT_OPT_DIR": "/layers",
        "AWS_LAMBDA_MAX_CONCURRENCY": "2",
        "lowercase_proxy": "x",
    }
    assert function.name == "function"
    assert function.command == (sys.executable, "/var/rapidboot/bootstrap", "app.handler")
    assert (function.timeout_s, function.memory_mb) == (5.0, 3008)
    assert function.per_environment_concurrency == 2
    assert function.code == tmp_path.resolve()


def test_the_environment_is_not_held_to_the_4_kb_of_a_function_configuration(tmp_path: Path) -> None:
    environ = {f"IMAGE_VAR_{i}": "x" * 100 for i in range(60)}  # ~6.6 KB, like a large image's ENV
    function = EmulatorSettings.from_environ(["app.handler"], environ, str(tmp_path)).function(["python"])
    assert len(function.environment) == 60


def test_a_bad_concurrency_variable_is_refused(tmp_path: Path) -> None:
    settings = EmulatorSettings.from_environ(
        ["app.handler"], {"AWS_LAMBDA_MAX_CONCURRENCY": "many"}, str(tmp_path)
    )
    with pytest.raises(ConfigError, match="AWS_LAMBDA_MAX_CONCURRENCY"):
        settings.function(["python"])
