"""The API's event source mapping operations, as botocore's `lambda` model routes them:

    POST   /2015-03-31/event-source-mappings          CreateEventSourceMapping   202  (State: Creating)
    GET    /2015-03-31/event-source-mappings          ListEventSourceMappings    200  (FunctionName,
                                                                                 EventSourceArn, Marker,
                                                                                 MaxItems)
    GET    /2015-03-31/event-source-mappings/{UUID}   GetEventSourceMapping      200
    PUT    /2015-03-31/event-source-mappings/{UUID}   UpdateEventSourceMapping   202  (Updating, Enabling,
                                                                                 Disabling)
    DELETE /2015-03-31/event-source-mappings/{UUID}   DeleteEventSourceMapping   202  (Deleting)

Reached through the control plane's router (control_plane/routes.py). Each handler validates, asks
`EventSources` (manager.py), and renders. A refused call changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs

from .. import errors, rendering
from ..errors import ServiceError
from ..http import Request, Response
from .manager import CREATING, DELETING, EventSources

_MAPPINGS = re.compile(r"^/2015-03-31/event-source-mappings/?$")
_MAPPING = re.compile(r"^/2015-03-31/event-source-mappings/(?P<uuid>[^/]+)/?$")

Route = Callable[[EventSources, Request, str], Response]


def handle(sources: EventSources | None, request: Request) -> Response | None:
    if sources is None:
        raise ServiceError(500, errors.SERVICE_EXCEPTION, "Event source mappings are not available")
    if _MAPPINGS.match(request.path):
        key = ""
    else:
        match = _MAPPING.match(request.path)
        if match is None:
            return None
        key = match["uuid"]
    route = _ROUTES.get((request.method, bool(key)))
    return None if route is None else route(sources, request, key)


_json = rendering.json_response


def _body(request: Request) -> dict[str, object]:
    return rendering.request_object(request.body)  # one copy of the API's JSON-object check


def _create(sources: EventSources, request: Request, _: str) -> Response:
    return _json(202, sources.render(sources.create(_body(request)), CREATING))


def _list(sources: EventSources, request: Request, _: str) -> Response:
    query = parse_qs(request.query, keep_blank_values=True)

    def last(name: str) -> str | None:
        return query.get(name, [None])[-1]

    return _json(
        200, sources.list(last("FunctionName"), last("EventSourceArn"), last("Marker"), last("MaxItems"))
    )


def _get(sources: EventSources, request: Request, key: str) -> Response:
    return _json(200, sources.render(sources.get(key)))


def _update(sources: EventSources, request: Request, key: str) -> Response:
    mapping, transition = sources.update(key, _body(request))
    return _json(202, sources.render(mapping, transition))


def _delete(sources: EventSources, request: Request, key: str) -> Response:
    return _json(202, sources.render(sources.delete(key), DELETING))


_ROUTES: dict[tuple[str, bool], Route] = {
    ("POST", False): _create,
    ("GET", False): _list,
    ("GET", True): _get,
    ("PUT", True): _update,
    ("DELETE", True): _delete,
}
