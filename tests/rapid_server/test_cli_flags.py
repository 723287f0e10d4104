"""`rapidboot serve` names the flag a bad value came from: `--memory: 64 MB is outside 128-10240 MB`, not
the table key of a configuration file the user never wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from rapidboot.rapid_server.cli import main


@pytest.fixture
def code(tmp_path: Path) -> Path:
    directory = tmp_path / "code"
    directory.mkdir()
    (directory / "app.py").write_text("def handler(event, context):\n    return event\n")
    return directory


# Every flag whose value rapidboot validates (argparse itself names the flag of a value of the wrong type).
CASES = [
    (["--name", "my fn"], "--name: function name 'my fn' must be 1-64 letters, digits, '-' or '_'"),
    (["--code", "/nonexistent/code"], "--code: /nonexistent/code does not exist"),
    (["--handler", " "], "--handler: required, e.g. 'app.handler'"),
    (["--memory", "64"], "--memory: 64 MB is outside 128-10240 MB"),
    (["--timeout", "901"], "--timeout: 901.0 s is outside 1-900 s"),
    (["--env", "AWS_REGION=x"], "--env AWS_REGION: reserved by Lambda and cannot be set"),
    (["--env", "1X=x"], "--env 1X: invalid name (2+ letters, digits or '_', starting with a letter)"),
    (["--env", "NOEQUALS"], "--env 'NOEQUALS': expected KEY=VALUE"),
    (["--env", f"BIG={'x' * 4100}"], "--env: 4103 bytes in total exceeds Lambda's 4096-byte limit"),
    (
        ["--env", "AWS_LAMBDA_MAX_CONCURRENCY=0"],
        "--env AWS_LAMBDA_MAX_CONCURRENCY: '0' must be a whole number 1-1000",
    ),
    (["--layer", "/nonexistent/layer.zip"], "--layer: /nonexistent/layer.zip does not exist"),
    (
        ["--runtime", "provided", "--command", "python3 x.py"],
        "--command: a provided runtime runs its own bootstrap; drop one of the two",
    ),
    (["--reserved-concurrency", "-1"], "--reserved-concurrency: -1 is outside 0-1000000"),
    (
        ["--reserved-concurrency", "2", "--provisioned-concurrency", "3"],
        "--provisioned-concurrency: 3 is more than --reserved-concurrency 2",
    ),
    (["--provisioned-concurrency", "-1"], "--provisioned-concurrency: -1 is outside 0-10000"),
    (["--idle-timeout", "0"], "--idle-timeout: must be a positive number of seconds, got 0.0"),
    (["--ephemeral-storage", "100"], "--ephemeral-storage: 100 is outside 512-10240"),
    (["--maximum-retry-attempts", "3"], "--maximum-retry-attempts: 3 is outside 0-2"),
    (["--maximum-event-age", "10"], "--maximum-event-age: 10.0 s is outside 60-21600 s"),
    (["--retry-base-delay", "0"], "--retry-base-delay: 0.0 s is outside 0.01-3600 s"),
    (["--on-success", "queue:x"], '--on-success: must be "function:NAME" or "file:PATH", got \'queue:x\''),
    (
        ["--on-failure", "function:other"],
        "--on-failure: function:other: no function 'other' here (the one function served from flags is "
        "'function'; use --config for several)",
    ),
    (["--port", "70000"], "--port 70000: must be 0-65535"),
    (["--max-concurrency", "0"], "--max-concurrency 0: must be at least 1"),
    (["--max-connections", "0"], "--max-connections 0: must be at least 1"),
    (["--keep-alive-timeout", "0"], "--keep-alive-timeout 0: must be more than 0 and at most 3600 s"),
    (["--request-head-timeout", "-1"], "--request-head-timeout -1: must be more than 0 and at most 3600 s"),
]


@pytest.mark.parametrize(("flags", "message"), CASES, ids=[" ".join(flags)[:40] for flags, _ in CASES])
def test_a_bad_flag_is_named_in_its_message(
    flags: list[str], message: str, code: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    given = dict(zip(flags[::2], flags[1::2], strict=True))
    source = [] if "--code" in given else ["--code", str(code)]
    source += [] if "--handler" in given else ["--handler", "app.handler"]
    argv = ["serve", *source, *flags, "--state-dir", str(tmp_path / "state")]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"rapidboot: {message}\n"
