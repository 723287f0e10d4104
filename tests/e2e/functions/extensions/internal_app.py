"""A function whose runtime process registers an internal extension (a thread), as language agents do."""

import json
import os
import threading
import urllib.error
import urllib.request

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
OUT = os.environ["PROBE_OUT"]


def record(kind, **fields):
    with open(OUT, "a") as out:
        out.write(json.dumps({"probe": kind, "name": "internal-probe", **fields}) + "\n")


def call(method, path, body=None, headers=None):
    request = urllib.request.Request(
        f"http://{API}{path}",
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers=headers or {},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


status, _, body = call(
    "POST",
    "/2020-01-01/extension/register",
    {"events": ["INVOKE", "SHUTDOWN"]},
    {"Lambda-Extension-Name": "internal-shutdown"},
)
record("refused", status=status, body=json.loads(body))
status, headers, body = call(
    "POST",
    "/2020-01-01/extension/register",
    {"events": ["INVOKE"]},
    {"Lambda-Extension-Name": "internal-probe"},
)
IDENT = {"Lambda-Extension-Identifier": headers["Lambda-Extension-Identifier"]}
record("registered", status=status)
subscription = {
    "schemaVersion": "2021-03-18",
    "types": ["platform", "function"],
    "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:1/logs"},
}
status, _, _ = call("PUT", "/2020-08-15/logs", subscription, IDENT)
record("logs_api", status=status)
subscription["schemaVersion"] = "2022-07-01"
status, _, body = call("PUT", "/2022-07-01/telemetry", subscription, IDENT)
record("telemetry_after_logs", status=status, body=json.loads(body))


def loop():
    while True:
        _, _, event = call("GET", "/2020-01-01/extension/event/next", headers=IDENT)
        record("event", event=json.loads(event))


threading.Thread(target=loop, daemon=True).start()


def handler(event, context):
    return {"ok": True}
