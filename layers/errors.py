"""The one exception this package raises for bad input."""

from __future__ import annotations


class LayerError(Exception):
    """A layer or deployment package that cannot be merged: missing, corrupt, hostile or over a limit.

    The message is meant for the user as is: it names the file, the member and the limit involved. The CLI
    prints it as `layers: <message>` and exits 2; the server can show it the same way."""
