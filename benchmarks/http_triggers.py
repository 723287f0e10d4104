"""HTTP triggers: an HTTP request -> function -> HTTP response through the template's API listener, against a
direct Invoke API call of the same function on the same server (issue 14's goal: p50 at most 1.25x).

One realistic full cycle per sample, warm, a 1 KB JSON body: a keep-alive client POSTs it to an HTTP API
route (payload 2.0), to a REST API route (payload 1.0), and to the Invoke API as the event itself; the one
handler answers each with the same JSON (as a proxy response for the routes). Interleaved (A B C A B C ...)
after discarded warm-ups, so the machine's noise hits all alike. The Invoke API call is the row's "peer":
the ratio is the HTTP path's cost over the Invoke API's.

`sam local start-api` is not measured (it needs Docker); its published figure is about 1 s per request
(a container per invoke, aws-sam-cli issues #134 and #239).

    python benchmarks/http_triggers.py [--samples 2000] [--warmups 200]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rapidboot.benchmarks.coldstart import big_event
from rapidboot.benchmarks.invoke_client import InvokeClient
from rapidboot.benchmarks.local_server import READY, invoke_path, stop_server
from rapidboot.benchmarks.results import OURS, PEER, Entry, Row
from rapidboot.benchmarks.stats import summarize
from rapidboot.benchmarks.warm_invoke import Target, warm_samples

if TYPE_CHECKING:
    from rapidboot.benchmarks.peers import Peers
    from rapidboot.benchmarks.suite import Plan, Progress

TRIGGERS = re.compile(r"HTTP triggers on http://([0-9.]+):(\d+)")
HANDLER = """\
def handler(event, context):
    if "requestContext" in event:  # through an HTTP trigger: the body back, as a proxy response
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": event["body"]}
    return event  # through the Invoke API: the event back
"""
TEMPLATE = """\
Transform: AWS::Serverless-2016-10-31
Resources:
  Echo:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: echo
      Runtime: python3.12
      CodeUri: code/
      Handler: app.handler
      Events:
        Http: {Type: HttpApi, Properties: {Path: /echo, Method: POST}}
        Rest: {Type: Api, Properties: {Path: /echo-rest, Method: post}}
"""
HTTP_API = "HTTP API route (payload 2.0)"
REST_API = "REST API route (payload 1.0)"
INVOKE_API = "Invoke API, same function"
Tick = Callable[[str], None]


@contextmanager
def targets(directory: Path) -> Iterator[list[Target]]:
    """The server of the template, and one keep-alive connection per way in."""
    (directory / "code").mkdir(parents=True)
    (directory / "code" / "app.py").write_text(HANDLER)
    (directory / "template.yaml").write_text(TEMPLATE)
    command = [
        sys.executable,
        "-m",
        "rapidboot.rapid_server",
        "serve",
        "--template",
        str(directory / "template.yaml"),
    ]
    command += ["--port", "0", "--api-port", "0", "--state-dir", str(directory / "state")]
    with ExitStack() as stack, (directory / "server.log").open("w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.PIPE, text=True)
        stack.callback(stop_server, server)
        api = invoke = None
        assert server.stderr is not None
        for line in server.stderr:
            if (found := TRIGGERS.search(line)) is not None:
                api = (found[1], int(found[2]))
            if (found := READY.search(line)) is not None:
                invoke = (found[1], int(found[2]))
                break
        if api is None or invoke is None:
            raise SystemExit(f"server did not start; see {directory / 'server.log'}")
        connected = []
        for name, (host, port), path in (
            (HTTP_API, api, "/echo"),
            (REST_API, api, "/echo-rest"),
            (INVOKE_API, invoke, invoke_path("echo")),
        ):
            client = InvokeClient(host, port)
            stack.callback(client.close)
            connected.append(Target(name, OURS, client, path))
        yield connected


def samples(
    connected: list[Target], payload: bytes, count: int, warmups: int, tick: Tick = lambda _: None
) -> dict[str, list[float]]:
    """Milliseconds per request of each way in, interleaved, after `warmups` discarded requests each: the
    warm benchmark's own loop, so that the two ways in are timed exactly as an invoke is."""
    return warm_samples(connected, payload, count, warmups, tick)


def rows(timings: dict[str, list[float]], payload_bytes: int) -> list[Row]:
    """One row per route kind, each against the Invoke API call measured in the same run."""
    params = {"percentiles": True, "payload_bytes": payload_bytes}
    note = "sam local start-api: ~1 s per request (cited, not measured: it needs Docker)"
    invoke = Entry(INVOKE_API, PEER, timings[INVOKE_API])
    return [
        Row(
            "http",
            f"http.{key}.1KB",
            f"HTTP trigger ({label}) -> function -> response, 1 KB JSON",
            "ms",
            [Entry(name, OURS, timings[name]), invoke],
            params=params,
            note=note,
        )
        for key, label, name in (("httpapi", "HTTP API", HTTP_API), ("rest", "REST API", REST_API))
    ]


def run_http(peers: Peers, plan: Plan, scratch: Path, progress: Progress) -> list[Row]:
    """`rapidboot bench --only http`: the suite's hook (its 1 KB warm sample counts)."""
    count, warmups = plan.warm_samples["1 KB"], plan.warm_warmups["1 KB"]
    tick = progress.benchmark("http", count * 3)
    directory = scratch / "http"
    payload = big_event(1024)
    with targets(directory) as connected:
        timings = samples(connected, payload, count, warmups, tick)
    return rows(timings, len(payload))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--warmups", type=int, default=200)
    args = parser.parse_args()
    payload = big_event(1024)
    with (
        tempfile.TemporaryDirectory(prefix="rapidboot-bench-http-") as scratch,
        targets(Path(scratch)) as connected,
    ):
        timings = samples(connected, payload, args.samples, args.warmups)
    base = summarize(timings[INVOKE_API])
    print(f"{len(payload)} byte JSON body, {args.samples} samples each, warm, interleaved")
    for name, values in timings.items():
        summary = summarize(values)
        print(
            f"  {name:32} p50 {summary.median:6.3f} ms  p99 {summary.p99:6.3f} ms  "
            f"p50 ratio {summary.median / base.median:4.2f}x"
        )
    print("  sam local start-api: ~1 s per request (published figure; not measured here, it needs Docker)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
