"""`python -m runtime app.handler`: the same as running the `bootstrap` executable."""

from .main import main

raise SystemExit(main())
