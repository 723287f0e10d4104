"""rapidboot's Lambda runtime interface client: a drop-in, faster-starting `awslambdaric`.

Entry points: the `bootstrap` executable at the repository root, `python -m runtime <handler>`,
or `runtime.main.main()`. This package imports nothing at import time.
"""

__version__ = "0.1.0"
