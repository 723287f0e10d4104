"""rapidboot's Lambda runtime interface client: a drop-in, faster-starting `awslambdaric`.

Entry points: the `bootstrap` executable at the repository root, `python -m rapidboot.runtime <handler>`,
or `rapidboot.runtime.main.main()`. This package imports nothing at import time.
"""

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    # `from rapidboot.runtime import on_shutdown` loads `shutdown` (sys, os) on first use only: importing the
    # package itself stays free.
    if name == "on_shutdown":
        from .shutdown import on_shutdown

        return on_shutdown
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
