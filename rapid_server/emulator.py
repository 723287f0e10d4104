"""Emulator mode: `bootstrap` (or `python -m rapidboot.runtime`) started where there is no Lambda around it.

On Lambda, and under any Runtime API, `AWS_LAMBDA_RUNTIME_API` is set and the bootstrap is the runtime.
Without it, the bootstrap is most likely the ENTRYPOINT of an image a developer started with
`docker run -p 9000:8080 image`: we then do what AWS's base images do with their emulator (RIE) and serve
the Invoke API for one function named `function`, run by this very bootstrap with the variable set::

    curl localhost:9000/2015-03-31/functions/function/invocations -d '{}'

Read here, once, from the image's environment (reference section 4, and what RIE reads):

| Variable | Meaning | Default |
| --- | --- | --- |
| argv[1], else `_HANDLER` | the handler (an image's CMD) | required |
| `LAMBDA_TASK_ROOT` | the code | the working directory (an image's WORKDIR) |
| `AWS_LAMBDA_FUNCTION_TIMEOUT` | seconds, 1-900 | 300, as RIE |
| `AWS_LAMBDA_FUNCTION_MEMORY_SIZE` | MB, 128-10240 | 3008, as RIE |
| `RAPIDBOOT_HOST` / `RAPIDBOOT_PORT` | the Invoke API's address | 0.0.0.0 / 8080, as AWS's base images |
| `RAPIDBOOT_STATE_DIR` | Event invokes' queue | a private temporary directory |

The rest of the environment (the image's `ENV` lines, `docker run -e`) reaches the function, as it does on
Lambda and under RIE, except what the server sets for every environment itself.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .config import (
    MAX_CONCURRENCY_VARIABLE,
    MEMORY_MAX_MB,
    MEMORY_MIN_MB,
    RESERVED_ENV_KEYS,
    TIMEOUT_MAX_S,
    TIMEOUT_MIN_S,
    ConfigError,
    FunctionConfig,
    ServerConfig,
    default_region,
    validate_function,
)

FUNCTION_NAME = "function"  # the name in AWS's base-image URL: /2015-03-31/functions/function/invocations
DEFAULT_HOST = "0.0.0.0"  # a container's port is only reachable from outside on all interfaces
DEFAULT_PORT = 8080  # AWS's base images serve their emulator here (`docker run -p 9000:8080`)
DEFAULT_TIMEOUT_S = 300  # RIE's defaults: a local run is rarely meant to time out at Lambda's 3 s
DEFAULT_MEMORY_MB = 3008

HOST_VARIABLE = "RAPIDBOOT_HOST"
PORT_VARIABLE = "RAPIDBOOT_PORT"
STATE_DIR_VARIABLE = "RAPIDBOOT_STATE_DIR"
TIMEOUT_VARIABLE = "AWS_LAMBDA_FUNCTION_TIMEOUT"
MEMORY_VARIABLE = "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"

# Not passed on to the function: Lambda's reserved names (the server sets them per environment), what the
# server derives from our own values (PATH and LD_LIBRARY_PATH gain the task root and /opt entries, TMPDIR
# is the environment's private /tmp), and this module's own settings.
_NOT_INHERITED = RESERVED_ENV_KEYS | {
    "PATH",
    "HOME",
    "LD_LIBRARY_PATH",
    "TMPDIR",
    TIMEOUT_VARIABLE,
    HOST_VARIABLE,
    PORT_VARIABLE,
    STATE_DIR_VARIABLE,
}


@dataclasses.dataclass(frozen=True, slots=True)
class EmulatorSettings:
    handler: str
    task_root: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    timeout_s: int = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    state_dir: Path | None = None  # None: a temporary directory, removed at exit
    environment: Mapping[str, str] = dataclasses.field(default_factory=dict)

    @classmethod
    def from_environ(cls, argv: Sequence[str], environ: Mapping[str, str], cwd: str) -> EmulatorSettings:
        """`argv`: the bootstrap's arguments after the program name (`[handler]`, or `[]` with `_HANDLER`)."""
        handler = (argv[0] if argv else environ.get("_HANDLER", "")).strip()
        if not handler:
            raise ConfigError(
                'no handler: give it as the image\'s CMD (e.g. CMD ["app.handler"]) or set _HANDLER'
            )
        state_dir = environ.get(STATE_DIR_VARIABLE)
        return cls(
            handler=handler,
            task_root=Path(environ.get("LAMBDA_TASK_ROOT") or cwd),
            host=environ.get(HOST_VARIABLE) or DEFAULT_HOST,
            port=_whole_number(environ, PORT_VARIABLE, DEFAULT_PORT, 0, 65535),
            timeout_s=_whole_number(
                environ, TIMEOUT_VARIABLE, DEFAULT_TIMEOUT_S, TIMEOUT_MIN_S, TIMEOUT_MAX_S
            ),
            memory_mb=_whole_number(
                environ, MEMORY_VARIABLE, DEFAULT_MEMORY_MB, MEMORY_MIN_MB, MEMORY_MAX_MB
            ),
            state_dir=Path(state_dir) if state_dir else None,
            environment={k: v for k, v in environ.items() if k not in _NOT_INHERITED},
        )

    def function(self, runtime_command: Sequence[str]) -> FunctionConfig:
        """The one function, run by `runtime_command` + the handler (the bootstrap that started us)."""
        where = f"emulator ({TIMEOUT_VARIABLE}, {MEMORY_VARIABLE}, LAMBDA_TASK_ROOT)"
        # Validated like a configured function, but only with the one variable that changes how the
        # server runs it; the image's environment is not a function configuration, so Lambda's 4 KB
        # limit on configured variables does not apply to it (nor does it on Lambda).
        checked = {k: v for k, v in self.environment.items() if k == MAX_CONCURRENCY_VARIABLE}
        function = validate_function(
            where,
            FUNCTION_NAME,
            self.task_root,
            self.handler,
            memory=self.memory_mb,
            timeout=self.timeout_s,
            environment=checked,
            command=[*runtime_command, self.handler],
        )
        return dataclasses.replace(function, environment=dict(self.environment))


