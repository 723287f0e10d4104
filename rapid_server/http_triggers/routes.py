"""The route table: every HTTP trigger of a template, and which one a request goes to.

Built once from a `TemplateDefinition` (`build_routes`) and never changed after: a reload builds a new table
and the listener takes it for the next request, so a request is routed by one whole table, never half of one.

Selection follows API Gateway's route selection: an exact path first, then paths with `{param}` segments (more
literal segments first), then greedy `{proxy+}` paths (longer prefix first); on one path, an explicit method
before `ANY`; and last an HTTP API's `$default` route. Nothing matching is answered as each API type answers
it: a REST API with 403 `{"message":"Missing Authentication Token"}` (for an unknown path as for a method
the path does not have), an HTTP API with 404 `{"message":"Not Found"}`. API Gateway never answers 405 for
a route.

Function URLs are served on the same listener under `/lambda-url/<function name>/`: every method and every
path below it reaches the function, with the path below the prefix as its `rawPath`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..config import ConfigError

if TYPE_CHECKING:
    from ..definitions.template import TemplateDefinition

URL_PREFIX = "/lambda-url/"
DEFAULT_INTEGRATION_TIMEOUT_MS = 29_000  # API Gateway's default (and a REST API's maximum)
MIN_INTEGRATION_TIMEOUT_MS = 50
MAX_INTEGRATION_TIMEOUT_MS = 30_000  # an HTTP API's maximum
DEFAULT_ROUTE = "$default"
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "ANY")
_PAYLOAD_VERSIONS = ("1.0", "2.0")

ApiKind = Literal["rest", "http", "url"]

NOT_FOUND = (404, b'{"message":"Not Found"}')
MISSING_TOKEN = (403, b'{"message":"Missing Authentication Token"}')


@dataclass(frozen=True, slots=True)
class Api:
    """One API (or one function URL), as its events see it."""

    kind: ApiKind
    logical_id: str
    api_id: str  # a stable stand-in for API Gateway's 10-character id
    stage: str
    stage_variables: Mapping[str, str] | None
    binary_media_types: tuple[str, ...]  # REST APIs: which bodies are binary (base64 in the event)


@dataclass(frozen=True, slots=True)
class Route:
    api: Api
    method: str  # upper case, or ANY
    path: str  # as the template writes it: `/users/{id}`, `$default`, or the function URL's prefix
    function: str  # the function's name
    payload_version: str  # "1.0" | "2.0"
    timeout_ms: int | None  # the integration timeout; None for a function URL (the function's own)
    streaming: bool = False  # a function URL with `InvokeMode: RESPONSE_STREAM`

    @property
    def route_key(self) -> str:
        """The HTTP API's `routeKey`: `GET /users/{id}`, or `$default`."""
        return (
            self.path
            if self.path == DEFAULT_ROUTE or self.api.kind == "url"
            else f"{self.method} {self.path}"
        )

    def describe(self) -> str:
        kind = {"rest": "REST API", "http": "HTTP API", "url": "function URL"}[self.api.kind]
        mode = ", streaming" if self.streaming else ""
        stage = f"stage {self.api.stage}"
        return f"{self.route_key} -> {self.function} ({kind}, {stage}, payload {self.payload_version}{mode})"


@dataclass(frozen=True, slots=True)
class Match:
    route: Route
    path_parameters: dict[str, str] | None
    raw_path: str  # the path the function sees (below the prefix, for a function URL)


@dataclass(frozen=True, slots=True)
class _Pattern:
    route: Route
    regex: re.Pattern[str]
    names: tuple[str, ...]


