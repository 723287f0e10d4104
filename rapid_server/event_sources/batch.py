"""One batch's contract with the function, as Lambda's SQS poller keeps it (docs: "Using Lambda with
Amazon SQS", "Handling errors for an SQS event source"). Pure: messages in, event bytes and the ids to
delete out, so every rule is tested without a queue.

- The event is `{"Records": [...]}`, one record per message in the order received, in the service's shape
  (`messageId`, `receiptHandle`, `body`, `attributes`, `messageAttributes`, `md5OfBody`,
  `md5OfMessageAttributes`, `eventSource`, `eventSourceARN`, `awsRegion`).
- A function error (raised, timed out, crashed) deletes nothing: the whole batch becomes visible again
  after the queue's visibility timeout.
- Success deletes the whole batch. With `ReportBatchItemFailures`, the answer
  `{"batchItemFailures": [{"itemIdentifier": ID}, ...]}` deletes all but the listed messages; an empty or
  null list, a null answer or an object without the key mean success. A malformed answer fails the whole
  batch: not JSON, not an object, a list that is not a list of `{"itemIdentifier": ...}`, an empty, null or
  non-string id, or an id that is not a message of the batch.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

EVENT_SOURCE = "aws:sqs"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What one batch's answer means for the queue: which receipt handles to delete, and, when the
    function's answer failed messages (or the whole batch), why, for the log."""

    delete: tuple[str, ...]  # receipt handles
    failed: int  # messages left on the queue
    problem: str | None = None  # a malformed answer, or the function error


def event(messages: Sequence[Mapping[str, Any]], queue_arn: str, region: str) -> bytes:
    """The invoke's payload: boto3's ReceiveMessage messages as Lambda's SQS records."""
    return orjson.dumps({"Records": [_record(message, queue_arn, region) for message in messages]})


def _record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes") or {}),
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfMessageAttributes": message.get("MD5OfMessageAttributes"),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": EVENT_SOURCE,
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """SQS's `{DataType, StringValue | BinaryValue}` (botocore decodes binary to bytes) as Lambda renders
    it: camelCase, binary in base64, both list members present and empty."""
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    attribute["stringListValues"] = list(value.get("StringListValues") or [])
    attribute["binaryListValues"] = [
        base64.b64encode(b).decode() for b in value.get("BinaryListValues") or []
    ]
    attribute["dataType"] = value.get("DataType", "String")
    return attribute


def verdict(
    messages: Sequence[Mapping[str, Any]],
    function_error: bool,
    body: bytes,
    report_batch_item_failures: bool,
) -> Verdict:
    """What the function's answer to this batch deletes."""
    if function_error:
        return Verdict(
            (), len(messages), "the function failed: the batch returns after the visibility timeout"
        )
    handles = {message["MessageId"]: message["ReceiptHandle"] for message in messages}
    if not report_batch_item_failures:
        return Verdict(tuple(handles.values()), 0)
    failed_ids, problem = _batch_item_failures(body, handles.keys())
    if problem is not None:
        return Verdict((), len(messages), f"malformed batchItemFailures, the whole batch failed: {problem}")
    keep = set(failed_ids)
    delete = tuple(handle for message_id, handle in handles.items() if message_id not in keep)
    return Verdict(delete, len(keep), None)


def _batch_item_failures(body: bytes, ids: Any) -> tuple[list[str], str | None]:
    try:
        answer = orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        return [], "the answer is not JSON"
    if answer is None:
        return [], None
    if not isinstance(answer, dict):
        return [], f"the answer is a JSON {type(answer).__name__}, not an object"
    failures = answer.get("batchItemFailures")
    if failures is None:
        return [], None
    if not isinstance(failures, list):
        return [], "batchItemFailures is not a list"
    failed: list[str] = []
    for item in failures:
        if not isinstance(item, dict) or "itemIdentifier" not in item:
            return [], f"{orjson.dumps(item).decode()} has no itemIdentifier"
        identifier = item["itemIdentifier"]
        if not isinstance(identifier, str) or not identifier:
            return [], f"itemIdentifier {identifier!r} is not a message id"
        if identifier not in ids:
            return [], f"itemIdentifier {identifier!r} is not a message of this batch"
        failed.append(identifier)
    return failed, None
