"""`rapidboot executions list|get|history|stop|pause|resume|delete` and `rapidboot callback
succeed|fail|heartbeat`: the durable execution API of a running server, from the shell, with each
execution's ARN and operations shown (what `sam local execution` sets out to do). Its own parser, as
`rapidboot events`: no other command pays for it."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"


def executions_main(argv: list[str], prog: str = "rapidboot executions") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="durable executions on a running server")
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="server URL (default: %(default)s)")
    actions = parser.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="a function's executions: ARN, status, start")
    listing.add_argument("function")
    listing.add_argument("--status", action="append", default=[], help="RUNNING, SUCCEEDED, FAILED, ...")
    for name, text in (("get", "an execution: status, input, result or error"), ("history", "its events")):
        actions.add_parser(name, help=text).add_argument("arn")
    stop = actions.add_parser("stop", help="stop a RUNNING execution")
    stop.add_argument("arn")
    stop.add_argument("--error-message", default="Stopped by rapidboot executions stop")
    pause = actions.add_parser("pause", help="pause an execution: not invoked until resumed")
    pause.add_argument("arn")
    pause.add_argument("--reason", help="recorded in its history")
    pause.add_argument(
        "--timeout-paused", action="store_true", help="its execution timeout does not run while paused"
    )
    resume = actions.add_parser("resume", help="resume a paused execution")
    resume.add_argument("arn")
    resume.add_argument("--reason", help="recorded in its history")
    actions.add_parser("delete", help="delete an ended execution and its history").add_argument("arn")
    args = parser.parse_args(argv)
    base = args.endpoint.rstrip("/")
    if args.action == "list":
        query = "".join(f"&Statuses={status}" for status in args.status).lstrip("&")
        url = f"{base}/2025-12-01/functions/{quote(args.function, safe='')}/durable-executions"
        answer = _call("GET", url + (f"?{query}" if query else ""))
        if answer is None:
            return 2
        for execution in answer.get("DurableExecutions", []):
            started = _time(execution["StartTimestamp"])
            print(f"{execution['Status']:<10} {started}  {execution['DurableExecutionArn']}")
        return 0
    url = f"{base}/2025-12-01/durable-executions/{quote(args.arn, safe='')}"
    if args.action == "get":
        answer = _call("GET", url)
        if answer is None:
            return 2
        sys.stdout.write(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if args.action == "history":
        answer = _call("GET", url + "/history")
        if answer is None:
            return 2
        for event in answer.get("Events", []):
            label = event.get("Name") or event.get("Id", "")
            details: dict[str, Any] = next((v for k, v in event.items() if k.endswith("Details")), {})
            when = _time(event["EventTimestamp"])
            print(f"{event['EventId']:>4} {when}  {event['EventType']:<22} {label}  {_brief(details)}")
        return 0
    if args.action in ("pause", "resume"):
        body: dict[str, Any] = {"Reason": args.reason} if args.reason else {}
        if args.action == "pause" and args.timeout_paused:
            body["ExecutionTimeoutPaused"] = True
        if _call("POST", f"{url}/{args.action}", body) is None:
            return 2
        print(f"{'paused' if args.action == 'pause' else 'resumed'}: {args.arn}")
        return 0
    if args.action == "delete":
        answer = _call("DELETE", url)
        if answer is None:
            return 2
        print(f"deleted at {_time(answer['DeletionRequestTimestamp'])}: {args.arn}")
        return 0
    answer = _call("POST", url + "/stop", {"ErrorMessage": args.error_message})
    if answer is None:
        return 2
    print(f"stopped at {_time(answer['StopTimestamp'])}: {args.arn}")
    return 0


def callback_main(argv: list[str], prog: str = "rapidboot callback") -> int:
    parser = argparse.ArgumentParser(prog=prog, description="complete a durable execution's callback")
    parser.add_argument("--endpoint", default=DEFAULT_ENDPOINT, help="server URL (default: %(default)s)")
    actions = parser.add_subparsers(dest="action", required=True)
    succeed = actions.add_parser("succeed", help="SendDurableExecutionCallbackSuccess")
    succeed.add_argument("callback_id")
    succeed.add_argument("--result", default="", help="the result, as the handler receives it")
    fail = actions.add_parser("fail", help="SendDurableExecutionCallbackFailure")
    fail.add_argument("callback_id")
    fail.add_argument("--error-type", default="Callback.Failed")
    fail.add_argument("--error-message", default="")
    actions.add_parser("heartbeat", help="SendDurableExecutionCallbackHeartbeat").add_argument("callback_id")
    args = parser.parse_args(argv)
    callback = quote(args.callback_id, safe="")
    url = f"{args.endpoint.rstrip('/')}/2025-12-01/durable-execution-callbacks/{callback}"
    if args.action == "succeed":
        answer = _call("POST", url + "/succeed", raw=args.result.encode())
    elif args.action == "fail":
        answer = _call(
            "POST", url + "/fail", {"ErrorType": args.error_type, "ErrorMessage": args.error_message}
        )
    else:
        answer = _call("POST", url + "/heartbeat")
    if answer is None:
        return 2
    print(f"callback {args.action}: {args.callback_id}")
    return 0


def _call(method: str, url: str, body: dict[str, Any] | None = None, raw: bytes | None = None) -> Any:
    """The answer's JSON; None (the error printed) when the server refused or could not be reached."""
    content = raw if raw is not None else (orjson.dumps(body) if body is not None else b"")
    try:
        response = httpx.request(method, url, content=content, timeout=30)
    except httpx.HTTPError as exc:
        print(f"rapidboot: cannot reach {url}: {exc}", file=sys.stderr)
        return None
    if response.status_code >= 300:
        code = response.headers.get("x-amzn-ErrorType", str(response.status_code))
        message = response.json().get("message", "") if response.content else ""
        print(f"rapidboot: {code}: {message}", file=sys.stderr)
        return None
    return response.json() if response.content else {}


def _time(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _brief(details: dict[str, Any]) -> str:
    text = orjson.dumps(details).decode() if details else ""
    return text if len(text) <= 120 else text[:117] + "..."