def _whole_number(environ: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise ConfigError(f"{name}={raw!r}: must be a whole number {low}-{high}")
    return int(raw)


def main(argv: Sequence[str], runtime_command: Sequence[str]) -> int:
    """Serve the function until SIGTERM/SIGINT; returns the exit code (2: bad settings, as the CLI)."""
    try:
        settings = EmulatorSettings.from_environ(argv, os.environ, os.getcwd())
        function = settings.function(runtime_command)
    except ConfigError as exc:
        print(f"rapidboot: {exc}", file=sys.stderr, flush=True)
        return 2
    print(
        f"rapidboot: AWS_LAMBDA_RUNTIME_API is not set, so this is not Lambda: emulating it for "
        f"{settings.handler} in {function.code} on {settings.host}:{settings.port} (AWS's base images "
        f"serve their emulator on 0.0.0.0:8080; {HOST_VARIABLE} and {PORT_VARIABLE} change it). "
        f"Invoke: POST /2015-03-31/functions/{FUNCTION_NAME}/invocations",
        file=sys.stderr,
        flush=True,
    )
    try:
        from .server import run  # the server's modules (asyncio, uvloop, httptools) after the checks
    except ImportError as exc:  # a runtime-only install (`pip install --no-deps`, a copied bootstrap)
        print(f"rapidboot: the local emulator needs rapidboot's dependencies: {exc}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="rapidboot-emulator-") as scratch:
        config = ServerConfig(
            {FUNCTION_NAME: function},
            host=settings.host,
            port=settings.port,
            region=default_region(),
            state_dir=(settings.state_dir or Path(scratch)).resolve(),
        )
        try:
            return run(config)
        except ConfigError as exc:
            print(f"rapidboot: {exc}", file=sys.stderr, flush=True)
            return 2
        except OSError as exc:
            print(
                f"rapidboot: cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}",
                file=sys.stderr,
                flush=True,
            )
            return 2
