"""Process set-up: environment -> config, sys.path, stdio and logging, then the invoke loop.

Cold-start budget (`python -X importtime`, this machine): everything imported before the first
response is listed in each module's header comment; the runtime's own modules total ~2 ms.
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

import os  # frozen, and already imported by `site` in a normal start
import sys

from .client import RuntimeClient, RuntimeClientError
from .config import ConfigError, RuntimeConfig
from .logs import LogSink, RequestState, install_logging, open_log_sink, unbuffer_stdio
from .loop import run
from .shutdown import install_sigterm_handler

TEMPLATE_FD_ENV = "_RAPIDBOOT_TEMPLATE_FD"  # template.py's; not imported from there: it costs json, socket


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
    if TEMPLATE_FD_ENV in os.environ:  # SnapStart's template (template.py): one lookup otherwise
        return _template(config, sink, state)
    return run(config, client, sink, state)


def _template(config: RuntimeConfig, sink: LogSink, state: RequestState) -> int:
    """Init once and fork an environment's runtime per request; returns in the template when it is done,
    and in each child once that child's environment has no more use for it."""
    from .template import restore, serve_template

    control_fd = int(os.environ.pop(TEMPLATE_FD_ENV))
    restored = serve_template(control_fd, config, sink)
    if isinstance(restored, int):
        return restored
    try:  # the child: its own environment's settings, its own connection
        config = RuntimeConfig.from_environ([config.handler], os.environ, os.getcwd())
        client = RuntimeClient(config.runtime_api, config.user_agent)
    except (ConfigError, RuntimeClientError) as exc:
        sys.stderr.write(f"rapidboot: {exc}\n")
        return 1
    failed = restore(restored, client, sink)
    if failed is not None:
        return failed
    return run(config, client, sink, state, restored=True)


def set_sys_path(config: RuntimeConfig) -> None:
    """The managed Python runtime's order: task root, layer dirs that exist, then the interpreter's.

    Function code beats layers, which beat anything bundled with the interpreter.
    """
    front = [config.task_root, *(path for path in config.layer_paths() if os.path.isdir(path))]
    sys.path[:] = front + [path for path in sys.path if path not in front]