class RouteTable:
    """Immutable once built: see the module's docstring."""

    __slots__ = ("_defaults", "_exact", "_missing", "_patterns", "routes", "urls")

    def __init__(self, routes: list[Route]) -> None:
        self.routes = tuple(routes)
        ordered = sorted((r for r in routes if r.api.kind != "url"), key=_specificity)
        self._exact: dict[str, tuple[Route, ...]] = {}
        patterns: list[_Pattern] = []
        for route in ordered:
            if route.path == DEFAULT_ROUTE:
                continue
            if "{" not in route.path:
                self._exact[route.path] = (*self._exact.get(route.path, ()), route)
            else:
                regex, names = _compile(route.path)
                patterns.append(_Pattern(route, regex, names))
        self._patterns = tuple(patterns)
        self._defaults = tuple(r for r in ordered if r.path == DEFAULT_ROUTE)
        self.urls = {r.function: r for r in routes if r.api.kind == "url"}
        # With only REST APIs, an unmatched request gets a REST API's answer.
        only_rest = bool(routes) and all(r.api.kind == "rest" for r in routes if r.api.kind != "url")
        self._missing = MISSING_TOKEN if only_rest else NOT_FOUND

    def __bool__(self) -> bool:
        return bool(self.routes)

    def match(self, method: str, path: str) -> Match | tuple[int, bytes]:
        """The route for this request, or the status and body API Gateway answers when there is none."""
        if path.startswith(URL_PREFIX):
            name, slash, rest = path[len(URL_PREFIX) :].partition("/")
            url = self.urls.get(name)
            if url is None:
                return NOT_FOUND
            return Match(url, None, slash + rest if slash else "/")
        key = path.rstrip("/") or "/"  # API Gateway ignores a trailing slash
        nearest: Route | None = None  # the first route whose path matched, for the answer when none fits
        for route in self._exact.get(key, ()):
            if route.method == method or route.method == "ANY":
                return Match(route, None, path)
            nearest = nearest or route
        for pattern in self._patterns:
            found = pattern.regex.fullmatch(key)
            if found is None:
                continue
            if pattern.route.method == method or pattern.route.method == "ANY":
                return Match(pattern.route, dict(zip(pattern.names, found.groups(), strict=True)), path)
            nearest = nearest or pattern.route
        if self._defaults:
            return Match(self._defaults[0], None, path)
        if nearest is not None:
            return MISSING_TOKEN if nearest.api.kind == "rest" else NOT_FOUND
        return self._missing


def _specificity(route: Route) -> tuple[int, int, int, int]:
    """Sort key, most specific first: no greedy segment, more literal segments, more segments, then an
    explicit method before ANY."""
    segments = [s for s in route.path.split("/") if s]
    greedy = int(any(s.endswith("+}") for s in segments))
    literal = sum(1 for s in segments if not s.startswith("{"))
    return (greedy, -literal, -len(segments), int(route.method == "ANY"))


