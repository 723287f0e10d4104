"""Configuration loading and validation (`rapidboot.rapid_server.config`): every problem is one ConfigError
that says where it came from (file, function, key) and what was wrong."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from rapidboot.rapid_server.config import (
    ENVIRONMENT_MAX_BYTES,
    ConfigError,
    FunctionConfig,
    load_toml,
    parse_env_assignments,
    validate_function,
    with_snap_start,
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project directory holding code/; the process runs from somewhere else entirely."""
    root = tmp_path / "project"
    (root / "code").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return root.resolve()


def write_toml(project: Path, body: str) -> Path:
    path = project / "rapidboot.toml"
    path.write_text(body)
    return path


def load_error(project: Path, body: str) -> str:
    path = write_toml(project, body)
    with pytest.raises(ConfigError) as caught:
        load_toml(path)
    message = str(caught.value)
    assert str(path) in message, "the message must name the file"
    return message


# Good configuration --------------------------------------------------------------------------------------


def test_good_config_is_loaded_and_typed(project: Path) -> None:
    path = write_toml(
        project,
        """
[functions.api]
code = "code"
handler = " app.handler "
memory = 512
timeout = 30
environment = { STAGE = "dev", RETRIES = 3, RATIO = 0.5 }
command = ["python3", "-m", "awslambdaric", "app.handler"]

[functions.worker-2]
code = "code"
handler = "jobs.run"
""",
    )
    functions = load_toml(path)
    assert list(functions) == ["api", "worker-2"]
    assert functions["api"] == FunctionConfig(
        name="api",
        code=project / "code",
        handler="app.handler",
        memory_mb=512,
        timeout_s=30.0,
        environment={"STAGE": "dev", "RETRIES": "3", "RATIO": "0.5"},
        command=("python3", "-m", "awslambdaric", "app.handler"),
    )
    worker = functions["worker-2"]
    assert (worker.memory_mb, worker.timeout_s, worker.environment, worker.command) == (128, 3.0, {}, None)
    assert isinstance(worker.timeout_s, float)


def test_relative_code_is_resolved_against_the_toml_directory_not_the_cwd(project: Path) -> None:
    (Path.cwd() / "code").mkdir()  # a decoy with the same name in the cwd
    (project / "code" / "nested").mkdir()
    path = write_toml(project, '[functions.f]\ncode = "code/nested/.."\nhandler = "app.handler"\n')
    assert load_toml(path)["f"].code == project / "code"


