"""The observability routes of the Invoke API's listener, on one screen:

    GET /metrics                    Lambda's metrics, Prometheus' text format (exposition.py)
    GET /_rapidboot/                the console's page (static/index.html), and its static files
    GET /_rapidboot/api/state       the console's data as JSON (`?since=N`: only invokes after N)
    GET /_rapidboot/api/events      the same, live, as server-sent events (console.py)

The console's routes exist only while it is on (`serve --no-console`: they are the Lambda API's 404, as
any unknown path). Served on the Invoke API's host and port, so reachable exactly as far as the API is.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import orjson

from .. import rendering
from ..http import Request, Response
from ..server_state import ServerState
from .console import Console

METRICS_PATH = "/metrics"
CONSOLE_PREFIX = "/_rapidboot"
_STATIC_TYPES = {
    "index.html": "text/html; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
}


def is_observability_path(path: str) -> bool:
    return path == METRICS_PATH or path.startswith(CONSOLE_PREFIX)


# What `handle` answers for a path that is not ours (here, now): the caller answers it as unknown.
NOT_OURS = Response(404)


def handle(state: ServerState, console: Console | None, request: Request) -> Response | None:
    """The answer to one of our paths; None when answered on the connection (the feed), NOT_OURS when
    the path is not served here."""
    path = request.path
    if path == METRICS_PATH:
        return _only_get(request) or _metrics(state)
    if console is None:
        return NOT_OURS
    if path == CONSOLE_PREFIX:
        return Response(308, b"", [("Location", CONSOLE_PREFIX + "/")])
    page = path[len(CONSOLE_PREFIX) + 1 :] if path.startswith(CONSOLE_PREFIX + "/") else None
    if page is None:
        return NOT_OURS
    if page in ("api/events", "api/state"):
        since = _since(request)
        refusal = _only_get(request) or (_bad_since(request) if since is None else None)
        if refusal is not None or since is None:
            return refusal
        if page == "api/state":
            body = orjson.dumps(console.snapshot(since))
            return Response(200, body, [rendering.JSON, ("Cache-Control", "no-store")])
        console.watch(request.connection, since)
        return None  # answered on the connection: a stream until the watcher or the server goes
    name = page or "index.html"
    content_type = _STATIC_TYPES.get(name)
    if content_type is None:
        return NOT_OURS
    return _only_get(request) or Response(200, _static(name), [("Content-Type", content_type)])


def _metrics(state: ServerState) -> Response:
    from .exposition import CONTENT_TYPE, render  # prometheus-client: ~300 ms of import, at first scrape

    return Response(200, render(state), [("Content-Type", CONTENT_TYPE)])


def _only_get(request: Request) -> Response | None:
    if request.method in ("GET", "HEAD"):
        return None
    body = orjson.dumps({"message": f"{request.method} {request.path}: only GET is served here"})
    return Response(405, body, [rendering.JSON, ("Allow", "GET, HEAD")])


def _since(request: Request) -> int | None:
    """`?since=N`: the last invoke the caller has (0: all); None when N is not a whole number >= 0."""
    values = parse_qs(request.query, keep_blank_values=True).get("since")
    if not values:
        return 0
    return int(values[-1]) if values[-1].isascii() and values[-1].isdigit() else None


def _bad_since(request: Request) -> Response:
    given = request.query.partition("since=")[2].partition("&")[0]
    body = orjson.dumps({"message": f"since={given!r}: must be a whole number (an invoke's sequence)"})
    return Response(400, body, [rendering.JSON])


_cache: dict[str, bytes] = {}


def _static(name: str) -> bytes:
    """A file of static/, read once: package data in the wheel, the folder itself in a checkout."""
    data = _cache.get(name)
    if data is None:
        from importlib.resources import files  # only once the console is opened

        data = _cache[name] = files(__package__).joinpath("static", name).read_bytes()
    return data
