"""Process set-up: environment -> config, sys.path, stdio and logging, then the invoke loop.

Cold-start budget (`python -X importtime`, this machine): everything imported before the first
response is listed in each module's header comment; the runtime's own modules total ~2 ms.
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

import os  # frozen, and already imported by `site` in a normal start
import sys

from .client import RuntimeClient, RuntimeClientError
from .config import ConfigError, RuntimeConfig
from .logs import RequestState, install_logging, open_log_sink, unbuffer_stdio
from .loop import run
from .shutdown import install_sigterm_handler


def main(argv: list[str] | None = None) -> int:
    """`argv`: the arguments after the program name (default `sys.argv[1:]`). Returns the exit code."""
    try:
        config = RuntimeConfig.from_environ(sys.argv[1:] if argv is None else argv, os.environ, os.getcwd())
        client = RuntimeClient(config.runtime_api, config.user_agent)
    except (ConfigError, RuntimeClientError) as exc:
        sys.stderr.write(f"rapidboot: {exc}\n")
        return 1
    set_sys_path(config)
    unbuffer_stdio()
    state = RequestState()
    sink = open_log_sink(config)  # logging (3a): stdout, or frames on _LAMBDA_TELEMETRY_LOG_FD
    install_logging(config.log_level, state, sink)
    workers = config.max_concurrency
    if workers is not None and workers > 1:
        from .workers import run_workers  # Managed Instances only

        def work() -> int:
            install_sigterm_handler()
            return run(config, client, sink, state)

        return run_workers(workers, work)
    # Before the function's code is imported: a SIGTERM handler of its own replaces ours.
    install_sigterm_handler()
    return run(config, client, sink, state)


def set_sys_path(config: RuntimeConfig) -> None:
    """The managed Python runtime's order: task root, layer dirs that exist, then the interpreter's.

    Function code beats layers, which beat anything bundled with the interpreter.
    """
    front = [config.task_root, *(path for path in config.layer_paths() if os.path.isdir(path))]
    sys.path[:] = front + [path for path in sys.path if path not in front]
