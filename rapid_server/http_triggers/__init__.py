"""HTTP triggers: a front door that serves a template's API Gateway routes and function URLs.

`routes.py` builds one immutable route table from a `TemplateDefinition` (SAM `Api` / `HttpApi` events,
function URLs) and matches a request as API Gateway does; `events.py` builds the payload format 1.0 and 2.0
events; `responses.py` maps a function's answer (or failure) to the HTTP response API Gateway would send;
`listener.py` is the HTTP handler, which reads the current table per request, so a reload can replace it
whole (`HttpTriggers.routes = build_routes(definition)`).
"""
