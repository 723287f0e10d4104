"""The control plane's function operations, as botocore's `lambda` model routes them.

    POST   /2015-03-31/functions                         CreateFunction          201
    GET    /2015-03-31/functions                         ListFunctions           200 (Marker, MaxItems)
    GET    /2015-03-31/functions/{name}                  GetFunction             200
    DELETE /2015-03-31/functions/{name}                  DeleteFunction          204
    GET    /2015-03-31/functions/{name}/configuration    GetFunctionConfiguration
    PUT    /2015-03-31/functions/{name}/configuration    UpdateFunctionConfiguration
    PUT    /2015-03-31/functions/{name}/code             UpdateFunctionCode

Each handler validates, asks `ControlPlane` (functions.py: check whole, apply to the running
server, then commit to the store), and renders. A refused call changes nothing.

Our extension: `Code: {"RapidbootDirectory": "/abs/path"}` in CreateFunction / UpdateFunctionCode (a bare
`RapidbootDirectory` in UpdateFunctionCode) serves a local directory in place, as `--code DIR` does. botocore
validates parameters against its model, so only raw HTTP (curl) can send it.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

import orjson

from .. import errors, rendering
from ..errors import ServiceError
from ..http import Request, Response
from . import shapes
from .functions import ControlPlane

Route = Callable[[ControlPlane, Request, str], Awaitable[Response]]
_FUNCTIONS = re.compile(r"^/2015-03-31/functions/?$")
_MAPPINGS = "/2015-03-31/event-source-mappings"
_FUNCTION = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)(?P<tail>/configuration|/code)?/?$")


def is_control_path(path: str) -> bool:
    return (
        _FUNCTIONS.match(path) is not None or _FUNCTION.match(path) is not None or path.startswith(_MAPPINGS)
    )


async def handle(control: ControlPlane, request: Request, request_id: str) -> Response | None:
    if request.path.startswith(_MAPPINGS):
        # Event source mappings (event_sources/routes.py), imported at the first call: ~10 ms of import.
        from ..event_sources import routes as mapping_routes

        opener = control.state.open_event_sources
        return mapping_routes.handle(opener() if opener is not None else None, request)
    if _FUNCTIONS.match(request.path):
        name, tail = "", ""
    else:
        match = _FUNCTION.match(request.path)
        if match is None:
            return None
        name, tail = match["name"], match["tail"] or ""
    route = _ROUTES.get((request.method, bool(name), tail))
    if route is None:
        return None
    return await route(control, request, name)


def _json(status: int, body: object) -> Response:
    return Response(status, orjson.dumps(body), [rendering.JSON])


def _body(request: Request) -> dict[str, object]:
    try:
        body = orjson.loads(request.body or b"{}")
    except orjson.JSONDecodeError as exc:
        raise ServiceError(
            400, errors.INVALID_REQUEST_CONTENT, f"Could not parse request body: {exc}"
        ) from None
    if not isinstance(body, dict):
        raise ServiceError(400, errors.INVALID_REQUEST_CONTENT, "The request body must be a JSON object")
    return body


async def _create(control: ControlPlane, request: Request, _: str) -> Response:
    _, function, stored = await control.create(_body(request))
    return _json(201, shapes.configuration(control.state, function, stored, shapes.CREATING))


async def _list(control: ControlPlane, request: Request, _: str) -> Response:
    query = parse_qs(request.query, keep_blank_values=True)
    return _json(200, control.list(query.get("Marker", [None])[-1], query.get("MaxItems", [None])[-1]))


async def _get(control: ControlPlane, request: Request, name: str) -> Response:
    function, stored = control.find(name)
    return _json(200, shapes.get_function(control.state, function, stored))


async def _get_configuration(control: ControlPlane, request: Request, name: str) -> Response:
    function, stored = control.find(name)
    return _json(200, shapes.configuration(control.state, function, stored))


async def _update_configuration(control: ControlPlane, request: Request, name: str) -> Response:
    function, stored = await control.update(name, _body(request), code=False)
    return _json(200, shapes.configuration(control.state, function, stored, shapes.UPDATING))


async def _update_code(control: ControlPlane, request: Request, name: str) -> Response:
    function, stored = await control.update(name, _body(request), code=True)
    return _json(200, shapes.configuration(control.state, function, stored, shapes.UPDATING))


async def _delete(control: ControlPlane, request: Request, name: str) -> Response:
    await control.delete(name)
    return Response(204, b"", [])  # the service answers 204 (botocore's StatusCode), no body


_ROUTES: dict[tuple[str, bool, str], Route] = {
    ("POST", False, ""): _create,
    ("GET", False, ""): _list,
    ("GET", True, ""): _get,
    ("DELETE", True, ""): _delete,
    ("GET", True, "/configuration"): _get_configuration,
    ("PUT", True, "/configuration"): _update_configuration,
    ("PUT", True, "/code"): _update_code,
}
