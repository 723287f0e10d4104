"""`rapidboot invoke`: one invoke of a function on a running server, as boto3 would send it."""

from __future__ import annotations

import argparse
import base64
import sys
from urllib.parse import quote

import httpx
import orjson

from ..config import ConfigError
from .eventstream import Decoder, EventStreamError


def invoke(args: argparse.Namespace) -> int:
    """0 on success, 1 for a function error, 2 when the invoke itself failed."""
    if args.payload_file is not None:
        try:
            body = args.payload_file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"--payload-file {args.payload_file}: {exc.strerror}") from None
    else:
        body = (args.payload or "").encode()
    if args.stream and args.invocation_type == "Event":
        raise ConfigError("--stream takes a response; it cannot be used with --invocation-type Event")
    name = quote(args.name, safe="")
    base = args.endpoint.rstrip("/")
    headers = {"X-Amz-Invocation-Type": args.invocation_type, "X-Amz-Log-Type": args.log_type}
    if args.client_context is not None:
        headers["X-Amz-Client-Context"] = base64.b64encode(args.client_context.encode()).decode()
    if getattr(args, "durable_execution_name", None):
        headers["X-Amz-Durable-Execution-Name"] = args.durable_execution_name
    timeout = httpx.Timeout(10, read=args.read_timeout)
    try:
        if args.stream:
            url = f"{base}/2021-11-15/functions/{name}/response-streaming-invocations"
            return _stream(url, body, headers, timeout)
        url = f"{base}/2015-03-31/functions/{name}/invocations"
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        print(f"rapidboot: cannot invoke {args.name} at {args.endpoint}: {exc}", file=sys.stderr)
        return 2
    if "X-Amz-Durable-Execution-Arn" in response.headers:  # SAM CLI never shows it (aws-sam-cli #9200)
        print(
            f"rapidboot: durable execution {response.headers['X-Amz-Durable-Execution-Arn']}", file=sys.stderr
        )
    if response.status_code == 202:  # queued: there is no response, only the invocation's request id
        print(response.headers.get("x-amzn-RequestId", ""), flush=True)
        return 0
    _write_payload(response.content)
    if response.status_code >= 300:
        return _service_error(response)
    _print_log(response.headers.get("X-Amz-Log-Result"))
    if response.headers.get("X-Amz-Function-Error"):
        print(f"rapidboot: function error ({response.headers['X-Amz-Function-Error']})", file=sys.stderr)
        return 1
    return 0


def _stream(url: str, body: bytes, headers: dict[str, str], timeout: httpx.Timeout) -> int:
    """Print each chunk as it arrives; the completion's error and log go to stderr."""
    decoder = Decoder()
    ended_with_newline = True
    with httpx.stream("POST", url, content=body, headers=headers, timeout=timeout) as response:
        if response.status_code != 200:
            response.read()
            _write_payload(response.content)
            return _service_error(response) if response.status_code >= 300 else 0
        for piece in response.iter_raw():
            try:
                messages = decoder.feed(piece)
            except EventStreamError as exc:
                print(f"rapidboot: the response stream is corrupt: {exc}", file=sys.stderr)
                return 2
            for message in messages:
                if message.event_type == "PayloadChunk":
                    if message.payload:
                        sys.stdout.buffer.write(message.payload)
                        sys.stdout.flush()
                        ended_with_newline = message.payload.endswith(b"\n")
                    continue
                if message.event_type != "InvokeComplete":
                    continue
                if not ended_with_newline:
                    sys.stdout.buffer.write(b"\n")
                    sys.stdout.flush()
                complete = orjson.loads(message.payload)
                _print_log(complete.get("LogResult"))
                if "ErrorCode" in complete:
                    details = complete.get("ErrorDetails", "")
                    print(f"rapidboot: function error ({complete['ErrorCode']}): {details}", file=sys.stderr)
                    return 1
                return 0
    print("rapidboot: the response stream ended without InvokeComplete", file=sys.stderr)
    return 2


def _write_payload(content: bytes) -> None:
    sys.stdout.buffer.write(content)
    if content and not content.endswith(b"\n"):
        sys.stdout.buffer.write(b"\n")
    sys.stdout.flush()


def _service_error(response: httpx.Response) -> int:
    code = response.headers.get("x-amzn-ErrorType", str(response.status_code))
    print(f"rapidboot: {code} (HTTP {response.status_code})", file=sys.stderr)
    return 2


def _print_log(log_result: str | None) -> None:
    if log_result:
        log = base64.b64decode(log_result).decode("utf-8", "replace")
        sys.stderr.write(log if log.endswith("\n") else log + "\n")
        sys.stderr.flush()
