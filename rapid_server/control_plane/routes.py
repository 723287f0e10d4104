"""The control plane's function operations, as botocore's `lambda` model routes them.

    POST   /2015-03-31/functions                         CreateFunction          201
    GET    /2015-03-31/functions                         ListFunctions           200 (Marker, MaxItems)
    GET    /2015-03-31/functions/{name}                  GetFunction             200
    DELETE /2015-03-31/functions/{name}                  DeleteFunction          204
    GET    /2015-03-31/functions/{name}/configuration    GetFunctionConfiguration
    PUT    /2015-03-31/functions/{name}/configuration    UpdateFunctionConfiguration
    PUT    /2015-03-31/functions/{name}/code             UpdateFunctionCode
    GET    /2024-08-31/functions/{name}/recursion-config GetFunctionRecursionConfig
    PUT    /2024-08-31/functions/{name}/recursion-config PutFunctionRecursionConfig
    POST   /2015-03-31/functions/{name}/versions         PublishVersion          201
    GET    /2015-03-31/functions/{name}/versions         ListVersionsByFunction  (Marker, MaxItems)
    POST   /2015-03-31/functions/{name}/aliases          CreateAlias             201
    GET    /2015-03-31/functions/{name}/aliases          ListAliases    (FunctionVersion, Marker, ...)
    GET    /2015-03-31/functions/{name}/aliases/{alias}  GetAlias
    PUT    /2015-03-31/functions/{name}/aliases/{alias}  UpdateAlias
    DELETE /2015-03-31/functions/{name}/aliases/{alias}  DeleteAlias             204
    PUT    /2019-09-30/functions/{name}/provisioned-concurrency  PutProvisionedConcurrencyConfig  202
    GET    /2019-09-30/functions/{name}/provisioned-concurrency  Get... (List... with ?List=ALL)
    DELETE /2019-09-30/functions/{name}/provisioned-concurrency  DeleteProvisionedConcurrencyConfig 204
GetFunction, GetFunctionConfiguration and DeleteFunction take a Qualifier (or `name:qualifier`): a
version or an alias (versions.py, aliases.py, provisioned.py).

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

from .. import rendering
from ..http import Request, Response
from . import code_limits, recursion_config, settings_routes, shapes
from .functions import ControlPlane
from .versions import split_qualifier

Route = Callable[[ControlPlane, Request, str], Awaitable[Response]]
_FUNCTIONS = re.compile(r"^/2015-03-31/functions/?$")
_MAPPINGS = "/2015-03-31/event-source-mappings"
_FUNCTION = re.compile(r"^/2015-03-31/functions/(?P<name>[^/]+)(?P<tail>/configuration|/code)?/?$")
_VERSIONED = re.compile(
    r"^/2015-03-31/functions/(?P<name>[^/]+)(?P<tail>/versions|/aliases)(?:/(?P<alias>[^/]+))?/?$"
)
_PROVISIONED = re.compile(r"^/2019-09-30/functions/(?P<name>[^/]+)(?P<tail>/provisioned-concurrency)/?$")


_RECURSION = re.compile(r"^/2024-08-31/functions/(?P<name>[^/]+)/recursion-config/?$")


def is_control_path(path: str) -> bool:
    return (
        _FUNCTIONS.match(path) is not None
        or _FUNCTION.match(path) is not None
        or _RECURSION.match(path) is not None
        or _VERSIONED.match(path) is not None
        or _PROVISIONED.match(path) is not None
        or settings_routes.is_settings_path(path)  # layers, concurrency, account, tags, event invoke config
        or path.startswith(_MAPPINGS)  # event source mappings (event_sources/routes.py)
    )


async def handle(control: ControlPlane, request: Request, request_id: str) -> Response | None:
    if request.path.startswith(_MAPPINGS):
        # Event source mappings (event_sources/routes.py), imported at the first call: ~10 ms of import.
        from ..event_sources import routes as mapping_routes

        opener = control.state.open_event_sources
        return mapping_routes.handle(opener() if opener is not None else None, request)
    if settings_routes.is_settings_path(request.path):
        return await settings_routes.handle(control, request)
    recursion = _RECURSION.match(request.path)
    if recursion is not None:
        route = _RECURSION_ROUTES.get(request.method)
        return None if route is None else await route(control, request, recursion["name"])
    versioned = _VERSIONED.match(request.path) or _PROVISIONED.match(request.path)
    if versioned is not None:
        alias = versioned["alias"] if "alias" in versioned.re.groupindex else None
        key = (request.method, versioned["tail"], alias is not None)
        if key == ("GET", "/provisioned-concurrency", False) and _query(request, "List") == "ALL":
            key = ("GET", "/provisioned-concurrency?List=ALL", False)
        version_route = _VERSION_ROUTES.get(key)
        if version_route is None:
            return None
        return await version_route(control, request, versioned["name"], alias or "")
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


_json = rendering.json_response


def _body(request: Request) -> dict[str, object]:
    return rendering.request_object(request.body)  # one copy of the API's JSON-object check


async def _create(control: ControlPlane, request: Request, _: str) -> Response:
    if request.too_large:  # over the listener's limit: its body was not kept
        raise code_limits.too_large("CreateFunction")
    body = _body(request)
    _, function, stored = await control.create(body)
    if body.get("Publish") is True:
        return _json(201, {**await _publish_latest(control, function.config.name), **shapes.CREATING})
    return _json(201, shapes.configuration(control.state, function, stored, shapes.CREATING))


async def _list(control: ControlPlane, request: Request, _: str) -> Response:
    query = parse_qs(request.query, keep_blank_values=True)
    if _query(request, "FunctionVersion") == "ALL":  # every published version too (versions.py)
        return _json(200, control.versions.list_all(_query(request, "Marker"), _query(request, "MaxItems")))
    return _json(200, control.list(query.get("Marker", [None])[-1], query.get("MaxItems", [None])[-1]))


async def _get(control: ControlPlane, request: Request, name: str) -> Response:
    if _qualified(request, name):
        return _json(200, control.versions.get_function(name, _query(request, "Qualifier")))
    function, stored = control.find(name)
    return _json(200, shapes.get_function(control.state, function, stored))


async def _get_configuration(control: ControlPlane, request: Request, name: str) -> Response:
    if _qualified(request, name):
        return _json(200, control.versions.configuration(name, _query(request, "Qualifier")))
    function, stored = control.find(name)
    return _json(200, shapes.configuration(control.state, function, stored))


async def _update_configuration(control: ControlPlane, request: Request, name: str) -> Response:
    function, stored = await control.update(name, _body(request), code=False)
    return _json(200, shapes.configuration(control.state, function, stored, shapes.UPDATING))


async def _update_code(control: ControlPlane, request: Request, name: str) -> Response:
    if request.too_large:
        raise code_limits.too_large("UpdateFunctionCode")
    body = _body(request)
    function, stored = await control.update(name, body, code=True)
    if body.get("Publish") is True:
        return _json(200, {**await _publish_latest(control, function.config.name), **shapes.UPDATING})
    return _json(200, shapes.configuration(control.state, function, stored, shapes.UPDATING))


async def _delete(control: ControlPlane, request: Request, name: str) -> Response:
    if _qualified(request, name):
        await control.versions.delete(name, _query(request, "Qualifier"))
        return Response(204, b"", [])
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


async def _get_recursion(control: ControlPlane, request: Request, name: str) -> Response:
    return _json(200, recursion_config.get(control, name))


async def _put_recursion(control: ControlPlane, request: Request, name: str) -> Response:
    return _json(200, await recursion_config.put(control, name, _body(request)))


# GET / PUT /2024-08-31/functions/{name}/recursion-config: Get/PutFunctionRecursionConfig
_RECURSION_ROUTES: dict[str, Route] = {"GET": _get_recursion, "PUT": _put_recursion}
# -- versions, aliases, provisioned concurrency (versions.py, aliases.py, provisioned.py)

VersionRoute = Callable[[ControlPlane, Request, str, str], Awaitable[Response]]


def _query(request: Request, key: str) -> str | None:
    values = parse_qs(request.query, keep_blank_values=True).get(key) if request.query else None
    return values[-1] if values else None


def _qualified(request: Request, name: str) -> bool:
    """A Qualifier in the query or the name (`name:3`, an ARN with a qualifier), other than none at all."""
    return _query(request, "Qualifier") is not None or bool(split_qualifier(name)[1])


async def _publish_latest(control: ControlPlane, name: str) -> dict[str, object]:
    """`Publish: true` in CreateFunction / UpdateFunctionCode: the call answers with the new version."""
    return control.versions.render(await control.versions.publish(name, {}))


async def _publish(control: ControlPlane, request: Request, name: str, _: str) -> Response:
    version = await control.versions.publish(name, _body(request))
    return _json(201, control.versions.render(version))


async def _list_versions(control: ControlPlane, request: Request, name: str, _: str) -> Response:
    return _json(200, control.versions.list(name, _query(request, "Marker"), _query(request, "MaxItems")))


async def _create_alias(control: ControlPlane, request: Request, name: str, _: str) -> Response:
    aliases = control.versions.aliases
    return _json(201, aliases.render(await aliases.create(name, _body(request))))


async def _list_aliases(control: ControlPlane, request: Request, name: str, _: str) -> Response:
    query = (_query(request, key) for key in ("FunctionVersion", "Marker", "MaxItems"))
    return _json(200, control.versions.aliases.list(name, *query))


async def _get_alias(control: ControlPlane, request: Request, name: str, alias: str) -> Response:
    aliases = control.versions.aliases
    control.find(split_qualifier(name)[0])
    return _json(200, aliases.render(aliases.get(split_qualifier(name)[0], alias)))


async def _update_alias(control: ControlPlane, request: Request, name: str, alias: str) -> Response:
    aliases = control.versions.aliases
    return _json(200, aliases.render(await aliases.update(name, alias, _body(request))))


async def _delete_alias(control: ControlPlane, request: Request, name: str, alias: str) -> Response:
    await control.versions.aliases.delete(name, alias)
    return Response(204, b"", [])


async def _put_provisioned(control: ControlPlane, request: Request, name: str, _: str) -> Response:
    provisioned = control.versions.provisioned
    setting = await provisioned.put(name, _query(request, "Qualifier"), _body(request))
    return _json(202, provisioned.render(setting))


async def _get_provisioned(control: ControlPlane, request: Request, name: str, _: str) -> Response:
    provisioned = control.versions.provisioned
    return _json(200, provisioned.render(provisioned.get(name, _query(request, "Qualifier"))))


async def _list_provisioned(control: ControlPlane, request: Request, name: str, _: str) -> Response:
    query = (_query(request, key) for key in ("Marker", "MaxItems"))
    return _json(200, control.versions.provisioned.list(name, *query))


async def _delete_provisioned(control: ControlPlane, request: Request, name: str, _: str) -> Response:
    await control.versions.provisioned.delete(name, _query(request, "Qualifier"))
    return Response(204, b"", [])


_VERSION_ROUTES: dict[tuple[str, str, bool], VersionRoute] = {
    ("POST", "/versions", False): _publish,
    ("GET", "/versions", False): _list_versions,
    ("POST", "/aliases", False): _create_alias,
    ("GET", "/aliases", False): _list_aliases,
    ("GET", "/aliases", True): _get_alias,
    ("PUT", "/aliases", True): _update_alias,
    ("DELETE", "/aliases", True): _delete_alias,
    ("PUT", "/provisioned-concurrency", False): _put_provisioned,
    ("GET", "/provisioned-concurrency", False): _get_provisioned,
    ("GET", "/provisioned-concurrency?List=ALL", False): _list_provisioned,
    ("DELETE", "/provisioned-concurrency", False): _delete_provisioned,
}
