"""`rapidboot events generate KIND`: a sample event of each source that cannot be connected locally (S3,
SNS, DynamoDB and Kinesis streams) or that a test wants to send by hand (SQS, API Gateway, function URLs,
schedules), with the user's values as flags, as `sam local generate-event` prints them.

Written from the services' documented event shapes (the Lambda developer guide's "Using Lambda with ..."
pages); the tests check every one against Powertools' parser models. Send one with
`rapidboot invoke NAME --event-file FILE`.

Each kind is one function from the parsed flags to the event; the flags of all kinds are declared in one
table (`_KINDS`), so `rapidboot events generate KIND --help` lists exactly what a kind takes.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

_ACCOUNT = "123456789012"
_SOURCE_IP = "198.51.100.7"
_USER_AGENT = "curl/8.5.0"

Event = dict[str, Any]


def _now(args: argparse.Namespace) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) if args.time is None else args.time


def _iso(at: datetime, millis: bool = True) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z" if millis else "%Y-%m-%dT%H:%M:%SZ")


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def s3_put(args: argparse.Namespace) -> Event:
    body = args.body.encode()
    at = _now(args)
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": args.region,
                "eventTime": _iso(at),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLEPRINCIPAL"},
                "requestParameters": {"sourceIPAddress": _SOURCE_IP},
                "responseElements": {
                    "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
                    "x-amz-id-2": base64.b64encode(uuid.uuid4().bytes * 2).decode(),
                },
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "rapidboot-sample",
                    "bucket": {
                        "name": args.bucket,
                        "ownerIdentity": {"principalId": "AEXAMPLEOWNER"},
                        "arn": f"arn:aws:s3:::{args.bucket}",
                    },
                    "object": {
                        # S3 URL-encodes the key in notifications (a space becomes '+').
                        "key": quote(args.key, safe="/").replace("%20", "+"),
                        "size": len(body),
                        "eTag": _md5(body),
                        "sequencer": f"{int(at.timestamp() * 1000):016X}",
                    },
                },
            }
        ]
    }


def sns(args: argparse.Namespace) -> Event:
    topic = f"arn:aws:sns:{args.region}:{_ACCOUNT}:{args.topic}"
    return {
        "Records": [
            {
                "EventSource": "aws:sns",
                "EventVersion": "1.0",
                "EventSubscriptionArn": f"{topic}:{uuid.uuid4()}",
                "Sns": {
                    "Type": "Notification",
                    "MessageId": str(uuid.uuid4()),
                    "TopicArn": topic,
                    "Subject": args.subject,
                    "Message": args.message,
                    "Timestamp": _iso(_now(args)),
                    "SignatureVersion": "1",
                    "Signature": base64.b64encode(b"rapidboot sample: not signed").decode(),
                    "SigningCertUrl": f"https://sns.{args.region}.amazonaws.com/SimpleNotificationService-sample.pem",
                    "UnsubscribeUrl": f"https://sns.{args.region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={topic}",
                    "MessageAttributes": {},
                },
            }
        ]
    }


def sqs(args: argparse.Namespace) -> Event:
    at_ms = str(int(_now(args).timestamp() * 1000))
    body = args.body
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": base64.b64encode(uuid.uuid4().bytes * 4).decode(),
                "body": body,
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": at_ms,
                    "SenderId": "AIDAEXAMPLESENDER",
                    "ApproximateFirstReceiveTimestamp": at_ms,
                },
                "messageAttributes": {},
                "md5OfBody": _md5(body.encode()),
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{args.region}:{_ACCOUNT}:{args.queue}",
                "awsRegion": args.region,
            }
        ]
    }


def _body(args: argparse.Namespace) -> tuple[str | None, bool]:
    return (args.body or None), False


def apigw_v1(args: argparse.Namespace) -> Event:
    at = _now(args)
    body, encoded = _body(args)
    return {
        "resource": args.path,
        "path": args.path,
        "httpMethod": args.method,
        "headers": {"Host": "abcdef1234.execute-api.amazonaws.com", "User-Agent": _USER_AGENT},
        "multiValueHeaders": {
            "Host": ["abcdef1234.execute-api.amazonaws.com"],
            "User-Agent": [_USER_AGENT],
        },
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": _ACCOUNT,
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.amazonaws.com",
            "domainPrefix": "abcdef1234",
            "extendedRequestId": "rapidboot-sample=",
            "httpMethod": args.method,
            "identity": {"sourceIp": _SOURCE_IP, "userAgent": _USER_AGENT},
            "path": f"/{args.stage}{args.path}",
            "protocol": "HTTP/1.1",
            "requestId": str(uuid.uuid4()),
            "requestTime": at.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(at.timestamp() * 1000),
            "resourceId": "abc123",
            "resourcePath": args.path,
            "stage": args.stage,
        },
        "body": body,
        "isBase64Encoded": encoded,
    }


def _http_v2(args: argparse.Namespace, route_key: str, stage: str) -> Event:
    at = _now(args)
    body, encoded = _body(args)
    event: Event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": args.path,
        "rawQueryString": "",
        "headers": {"host": "abcdef1234.execute-api.amazonaws.com", "user-agent": _USER_AGENT},
        "requestContext": {
            "accountId": _ACCOUNT,
            "apiId": "abcdef1234",
            "domainName": "abcdef1234.execute-api.amazonaws.com",
            "domainPrefix": "abcdef1234",
            "http": {
                "method": args.method,
                "path": args.path,
                "protocol": "HTTP/1.1",
                "sourceIp": _SOURCE_IP,
                "userAgent": _USER_AGENT,
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": stage,
            "time": at.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(at.timestamp() * 1000),
        },
        "isBase64Encoded": encoded,
    }
    if body is not None:
        event["body"] = body
    return event


def apigw_v2(args: argparse.Namespace) -> Event:
    return _http_v2(args, f"{args.method} {args.path}", args.stage)


def function_url(args: argparse.Namespace) -> Event:
    event = _http_v2(args, "$default", "$default")
    domain = "abcdefghijklmnopqrstuvwxyz012345.lambda-url.us-east-1.on.aws"
    event["headers"]["host"] = domain
    event["requestContext"].update({"apiId": domain.split(".")[0], "domainName": domain})
    event["requestContext"]["domainPrefix"] = domain.split(".")[0]
    return event


def scheduled(args: argparse.Namespace) -> Event:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": _ACCOUNT,
        "time": _iso(_now(args), millis=False),
        "region": args.region,
        "resources": [f"arn:aws:events:{args.region}:{_ACCOUNT}:rule/{args.rule}"],
        "detail": {},
    }


def dynamodb(args: argparse.Namespace) -> Event:
    at = _now(args)
    keys = {"id": {"S": args.key}}
    image = {**keys, "body": {"S": args.body}}
    change: dict[str, Any] = {
        "ApproximateCreationDateTime": int(at.timestamp()),
        "Keys": keys,
        "SequenceNumber": "111100000000000000000001",
        "SizeBytes": len(str(image)),
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if args.event_name != "REMOVE":
        change["NewImage"] = image
    if args.event_name != "INSERT":
        change["OldImage"] = {**keys, "body": {"S": ""}}
    stream_label = at.strftime("%Y-%m-%dT%H:%M:%S.000")
    return {
        "Records": [
            {
                "eventID": uuid.uuid4().hex,
                "eventName": args.event_name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": args.region,
                "dynamodb": change,
                "eventSourceARN": (
                    f"arn:aws:dynamodb:{args.region}:{_ACCOUNT}:table/{args.table}/stream/{stream_label}"
                ),
            }
        ]
    }


def kinesis(args: argparse.Namespace) -> Event:
    at = _now(args)
    sequence = "49590338271490256608559692538361571095921575989136588898"
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": args.partition_key,
                    "sequenceNumber": sequence,
                    "data": base64.b64encode(args.data.encode()).decode(),
                    "approximateArrivalTimestamp": at.timestamp(),
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"shardId-000000000000:{sequence}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": f"arn:aws:iam::{_ACCOUNT}:role/rapidboot-sample-role",
                "awsRegion": args.region,
                "eventSourceARN": f"arn:aws:kinesis:{args.region}:{_ACCOUNT}:stream/{args.stream}",
            }
        ]
    }


_Flag = tuple[str, dict[str, Any]]
_HTTP: list[_Flag] = [
    ("--method", {"default": "GET", "type": str.upper, "help": "(default: %(default)s)"}),
    ("--path", {"default": "/", "help": "(default: %(default)s)"}),
    ("--body", {"default": "", "help": "the request body (default: none)"}),
]
_STAGE: _Flag = ("--stage", {"default": "prod", "help": "(default: %(default)s)"})
# kind -> (what it is, its builder, its flags)
_KINDS: dict[str, tuple[str, Callable[[argparse.Namespace], Event], list[_Flag]]] = {
    "s3-put": (
        "an S3 ObjectCreated:Put notification",
        s3_put,
        [
            ("--bucket", {"default": "example-bucket", "help": "(default: %(default)s)"}),
            ("--key", {"default": "example/key.txt", "help": "the object's key (default: %(default)s)"}),
            ("--body", {"default": "", "help": "the object's content, for its size and ETag"}),
        ],
    ),
    "sns": (
        "an SNS notification",
        sns,
        [
            ("--topic", {"default": "example-topic", "help": "(default: %(default)s)"}),
            ("--message", {"default": "hello from SNS", "help": "(default: %(default)s)"}),
            ("--subject", {"default": None, "help": "(default: none)"}),
        ],
    ),
    "sqs": (
        "an SQS batch of one message",
        sqs,
        [
            ("--queue", {"default": "example-queue", "help": "the queue's name (default: %(default)s)"}),
            ("--body", {"default": "hello from SQS", "help": "(default: %(default)s)"}),
        ],
    ),
    "apigw-v1": ("an API Gateway REST API (payload 1.0) request", apigw_v1, [*_HTTP, _STAGE]),
    "apigw-v2": ("an API Gateway HTTP API (payload 2.0) request", apigw_v2, [*_HTTP, _STAGE]),
    "function-url": ("a function URL request", function_url, _HTTP),
    "scheduled": (
        "an EventBridge rule's Scheduled Event",
        scheduled,
        [("--rule", {"default": "example-schedule", "help": "the rule's name (default: %(default)s)"})],
    ),
    "dynamodb": (
        "a DynamoDB stream record",
        dynamodb,
        [
            ("--table", {"default": "example-table", "help": "(default: %(default)s)"}),
            ("--key", {"default": "item-1", "help": "the item's `id` (a string key) (default: %(default)s)"}),
            ("--body", {"default": "hello from DynamoDB", "help": "the item's `body` attribute"}),
            (
                "--event-name",
                {"default": "INSERT", "choices": ["INSERT", "MODIFY", "REMOVE"], "help": "(default: INSERT)"},
            ),
        ],
    ),
    "kinesis": (
        "a Kinesis data stream record",
        kinesis,
        [
            ("--stream", {"default": "example-stream", "help": "(default: %(default)s)"}),
            ("--data", {"default": "hello from Kinesis", "help": "the record's data (sent base64-encoded)"}),
            ("--partition-key", {"default": "partition-1", "help": "(default: %(default)s)"}),
        ],
    ),
}
KINDS = tuple(_KINDS)


def _time(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an ISO 8601 time, e.g. 2027-01-31T12:00:00Z"
        ) from None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)


def build_parser(prog: str = "rapidboot events") -> argparse.ArgumentParser:
    """`rapidboot events generate KIND [flags]`."""
    events = argparse.ArgumentParser(prog=prog, description="Sample events of each event source.")
    verbs = events.add_subparsers(dest="events_command", required=True, metavar="VERB")
    generate_parser = verbs.add_parser(
        "generate", help="print a sample event; send it with `rapidboot invoke NAME --event-file FILE`"
    )
    kinds = generate_parser.add_subparsers(dest="kind", required=True, metavar="KIND")
    for kind, (what, _, flags) in _KINDS.items():
        parser = kinds.add_parser(kind, help=what)
        for flag, options in flags:
            parser.add_argument(flag, **options)
        parser.add_argument("--region", default="us-east-1", help="(default: %(default)s)")
        parser.add_argument(
            "--time", type=_time, default=None, help="the event's time, ISO 8601 (default: now)"
        )
    return events


def build(kind: str, args: argparse.Namespace) -> Event:
    return _KINDS[kind][1](args)


def main(argv: list[str], prog: str = "rapidboot events") -> int:
    import orjson

    args = build_parser(prog).parse_args(argv)
    sys.stdout.buffer.write(orjson.dumps(build(args.kind, args), option=orjson.OPT_INDENT_2) + b"\n")
    return 0
