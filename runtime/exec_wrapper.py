"""`AWS_LAMBDA_EXEC_WRAPPER`: re-exec the runtime under the user's wrapper, as the managed runtime does.

The managed Python runtime's shell bootstrap runs `exec "$wrapper" "$PYTHON" bootstrap.py` and fails
with 127 ("<wrapper>: does not exist") or 126 ("<wrapper>: is not an executable"). We do the same
from Python. The wrapper normally ends with `exec "$@"`, which starts this runtime again with the
variable still set (wrappers and the code they start may read it), so the re-exec is marked with
`_RAPIDBOOT_EXEC_WRAPPED=<wrapper>` and the marked start skips the wrapper (and drops the mark, so a
process the function itself spawns would wrap again).

Only reached when the variable is set: a start without it pays one `os.environ` lookup (in `bootstrap`).
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

import os
import sys

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import MutableMapping, Sequence

WRAPPER_ENV = "AWS_LAMBDA_EXEC_WRAPPER"
WRAPPED_MARK_ENV = "_RAPIDBOOT_EXEC_WRAPPED"
OPT_DIR_ENV = "RAPIDBOOT_OPT_DIR"  # where the layers are when not in /opt (config.RuntimeConfig.opt_dir)

EXIT_NOT_FOUND = 127  # the shell's "command not found"
EXIT_NOT_EXECUTABLE = 126  # the shell's "found but cannot execute"


def wrapper_to_exec(environ: MutableMapping[str, str]) -> str | None:
    """The wrapper to re-exec under, or None (unset, or this process is the wrapper's child).

    A wrapper that a layer brings is named as on Lambda, `/opt/...`. Where the layers are merged
    elsewhere (our server: `RAPIDBOOT_OPT_DIR`, which also places `<opt>/python` on sys.path), it is
    looked up there, so the same function configuration runs unchanged locally.
    """
    wrapper = environ.get(WRAPPER_ENV)
    if not wrapper:
        return None
    if environ.pop(WRAPPED_MARK_ENV, None) == wrapper:
        return None
    opt_dir = environ.get(OPT_DIR_ENV, "").rstrip("/")
    if opt_dir and wrapper.startswith("/opt/"):
        return opt_dir + wrapper[len("/opt") :]
    return wrapper


def exec_wrapper(wrapper: str, command: Sequence[str]) -> int:
    """`exec wrapper <command...>`; returns an exit code only if the exec cannot happen."""
    if not os.path.isfile(wrapper):  # the shell bootstrap's `[ ! -f "$wrapper" ]`
        sys.stderr.write(f"{wrapper}: does not exist\n")
        return EXIT_NOT_FOUND
    if not os.access(wrapper, os.X_OK):
        sys.stderr.write(f"{wrapper}: is not an executable\n")
        return EXIT_NOT_EXECUTABLE
    # The mark is the variable's value (what the next start compares), not the path looked up.
    os.environ[WRAPPED_MARK_ENV] = os.environ.get(WRAPPER_ENV) or wrapper
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execv(wrapper, [wrapper, *command])
    except OSError as exc:  # e.g. a script without a valid `#!` line (ENOEXEC)
        os.environ.pop(WRAPPED_MARK_ENV, None)
        sys.stderr.write(f"{wrapper}: cannot execute: {exc.strerror}\n")
    return EXIT_NOT_EXECUTABLE
