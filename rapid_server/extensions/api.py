"""The Extensions API `2020-01-01`, the Telemetry API `2022-07-01` and the Logs API `2020-08-15` routes,
served on the environment's Runtime API listener (`AWS_LAMBDA_RUNTIME_API`), all on one screen. Each
validates, asks the extensions' state, and renders; a refused request changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from .. import errors, rendering
from ..http import Request, Response
from .agents import Agent
from .telemetry import PORTS, Subscription, SubscriptionError, parse_request

if TYPE_CHECKING:
    from .host import ExtensionsHost

PREFIXES = ("/2020-01-01/extension/", "/2022-07-01/telemetry", "/2020-08-15/logs")
_REGISTER = "/2020-01-01/extension/register"
_NEXT = "/2020-01-01/extension/event/next"
_INIT_ERROR = "/2020-01-01/extension/init/error"
_EXIT_ERROR = "/2020-01-01/extension/exit/error"
_TELEMETRY = ("/2022-07-01/telemetry", "/2022-07-01/telemetry/")
_LOGS = ("/2020-08-15/logs", "/2020-08-15/logs/")
_JSON = ("Content-Type", "application/json")


def handle(request: Request, host: ExtensionsHost, handler: str, function_arn: str) -> Response | None:
    path = request.path
    if path == _NEXT:  # first: every invoke's
        return _method("GET", request) or _next(request, host)
    if path == _REGISTER:
        account_id = function_arn.split(":")[4] if function_arn.count(":") >= 5 else ""
        return _method("POST", request) or _register(request, host, handler, account_id)
    if path in (_INIT_ERROR, _EXIT_ERROR):
        return _method("POST", request) or _error(request, host, path == _INIT_ERROR)
    if path in _TELEMETRY:
        return _method("PUT", request) or _subscribe(request, host, "telemetry")
    if path in _LOGS:
        return _method("PUT", request) or _subscribe(request, host, "logs")
    return rendering.runtime_error(404, errors.NOT_FOUND, f"Unknown path {path}")


def _register(request: Request, host: ExtensionsHost, handler: str, account_id: str) -> Response:
    registered = host.agents.register(request.headers.get("lambda-extension-name"), request.body)
    if isinstance(registered, Response):
        return registered
    host.registered(registered)
    body: dict[str, str] = {
        "functionName": host.function_name,
        "functionVersion": host.version,
        "handler": handler,
    }
    features = request.headers.get("lambda-extension-accept-feature", "")
    if "accountId" in (feature.strip() for feature in features.split(",")):
        body["accountId"] = account_id
    return Response(200, orjson.dumps(body), [_JSON, ("Lambda-Extension-Identifier", registered.identifier)])


def _next(request: Request, host: ExtensionsHost) -> Response | None:
    agent = host.agents.find(request.headers.get("lambda-extension-identifier"))
    if isinstance(agent, Response):
        return agent
    return host.agents.next(agent, request.connection)


def _error(request: Request, host: ExtensionsHost, init: bool) -> Response:
    agent = host.agents.find(request.headers.get("lambda-extension-identifier"))
    if isinstance(agent, Response):
        return agent
    error_type = request.headers.get("lambda-extension-function-error-type")
    if not error_type:
        return rendering.runtime_error(
            400,
            errors.EXTENSION_MISSING_ERROR_TYPE,
            "Lambda-Extension-Function-Error-Type header is required",
        )
    if init and not host.agents.registration_open:
        return rendering.runtime_error(
            403, errors.EXTENSION_INVALID_STATE, "init/error is for Init only; use exit/error"
        )
    host.agent_error(agent, error_type, init)
    return rendering.RUNTIME_ACCEPTED


def _subscribe(request: Request, host: ExtensionsHost, api: str) -> Response:
    logs_api = api == "logs"
    invalid = errors.LOGS_INVALID_REQUEST if logs_api else errors.TELEMETRY_INVALID_REQUEST
    agent = host.agents.find(request.headers.get("lambda-extension-identifier"))
    if isinstance(agent, Response):
        return agent
    try:
        parsed = parse_request(request.body, logs_api=logs_api)
    except SubscriptionError as exc:
        return rendering.runtime_error(400, invalid, str(exc))
    existing = _subscription_of(host, agent)
    if existing is not None and existing.logs_api != logs_api:
        other = "Logs" if existing.logs_api else "Telemetry"
        return rendering.runtime_error(
            400, invalid, f"Extension {agent.name!r} is subscribed through the {other} API already: use one"
        )
    holder = PORTS.claim(parsed.destination.port, host.owner)
    if holder is not None:
        return rendering.runtime_error(
            409,
            errors.TELEMETRY_CONFLICT,
            f"Port {parsed.destination.port} is subscribed by an extension of another environment of this "
            "server: on Lambda each environment has its own network, here they share the host's, so two "
            "environments cannot both listen on one fixed port (run one environment of this function at a "
            "time, e.g. reserved concurrency 1, or let the extension pick a free port)",
        )
    if existing is not None:
        existing.close()
        host.telemetry.subscriptions.remove(existing)
    types = sorted(parsed.types, key=("platform", "function", "extension").index)
    host.telemetry.subscribe(Subscription(agent.name, parsed, host.on_error, logs_api))
    host.subscribed(agent.name, types, api)
    return Response(200, b"OK", [("Content-Type", "text/plain")])


def _subscription_of(host: ExtensionsHost, agent: Agent) -> Subscription | None:
    return next((s for s in host.telemetry.subscriptions if s.name == agent.name), None)


def _method(allowed: str, request: Request) -> Response | None:
    if request.method == allowed:
        return None
    response = rendering.runtime_error(405, errors.METHOD_NOT_ALLOWED, f"Method not allowed; use {allowed}")
    response.headers.append(("Allow", allowed))
    return response