def _compile(path: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
    parts: list[str] = []
    names: list[str] = []
    for segment in path.strip("/").split("/"):
        if segment.startswith("{") and segment.endswith("+}"):
            names.append(segment[1:-2])
            parts.append("(.+)")
        elif segment.startswith("{") and segment.endswith("}"):
            names.append(segment[1:-1])
            parts.append("([^/]+)")
        else:
            parts.append(re.escape(segment))
    return re.compile("/" + "/".join(parts)), tuple(names)


# -- from a template


def build_routes(definition: TemplateDefinition, integration_timeout_ms: int | None = None) -> RouteTable:
    """Every `Api` and `HttpApi` event and function URL of the template; `integration_timeout_ms` (the
    `--api-timeout` flag) overrides each event's `TimeoutInMillis`. A malformed event is a ConfigError."""
    routes: list[Route] = []
    for function, triggers in definition.triggers.items():
        where = f"{definition.path}: resource {triggers.logical_id}"
        for event_name, event in triggers.events.items():
            if not isinstance(event, dict):
                continue
            kind = event.get("Type")
            if kind not in ("Api", "HttpApi"):
                continue  # not an HTTP trigger (SQS, Schedule...)
            properties = event.get("Properties") or {}
            prefix = f"{where}, property Events.{event_name}.Properties"
            if not isinstance(properties, dict):
                raise ConfigError(f"{prefix}: must be a mapping")
            route = _event_route(definition, function, kind, properties, prefix, integration_timeout_ms)
            routes.append(route)
        if triggers.url_config is not None:
            mode = triggers.url_config.get("InvokeMode", "BUFFERED")
            if mode not in ("BUFFERED", "RESPONSE_STREAM"):
                raise ConfigError(
                    f"{where}, property FunctionUrlConfig.InvokeMode: {mode!r} is not BUFFERED or "
                    "RESPONSE_STREAM"
                )
            api = Api("url", triggers.logical_id, _url_id(function), DEFAULT_ROUTE, None, ())
            routes.append(
                Route(api, "ANY", DEFAULT_ROUTE, function, "2.0", None, streaming=mode == "RESPONSE_STREAM")
            )
    _refuse_duplicates(routes, definition)
    return RouteTable(routes)


def _event_route(
    definition: TemplateDefinition,
    function: str,
    kind: str,
    properties: Mapping[str, Any],
    where: str,
    integration_timeout_ms: int | None,
) -> Route:
    rest = kind == "Api"
    api_logical_id = properties.get("RestApiId" if rest else "ApiId") or (
        "ServerlessRestApi" if rest else "ServerlessHttpApi"
    )
    if not isinstance(api_logical_id, str):
        api_logical_id = str(api_logical_id)
    api_properties = definition.apis.get(api_logical_id, {})
    path = properties.get("Path")
    method = properties.get("Method")
    if rest and (path is None or method is None):
        raise ConfigError(f"{where}: an Api event needs Path and Method")
    if path is None and method is None:
        path, method = DEFAULT_ROUTE, "ANY"  # an HttpApi event without them is the $default route
    if not isinstance(path, str) or not (path == DEFAULT_ROUTE or path.startswith("/")):
        raise ConfigError(f"{where}.Path: {path!r} must start with / (or be $default)")
    _check_path(path, f"{where}.Path")
    method = str(method).upper()
    if method not in _METHODS:
        raise ConfigError(f"{where}.Method: {method!r} is not one of {', '.join(_METHODS)}")
    version = "1.0" if rest else str(properties.get("PayloadFormatVersion", "2.0"))
    if version not in _PAYLOAD_VERSIONS:
        raise ConfigError(f"{where}.PayloadFormatVersion: {version!r} is not 1.0 or 2.0")
    timeout = properties.get("TimeoutInMillis", DEFAULT_INTEGRATION_TIMEOUT_MS)
    if integration_timeout_ms is not None:
        timeout = integration_timeout_ms
    elif (
        not isinstance(timeout, int)
        or not MIN_INTEGRATION_TIMEOUT_MS <= timeout <= MAX_INTEGRATION_TIMEOUT_MS
    ):
        raise ConfigError(
            f"{where}.TimeoutInMillis: {timeout!r} must be "
            f"{MIN_INTEGRATION_TIMEOUT_MS}-{MAX_INTEGRATION_TIMEOUT_MS}"
        )
    default_stage = "Prod" if rest else DEFAULT_ROUTE  # SAM's implicit REST API stage; an HTTP API's
    stage = str(api_properties.get("StageName", default_stage))
    variables = api_properties.get("Variables")
    stage_variables = {str(k): str(v) for k, v in variables.items()} if isinstance(variables, dict) else None
    binary = api_properties.get("BinaryMediaTypes") if rest else None
    # SAM writes a media type's "/" as "~1" (a JSON pointer escape): `image~1png`.
    media_types = tuple(str(t).replace("~1", "/") for t in binary) if isinstance(binary, list) else ()
    api = Api(
        "rest" if rest else "http",
        api_logical_id,
        _api_id(api_logical_id),
        stage,
        stage_variables,
        media_types,
    )
    return Route(
        api, method, path.rstrip("/") or "/" if path != DEFAULT_ROUTE else path, function, version, timeout
    )


def _check_path(path: str, where: str) -> None:
    segments = path.strip("/").split("/")
    for i, segment in enumerate(segments):
        if "{" not in segment and "}" not in segment:
            continue
        if not re.fullmatch(r"\{[A-Za-z0-9._-]+\+?\}", segment):
            raise ConfigError(
                f"{where}: {path!r}: a path parameter is a whole segment, {{name}} or {{name+}}"
            )
        if segment.endswith("+}") and i != len(segments) - 1:
            raise ConfigError(f"{where}: {path!r}: a greedy {segment} must be the last segment")


def _refuse_duplicates(routes: list[Route], definition: TemplateDefinition) -> None:
    seen: dict[tuple[str, str, str], str] = {}
    for route in routes:
        if route.api.kind == "url":
            continue
        key = (route.api.kind, route.method, route.path)
        if key in seen and seen[key] != route.function:
            raise ConfigError(
                f"{definition.path}: {route.method} {route.path} is both {seen[key]}'s and "
                f"{route.function}'s route"
            )
        seen[key] = route.function


def _api_id(logical_id: str) -> str:
    """A stable 10-character id per API, shaped as API Gateway's."""
    return hashlib.sha256(logical_id.encode()).hexdigest()[:10]


def _url_id(function: str) -> str:
    """A function URL's 32-character id (its host's first label on AWS)."""
    return hashlib.sha256(b"url:" + function.encode()).hexdigest()[:32]