def test_absolute_code_is_kept(project: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    path = write_toml(project, f'[functions.f]\ncode = "{other}"\nhandler = "app.handler"\n')
    assert load_toml(path)["f"].code == other.resolve()


def test_relative_command_program_is_resolved_without_following_symlinks(project: Path) -> None:
    bin_dir = project / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    path = write_toml(
        project,
        '[functions.f]\ncode = "code"\nhandler = "app.handler"\ncommand = ["venv/bin/python", "-m", "x"]\n',
    )
    command = load_toml(path)["f"].command
    assert command == (str(project / "venv" / "bin" / "python"), "-m", "x")
    assert command is not None and os.path.islink(command[0])


def test_bare_and_absolute_command_programs_are_kept(project: Path) -> None:
    path = write_toml(
        project,
        '[functions.a]\ncode = "code"\nhandler = "h.h"\ncommand = ["python3", "b.py"]\n'
        '[functions.b]\ncode = "code"\nhandler = "h.h"\ncommand = ["/usr/bin/env", "python3"]\n',
    )
    functions = load_toml(path)
    assert functions["a"].command == ("python3", "b.py")
    assert functions["b"].command == ("/usr/bin/env", "python3")


def test_command_as_a_string_is_split_like_a_shell(project: Path) -> None:
    path = write_toml(
        project,
        """[functions.f]\ncode = "code"\nhandler = "h.h"\ncommand = "python3 -m 'my runtime' app.h"\n""",
    )
    assert load_toml(path)["f"].command == ("python3", "-m", "my runtime", "app.h")


@pytest.mark.parametrize(("memory", "timeout"), [(128, 1), (10240, 900), (1769, 2.5)])
def test_limits_are_inclusive(project: Path, memory: int, timeout: float) -> None:
    config = validate_function("cli", "f", project / "code", "app.handler", memory=memory, timeout=timeout)
    assert (config.memory_mb, config.timeout_s) == (memory, timeout)


def test_environment_of_exactly_4_kb_is_accepted(project: Path) -> None:
    environment = {"BIG": "x" * (ENVIRONMENT_MAX_BYTES - len("BIG"))}
    config = validate_function("cli", "f", project / "code", "app.handler", environment=environment)
    assert config.environment == environment


def test_validate_function_resolves_relative_code_against_base_dir(project: Path) -> None:
    config = validate_function("cli", "f", "code", "app.handler", base_dir=project)
    assert config.code == project / "code"


def test_validate_function_without_base_dir_uses_the_cwd(project: Path) -> None:
    (Path.cwd() / "here").mkdir()
    assert validate_function("cli", "f", "here", "a.b").code == (Path.cwd() / "here").resolve()


# Bad configuration: file, function and key named ---------------------------------------------------------

GOOD = 'code = "code"\nhandler = "app.handler"\n'


@pytest.mark.parametrize(
    ("extra", "key", "detail"),
    [
        pytest.param("memory = 127", "memory", "127 MB is outside 128-10240 MB", id="memory-too-small"),
        pytest.param("memory = 10241", "memory", "10241 MB is outside", id="memory-too-large"),
        pytest.param('memory = "256"', "memory", "must be an integer", id="memory-string"),
        pytest.param("memory = 256.0", "memory", "must be an integer", id="memory-float"),
        pytest.param("memory = true", "memory", "must be an integer", id="memory-bool"),
        pytest.param("timeout = 0", "timeout", "0 s is outside 1-900 s", id="timeout-zero"),
        pytest.param("timeout = 0.5", "timeout", "is outside 1-900 s", id="timeout-fraction"),
        pytest.param("timeout = 901", "timeout", "901 s is outside", id="timeout-too-large"),
        pytest.param('timeout = "3"', "timeout", "must be a number", id="timeout-string"),
        pytest.param("timeout = false", "timeout", "must be a number", id="timeout-bool"),
        pytest.param("command = 5", "command", "non-empty list of strings", id="command-int"),
        pytest.param("command = []", "command", "non-empty list of strings", id="command-empty"),
        pytest.param('command = ["python3", 1]', "command", "non-empty list of strings", id="command-mixed"),
        pytest.param('command = ""', "command", "non-empty list of strings", id="command-empty-string"),
        pytest.param('environment = "A=1"', "environment", "must be a table", id="environment-not-table"),
        pytest.param(
            'environment = { AWS_REGION = "eu-west-1" }',
            "environment.AWS_REGION",
            "reserved",
            id="reserved-env",
        ),
        pytest.param(
            'environment = { _HANDLER = "x" }', "environment._HANDLER", "reserved", id="underscore-handler"
        ),
        pytest.param(
            'environment = { AWS_LAMBDA_RUNTIME_API = "x" }',
            "environment.AWS_LAMBDA_RUNTIME_API",
            "reserved",
            id="reserved-runtime-api",
        ),
        pytest.param('environment = { "1BAD" = "x" }', "environment.1BAD", "invalid name", id="env-name"),
        pytest.param('environment = { "A-B" = "x" }', "environment.A-B", "invalid name", id="env-dash"),
        pytest.param("environment = { FLAG = true }", "environment.FLAG", "must be a string", id="env-bool"),
        pytest.param("environment = { LL = [1] }", "environment.LL", "must be a string", id="env-list"),
        pytest.param('environment = { A = "x" }', "environment.A", "invalid name (2+", id="env-one-letter"),
        pytest.param(
            f'environment = {{ AA = "{"x" * 2000}", BB = "{"y" * 2100}" }}',
            "environment",
            "4104 bytes in total exceeds Lambda's 4096-byte limit",
            id="env-over-4kb",
        ),
    ],
)
def test_bad_setting_names_file_function_and_key(project: Path, extra: str, key: str, detail: str) -> None:
    message = load_error(project, f"[functions.myfn]\n{GOOD}{extra}\n")
    assert f"functions.myfn.{key}:" in message
    assert detail in message


def test_missing_code_directory(project: Path) -> None:
    message = load_error(project, '[functions.myfn]\ncode = "nope"\nhandler = "app.handler"\n')
    assert "functions.myfn.code:" in message
    assert f"{project / 'nope'} does not exist" in message


def test_code_may_be_a_file_a_zip_package_checked_when_prepared(project: Path) -> None:
    (project / "function.zip").write_bytes(b"")
    functions = load_toml(
        write_toml(project, '[functions.myfn]\ncode = "function.zip"\nhandler = "app.handler"\n')
    )
    assert functions["myfn"].code == (project / "function.zip").resolve()


def test_missing_code_key(project: Path) -> None:
    message = load_error(project, '[functions.myfn]\nhandler = "app.handler"\n')
    assert "functions.myfn.code: required" in message


@pytest.mark.parametrize("handler", [None, '""', '"   "', "3"], ids=["absent", "empty", "blank", "int"])
def test_missing_handler(project: Path, handler: str | None) -> None:
    line = f"handler = {handler}\n" if handler is not None else ""
    message = load_error(project, f'[functions.myfn]\ncode = "code"\n{line}')
    assert "functions.myfn.handler: required" in message


def test_unknown_key_is_named_with_the_allowed_ones(project: Path) -> None:
    message = load_error(project, f"[functions.myfn]\n{GOOD}timeout_s = 3\nmemroy = 256\n")
    assert "functions.myfn:" in message
    assert "unknown key(s) memroy, timeout_s" in message
    assert (
        "allowed: code, command, durable, environment, ephemeral_storage, event_sources, handler, "
        "idle_timeout, layers, maximum_event_age, maximum_retry_attempts, memory, on_failure, on_success, "
        "provisioned_concurrency, reserved_concurrency, retry_base_delay, runtime, schedule, snap_start, "
        "timeout"
    ) in message


def test_unknown_top_level_key(project: Path) -> None:
    message = load_error(project, f"port = 9000\n[functions.myfn]\n{GOOD}")
    assert "unknown top-level key(s) port" in message


def test_bad_toml(project: Path) -> None:
    message = load_error(project, "[functions.myfn\ncode = \n")
    assert "not valid TOML" in message


def test_toml_that_is_not_utf8(project: Path) -> None:
    path = project / "rapidboot.toml"
    path.write_bytes(b'[functions.f]\ncode = "\xff"\n')
    with pytest.raises(ConfigError, match="not valid TOML") as caught:
        load_toml(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "body", ["", "[functions]\n", 'functions = "x"\n'], ids=["empty", "empty-table", "string"]
)
def test_no_functions(project: Path, body: str) -> None:
    message = load_error(project, body)
    assert "no functions" in message


def test_function_that_is_not_a_table(project: Path) -> None:
    message = load_error(project, "[functions]\nmyfn = 3\n")
    assert "functions.myfn: must be a table" in message


def test_bad_function_name(project: Path) -> None:
    message = load_error(project, f'[functions."my fn"]\n{GOOD}')
    assert "functions.my fn:" in message
    assert "function name 'my fn' must be 1-64 letters" in message


def test_function_name_of_65_characters(project: Path) -> None:
    name = "f" * 65
    message = load_error(project, f"[functions.{name}]\n{GOOD}")
    assert f"functions.{name}:" in message


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"
    with pytest.raises(ConfigError) as caught:
        load_toml(path)
    assert str(caught.value) == f"{path}: cannot read: No such file or directory"


def test_the_first_bad_function_is_named(project: Path) -> None:
    message = load_error(project, f"[functions.good]\n{GOOD}\n[functions.bad]\n{GOOD}memory = 1\n")
    assert "functions.bad.memory:" in message


def test_validate_function_prefixes_messages_with_where(project: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_function("--code/--handler", "f", project / "code", "a.b", environment={"TZ": "UTC"})
    assert str(caught.value) == "--code/--handler.environment.TZ: reserved by Lambda and cannot be set"


# --env KEY=VALUE -----------------------------------------------------------------------------------------


def test_parse_env_assignments() -> None:
    assert parse_env_assignments(["A=1", "B=x=y", "C=", "D= spaced "]) == {
        "A": "1",
        "B": "x=y",
        "C": "",
        "D": " spaced ",
    }
    assert parse_env_assignments([]) == {}
    assert parse_env_assignments(["A=1", "A=2"]) == {"A": "2"}


def test_parse_env_assignment_without_equals() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_env_assignments(["A=1", "OOPS"])
    assert str(caught.value) == "--env 'OOPS': expected KEY=VALUE"


def test_env_assignments_are_validated_like_the_file(project: Path) -> None:
    environment = parse_env_assignments(["AWS_LAMBDA_FUNCTION_NAME=x"])
    with pytest.raises(ConfigError, match=r"environment\.AWS_LAMBDA_FUNCTION_NAME: reserved"):
        validate_function("--code/--handler", "f", project / "code", "a.b", environment=environment)


# Reference section 4, "Res." column: written out here, not imported, so the two can disagree.
RESERVED_BY_LAMBDA = [
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "TZ",
]  # fmt: skip


@pytest.mark.parametrize("key", RESERVED_BY_LAMBDA)
def test_every_reserved_variable_is_refused(project: Path, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^cli\.environment\.{key}: "):
        validate_function("cli", "f", project / "code", "a.b", environment={key: "x"})


@pytest.mark.parametrize("key", ["LANG", "PATH", "LD_LIBRARY_PATH", "PYTHONPATH", "AWS_LAMBDA_LOG_LEVEL"])
def test_unreserved_variables_may_be_set(project: Path, key: str) -> None:
    config = validate_function("cli", "f", project / "code", "a.b", environment={key: "x"})
    assert config.environment == {key: "x"}


# SnapStart (issue 17) ------------------------------------------------------------------------------------


def test_snap_start_is_read_as_a_bool(project: Path) -> None:
    config = load_toml(write_toml(project, f"[functions.f]\n{GOOD}snap_start = true\n"))
    assert config["f"].snap_start is True
    assert load_toml(write_toml(project, f"[functions.f]\n{GOOD}"))["f"].snap_start is False


@pytest.mark.parametrize(
    ("extra", "detail"),
    [
        pytest.param('snap_start = "yes"', "must be true or false, got 'yes'", id="not-a-bool"),
        pytest.param(
            'snap_start = true\nruntime = "provided"', "a provided runtime's bootstrap cannot", id="provided"
        ),
        pytest.param(
            'snap_start = true\ncommand = ["python3", "-m", "awslambdaric"]',
            "the runtime `python3` (command) cannot be forked",
            id="command",
        ),
        pytest.param(
            'snap_start = true\nenvironment = { AWS_LAMBDA_MAX_CONCURRENCY = "4" }',
            "AWS_LAMBDA_MAX_CONCURRENCY runs several workers",
            id="workers",
        ),
    ],
)
def test_snap_start_refusals_name_the_setting(project: Path, extra: str, detail: str) -> None:
    message = load_error(project, f"[functions.myfn]\n{GOOD}{extra}\n")
    assert "functions.myfn.snap_start:" in message
    assert detail in message


def test_serve_snap_start_flag_turns_it_on_or_names_the_function_it_cannot(project: Path) -> None:
    function = load_toml(write_toml(project, f"[functions.f]\n{GOOD}"))["f"]
    assert with_snap_start(function).snap_start is True
    provided = load_toml(write_toml(project, f'[functions.g]\n{GOOD}runtime = "provided"\n'))["g"]
    with pytest.raises(ConfigError, match=r"^--snap-start: functions\.g: a provided runtime"):
        with_snap_start(provided)
