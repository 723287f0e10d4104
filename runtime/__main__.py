"""`python -m rapidboot.runtime app.handler`: the same as running the `bootstrap` executable."""

import os
import sys


def _main() -> int:
    package = (__spec__.parent if __spec__ is not None else "") or "rapidboot.runtime"
    if not os.environ.get("AWS_LAMBDA_RUNTIME_API"):  # not Lambda: the local emulator, as in `bootstrap`
        from rapidboot.rapid_server.emulator import main as emulate  # the server, only on this path

        return emulate(sys.argv[1:], [sys.executable, "-m", package])
    if os.environ.get("AWS_LAMBDA_EXEC_WRAPPER"):  # one lookup when unset, as in `bootstrap`
        from .exec_wrapper import exec_wrapper, wrapper_to_exec

        wrapper = wrapper_to_exec(os.environ)
        if wrapper is not None:
            return exec_wrapper(wrapper, [sys.executable, "-m", package, *sys.argv[1:]])
    from .main import main

    return main()


raise SystemExit(_main())
