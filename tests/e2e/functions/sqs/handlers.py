"""A function triggered by an SQS event source mapping (tests/e2e/test_e2e_sqs.py).

Every record is appended to $RECORDS as one JSON line (id, body, receive count, group), and every event
whole to $EVENTS. What a message asks for happens on its first delivery only (ApproximateReceiveCount 1),
so a redelivered message succeeds: `raise`, `timeout`, `crash` fail the batch; `item-fail` is reported in
batchItemFailures; `answer:KIND` returns the answer KIND names; `gate` waits for the file $GATE (having
created $STARTED). In a FIFO queue each message group holds a marker file while its batch runs: a second
batch of the same group finding it records an overlap.
"""

import contextlib
import json
import os
import time

ANSWERS = {
    "unknown-id": lambda ids: {"batchItemFailures": [{"itemIdentifier": "not-a-message-of-this-batch"}]},
    "empty-id": lambda ids: {"batchItemFailures": [{"itemIdentifier": ""}]},
    "null-id": lambda ids: {"batchItemFailures": [{"itemIdentifier": None}]},
    "wrong-key": lambda ids: {"batchItemFailures": [{"id": ids[0]}]},
    "not-a-list": lambda ids: {"batchItemFailures": ids[0]},
    "not-an-object": lambda ids: "done",
    "empty-list": lambda ids: {"batchItemFailures": []},
    "null-list": lambda ids: {"batchItemFailures": None},
    "null": lambda ids: None,
    "other-keys": lambda ids: {"processed": len(ids)},
}


def _append(path, line):
    with open(path, "a") as file:
        file.write(line + "\n")


def handler(event, context):
    records = event["Records"]
    with open(os.environ["EVENTS"], "a") as file:
        file.write(json.dumps(event) + "\n")
    groups = {r["attributes"].get("MessageGroupId") for r in records} - {None}
    markers = [os.path.join(os.environ["MARKS"], g) for g in groups]
    for marker in markers:
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            _append(os.environ["RECORDS"], json.dumps({"overlap": os.path.basename(marker)}))
    try:
        return _handle(records)
    finally:
        for marker in markers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(marker)


def _handle(records):
    failures = []
    answer, answered = None, False
    for record in records:
        body = record["body"]
        first = record["attributes"]["ApproximateReceiveCount"] == "1"
        line = {
            "id": record["messageId"],
            "body": body,
            "count": int(record["attributes"]["ApproximateReceiveCount"]),
            "group": record["attributes"].get("MessageGroupId"),
        }
        _append(os.environ["RECORDS"], json.dumps(line))
        if slow := os.environ.get("SLOW"):
            time.sleep(float(slow))  # widens the window a second batch of the group would hit
        if not first:
            continue
        if body == "gate":
            _append(os.environ["STARTED"], record["messageId"])
            while not os.path.exists(os.environ["GATE"]):
                time.sleep(0.01)
        elif body == "raise":
            raise RuntimeError("failing the batch")
        elif body == "timeout":
            time.sleep(60)
        elif body == "crash":
            os._exit(3)
        elif body == "item-fail":
            failures.append({"itemIdentifier": record["messageId"]})
        elif body.startswith("answer:"):
            answer, answered = ANSWERS[body.split(":", 1)[1]]([r["messageId"] for r in records]), True
    if answered:
        return answer
    return {"batchItemFailures": failures}
