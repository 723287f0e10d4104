"""The control plane's layer, concurrency, account, tag and event-invoke-config operations, as botocore's
`lambda` model routes them (the function operations are in routes.py).

    POST   /2018-10-31/layers/{layer}/versions              PublishLayerVersion              201
    GET    /2018-10-31/layers/{layer}/versions              ListLayerVersions                200
    GET    /2018-10-31/layers/{layer}/versions/{n}          GetLayerVersion                  200
    DELETE /2018-10-31/layers/{layer}/versions/{n}          DeleteLayerVersion               204
    GET    /2018-10-31/layers                               ListLayers                       200
    GET    /2018-10-31/layers?find=LayerVersion&Arn=        GetLayerVersionByArn             200
    PUT    /2017-10-31/functions/{name}/concurrency         PutFunctionConcurrency           200
    DELETE /2017-10-31/functions/{name}/concurrency         DeleteFunctionConcurrency        204
    GET    /2019-09-30/functions/{name}/concurrency         GetFunctionConcurrency           200
    GET    /2016-08-19/account-settings                     GetAccountSettings               200
    POST   /2017-03-31/tags/{arn}                           TagResource                      204
    DELETE /2017-03-31/tags/{arn}?tagKeys=                  UntagResource                    204
    GET    /2017-03-31/tags/{arn}                           ListTags                         200
    PUT    /2019-09-25/functions/{name}/event-invoke-config PutFunctionEventInvokeConfig     200
    POST   /2019-09-25/functions/{name}/event-invoke-config UpdateFunctionEventInvokeConfig  200
    GET    /2019-09-25/functions/{name}/event-invoke-config GetFunctionEventInvokeConfig     200
    DELETE /2019-09-25/functions/{name}/event-invoke-config DeleteFunctionEventInvokeConfig  204
    GET    /2019-09-25/functions/{name}/event-invoke-config/list  ListFunctionEventInvokeConfigs

Each handler validates, asks layers.py or settings.py, and renders.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from urllib.parse import parse_qs

from .. import rendering
from ..http import Request, Response
from . import code_limits, settings
from .functions import ControlPlane

Route = Callable[[ControlPlane, Request, "re.Match[str]"], Awaitable[Response]]
_LAYERS = re.compile(r"^/2018-10-31/layers/?$")
_LAYER_VERSIONS = re.compile(r"^/2018-10-31/layers/(?P<layer>[^/]+)/versions/?$")
_LAYER_VERSION = re.compile(r"^/2018-10-31/layers/(?P<layer>[^/]+)/versions/(?P<version>[^/]+)/?$")
_CONCURRENCY = re.compile(r"^/(?:2017-10-31|2019-09-30)/functions/(?P<name>[^/]+)/concurrency/?$")
_ACCOUNT = re.compile(r"^/2016-08-19/account-settings/?$")
_TAGS = re.compile(r"^/2017-03-31/tags/(?P<arn>[^/]+)/?$")
_EVENT_INVOKE = re.compile(r"^/2019-09-25/functions/(?P<name>[^/]+)/event-invoke-config/?$")
_EVENT_INVOKE_LIST = re.compile(r"^/2019-09-25/functions/(?P<name>[^/]+)/event-invoke-config/list/?$")


_json = rendering.json_response


def _empty() -> Response:
    return Response(204, b"", [])


def _body(request: Request) -> dict[str, object]:
    return rendering.request_object(request.body)  # one copy of the API's JSON-object check


def _query(request: Request) -> dict[str, list[str]]:
    return parse_qs(request.query, keep_blank_values=True)


def _qualifier(request: Request) -> str | None:
    values = _query(request).get("Qualifier")
    return values[-1] if values else None


# -- layers


async def _publish_layer(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    if request.too_large:
        raise code_limits.too_large("PublishLayerVersion")
    return _json(201, await control.layers.publish(match["layer"], _body(request)))


async def _list_layer_versions(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    return _json(200, control.layers.list_versions(match["layer"], _query(request)))


async def _get_layer_version(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    return _json(200, control.layers.get(match["layer"], match["version"]))


async def _delete_layer_version(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    await control.layers.delete(match["layer"], match["version"])
    return _empty()


async def _list_layers(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    query = _query(request)
    if query.get("find") == ["LayerVersion"]:  # GetLayerVersionByArn shares the path
        arns = query.get("Arn")
        return _json(200, control.layers.get_by_arn(arns[-1] if arns else None))
    return _json(200, control.layers.list_layers(query))


# -- concurrency and the account


async def _put_concurrency(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    return _json(200, await settings.put_concurrency(control, match["name"], _body(request)))


async def _get_concurrency(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    return _json(200, settings.get_concurrency(control, match["name"]))


async def _delete_concurrency(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    await settings.delete_concurrency(control, match["name"])
    return _empty()


async def _account_settings(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    return _json(200, settings.account_settings(control))


# -- tags


async def _tag(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    await settings.tag(control, match["arn"], _body(request))
    return _empty()


async def _untag(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    await settings.untag(control, match["arn"], _query(request).get("tagKeys", []))
    return _empty()


async def _list_tags(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    return _json(200, settings.list_tags(control, match["arn"]))


# -- event invoke config


async def _put_event_invoke(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    body = await settings.put_event_invoke_config(
        control, match["name"], _qualifier(request), _body(request), replace=True
    )
    return _json(200, body)


async def _update_event_invoke(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    body = await settings.put_event_invoke_config(
        control, match["name"], _qualifier(request), _body(request), replace=False
    )
    return _json(200, body)


async def _get_event_invoke(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    return _json(200, settings.get_event_invoke_config(control, match["name"], _qualifier(request)))


async def _delete_event_invoke(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    await settings.delete_event_invoke_config(control, match["name"], _qualifier(request))
    return _empty()


async def _list_event_invoke(control: ControlPlane, request: Request, match: re.Match[str]) -> Response:
    return _json(200, settings.list_event_invoke_configs(control, match["name"], _query(request)))


_ROUTES: tuple[tuple[re.Pattern[str], dict[str, Route]], ...] = (
    (_LAYERS, {"GET": _list_layers}),
    (_LAYER_VERSIONS, {"POST": _publish_layer, "GET": _list_layer_versions}),
    (_LAYER_VERSION, {"GET": _get_layer_version, "DELETE": _delete_layer_version}),
    (_CONCURRENCY, {"PUT": _put_concurrency, "GET": _get_concurrency, "DELETE": _delete_concurrency}),
    (_ACCOUNT, {"GET": _account_settings}),
    (_TAGS, {"POST": _tag, "DELETE": _untag, "GET": _list_tags}),
    (
        _EVENT_INVOKE,
        {
            "PUT": _put_event_invoke,
            "POST": _update_event_invoke,
            "GET": _get_event_invoke,
            "DELETE": _delete_event_invoke,
        },
    ),
    (_EVENT_INVOKE_LIST, {"GET": _list_event_invoke}),
)


def is_settings_path(path: str) -> bool:
    return any(pattern.match(path) is not None for pattern, _ in _ROUTES)


async def handle(control: ControlPlane, request: Request) -> Response | None:
    for pattern, methods in _ROUTES:
        match = pattern.match(request.path)
        if match is not None:
            route = methods.get(request.method)
            return None if route is None else await route(control, request, match)
    return None
