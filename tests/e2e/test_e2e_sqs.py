"""SQS event source mappings end to end: our server polls moto's standalone server (a real process on a free
port, `moto[server]`), one test per outcome of the batch contract (rapid_server/event_sources/).

Nothing waits on a sleep: each test polls the queue's state, or a file the function writes, against a
deadline. Queues that must redeliver have a short VisibilityTimeout; the server's long poll is cut to 1 s
(RAPIDBOOT_SQS_LONG_POLL) where a test must see a poller retire on an empty queue.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import lambda_client, running_server, server_environment
from e2e_harness import wait_until as poll_until

from rapidboot.benchmarks.moto_server import MotoServer, running_moto

pytestmark = pytest.mark.e2e

FUNCTION_CODE = Path(__file__).parent / "functions" / "sqs"
DEADLINE_S = 30.0
REGION, ACCOUNT = "us-east-1", "123456789012"


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with running_moto() as server:
        yield server


@pytest.fixture(scope="module")
def sqs(moto: MotoServer) -> Any:
    import boto3

    return boto3.client(
        "sqs",
        region_name=REGION,
        endpoint_url=moto.endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@dataclass
class Queue:
    url: str
    arn: str
    name: str


def new_queue(sqs: Any, fifo: bool = False, visibility_s: int = 30) -> Queue:
    name = f"q-{uuid.uuid4().hex[:12]}" + (".fifo" if fifo else "")
    attributes = {"VisibilityTimeout": str(visibility_s)}
    if fifo:
        attributes |= {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    return Queue(url, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}", name)


def send(sqs: Any, queue: Queue, *bodies: str, **extra: Any) -> list[str]:
    return [sqs.send_message(QueueUrl=queue.url, MessageBody=body, **extra)["MessageId"] for body in bodies]


def wait_until(condition: Callable[[], Any], what: str, timeout: float = DEADLINE_S) -> Any:
    """The first truthy value of `condition`, polled against a deadline (the harness's poll)."""
    seen: list[Any] = [None]

    def holds() -> bool:
        seen[0] = condition()
        return bool(seen[0])

    assert poll_until(holds, timeout), f"not within {timeout} s: {what}"
    return seen[0]


def queue_size(sqs: Any, queue: Queue) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue.url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def wait_drained(sqs: Any, queue: Queue) -> None:
    wait_until(lambda: queue_size(sqs, queue) == 0, f"queue {queue.name} empty (every message deleted)")


class Workdir:
    """The function's files: what it records, its gate, and the server's rapidboot.toml."""

    def __init__(self, root: Path):
        self.root = root
        self.records = root / "records.jsonl"
        self.events = root / "events.jsonl"
        self.gate = root / "gate"
        self.started = root / "started"
        self.marks = root / "marks"
        self.marks.mkdir()
        self.records.touch()
        self.events.touch()

    def environment(self, slow: float = 0.0) -> dict[str, str]:
        env = {
            "RECORDS": str(self.records),
            "EVENTS": str(self.events),
            "GATE": str(self.gate),
            "STARTED": str(self.started),
            "MARKS": str(self.marks),
        }
        return env | ({"SLOW": str(slow)} if slow else {})

    def config(
        self, mapping: dict[str, Any] | None, timeout: int = 1, reserved: int | None = None, slow: float = 0.0
    ) -> Path:
        lines = [
            "[functions.worker]",
            f"code = {json.dumps(str(FUNCTION_CODE))}",
            'handler = "handlers.handler"',
            f"timeout = {timeout}",
            "environment = {"
            + ", ".join(f"{k} = {json.dumps(v)}" for k, v in self.environment(slow).items())
            + "}",
        ]
        if reserved is not None:
            lines.append(f"reserved_concurrency = {reserved}")
        if mapping is not None:
            lines.append("[[functions.worker.event_sources]]")
            lines += [f"{key} = {json.dumps(value)}" for key, value in mapping.items()]
        path = self.root / "rapidboot.toml"
        path.write_text("\n".join(lines) + "\n")
        return path

    def seen(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.records.read_text().splitlines()]

    def counts(self) -> dict[str, list[int]]:
        """Each message body: the receive counts it was delivered to the function with."""
        counts: dict[str, list[int]] = {}
        for record in self.seen():
            if "body" in record:
                counts.setdefault(record["body"], []).append(record["count"])
        return counts


@pytest.fixture
def work(tmp_path: Path) -> Workdir:
    return Workdir(tmp_path)


def server_env(moto: MotoServer, long_poll_s: int | None = 1) -> dict[str, str]:
    env = server_environment() | moto.environment()
    if long_poll_s is not None:
        env["RAPIDBOOT_SQS_LONG_POLL"] = str(long_poll_s)
    return env


def serve(work: Workdir, moto: MotoServer, mapping: dict[str, Any] | None, **options: Any) -> Any:
    long_poll_s = options.pop("long_poll_s", 1)
    check_shutdown = options.pop("check_shutdown", True)
    config = work.config(mapping, **options)
    return running_server(
        ["--config", str(config), "--state-dir", str(work.root / "state")],
        work.root,
        server_env(moto, long_poll_s),
        check_shutdown=check_shutdown,
    )


# --- success, and the event's shape ---------------------------------------------------------------


def test_success_deletes_the_batch_and_the_event_has_the_service_shape(
    moto: MotoServer, sqs: Any, work: Workdir
) -> None:
    from aws_lambda_powertools.utilities.data_classes import SQSEvent
    from aws_lambda_powertools.utilities.parser.models import SqsModel

    queue = new_queue(sqs)
    ids = send(
        sqs,
        queue,
        "first",
        "second",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "order"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    with serve(work, moto, {"queue": queue.arn, "batch_size": 10}):
        wait_drained(sqs, queue)
    assert work.counts() == {"first": [1], "second": [1]}
    events = [json.loads(line) for line in work.events.read_text().splitlines()]
    records = [record for event in events for record in event["Records"]]
    assert sorted(r["messageId"] for r in records) == sorted(ids)
    for event in events:
        SqsModel.model_validate(event)  # Powertools' parser model of the service's event
        for record in SQSEvent(event).records:
            assert record.event_source == "aws:sqs"
            assert record.event_source_arn == queue.arn
            assert record.aws_region == REGION
            assert record.message_attributes["kind"].string_value == "order"
            assert record.message_attributes["kind"].data_type == "String"
            assert record.attributes.approximate_receive_count == "1"
            assert record.attributes.sent_timestamp
    record = records[0]
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfMessageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["messageAttributes"]["blob"] == {
        "binaryValue": "AAE=",
        "stringListValues": [],
        "binaryListValues": [],
        "dataType": "Binary",
    }


# --- a failed batch stays on the queue -------------------------------------------------------------


@pytest.mark.parametrize("failure", ["raise", "timeout", "crash"])
def test_a_failed_batch_is_left_for_the_visibility_timeout(
    moto: MotoServer, sqs: Any, work: Workdir, failure: str
) -> None:
    """A function error, a timeout or a crash deletes nothing: the whole batch comes back once its
    visibility timeout passes, and is deleted when the function then succeeds."""
    queue = new_queue(sqs, visibility_s=2)
    send(sqs, queue, "bystander", failure)  # one batch: both are sent before the server polls
    with serve(work, moto, {"queue": queue.arn}) as server:
        wait_drained(sqs, queue)
    assert work.counts() == {"bystander": [1, 2], failure: [1, 2]}
    assert server.stderr.wait_for(lambda line: "the function failed" in line) is not None


# --- partial batch responses -----------------------------------------------------------------------


def test_report_batch_item_failures_deletes_all_but_the_listed(
    moto: MotoServer, sqs: Any, work: Workdir
) -> None:
    queue = new_queue(sqs, visibility_s=2)
    send(sqs, queue, "a", "item-fail", "c")
    mapping = {"queue": queue.arn, "report_batch_item_failures": True}
    with serve(work, moto, mapping) as server:
        wait_drained(sqs, queue)
    assert work.counts() == {"a": [1], "item-fail": [1, 2], "c": [1]}
    assert server.stderr.wait_for(lambda line: "1 reported failed" in line) is not None


# Every shape is in tests/rapid_server/test_event_sources.py; here, a few through a real runtime's answer.
@pytest.mark.parametrize("answer", ["empty-list", "null"])
def test_an_empty_or_null_failure_list_is_success(
    moto: MotoServer, sqs: Any, work: Workdir, answer: str
) -> None:
    queue = new_queue(sqs, visibility_s=2)
    send(sqs, queue, f"answer:{answer}", "b")
    with serve(work, moto, {"queue": queue.arn, "report_batch_item_failures": True}):
        wait_drained(sqs, queue)
    assert work.counts() == {f"answer:{answer}": [1], "b": [1]}


@pytest.mark.parametrize("answer", ["unknown-id", "empty-id", "wrong-key", "not-an-object"])
def test_a_malformed_failure_list_fails_the_whole_batch(
    moto: MotoServer, sqs: Any, work: Workdir, answer: str
) -> None:
    queue = new_queue(sqs, visibility_s=2)
    send(sqs, queue, f"answer:{answer}", "b")
    with serve(work, moto, {"queue": queue.arn, "report_batch_item_failures": True}) as server:
        wait_drained(sqs, queue)
    assert work.counts() == {f"answer:{answer}": [1, 2], "b": [1, 2]}
    assert server.stderr.wait_for(lambda line: "malformed batchItemFailures" in line) is not None


# --- FIFO ------------------------------------------------------------------------------------------


def test_fifo_runs_one_batch_per_message_group_in_order(moto: MotoServer, sqs: Any, work: Workdir) -> None:
    queue = new_queue(sqs, fifo=True)
    for i in range(8):
        for group in ("g1", "g2"):
            send(sqs, queue, f"{group}-{i}", MessageGroupId=group)
    mapping = {"queue": queue.arn, "batch_size": 2, "maximum_concurrency": 4}
    with serve(work, moto, mapping, slow=0.02):
        wait_drained(sqs, queue)
    seen = work.seen()
    assert [r for r in seen if "overlap" in r] == []
    for group in ("g1", "g2"):
        assert [r["body"] for r in seen if r.get("group") == group] == [f"{group}-{i}" for i in range(8)]


# --- throttling ------------------------------------------------------------------------------------


def test_throttling_slows_polling_and_loses_nothing(moto: MotoServer, sqs: Any, work: Workdir) -> None:
    """Reserved concurrency 1, held by a sync invoke: the mapping's batch is throttled, retried with
    backoff, and runs once the invoke ends; every message is processed once."""
    queue = new_queue(sqs)
    with serve(work, moto, {"queue": queue.arn}, reserved=1, timeout=30) as server:
        held = {"Records": [_record("gate")]}
        caller = threading.Thread(target=server.invoke, args=("worker", held))
        caller.start()
        wait_until(work.started.exists, "the sync invoke holds the function's one unit of concurrency")
        send(sqs, queue, "x", "y", "z")
        wait_until(lambda: any("throttled" in line for line in server.stderr.lines), "a throttle logged")
        work.gate.touch()
        caller.join(DEADLINE_S)
        wait_drained(sqs, queue)
    assert work.counts() == {"gate": [1], "x": [1], "y": [1], "z": [1]}


def _record(body: str) -> dict[str, Any]:
    return {"messageId": "held", "body": body, "attributes": {"ApproximateReceiveCount": "1"}}


# --- scaling ---------------------------------------------------------------------------------------


def test_pollers_scale_up_to_maximum_concurrency_and_down_when_empty(
    moto: MotoServer, sqs: Any, work: Workdir
) -> None:
    queue = new_queue(sqs)
    sqs.send_message_batch(
        QueueUrl=queue.url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)]
    )
    for start in range(10, 40, 10):
        sqs.send_message_batch(
            QueueUrl=queue.url,
            Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, start + 10)],
        )
    mapping = {"queue": queue.arn, "batch_size": 1, "maximum_concurrency": 3}
    with serve(work, moto, mapping, slow=0.02) as server:
        wait_drained(sqs, queue)
        wait_until(
            lambda: any("(the queue is empty)" in line for line in server.stderr.lines), "a poller retired"
        )
        steps = [line.split("pollers ", 1)[1] for line in server.stderr.lines if ": pollers " in line]
    assert "1 -> 2 (full batches keep coming)" in steps
    assert "2 -> 3 (full batches keep coming)" in steps
    assert not any(step.startswith("3 -> 4") for step in steps)
    assert len(work.counts()) == 40


# --- nothing is lost -------------------------------------------------------------------------------


def test_a_batch_in_flight_when_the_server_is_killed_comes_back(
    moto: MotoServer, sqs: Any, work: Workdir
) -> None:
    queue = new_queue(sqs, visibility_s=2)
    (message_id,) = send(sqs, queue, "gate")
    with serve(work, moto, {"queue": queue.arn}, timeout=30, check_shutdown=False) as server:
        wait_until(work.started.exists, "the function started on the batch")
        server.process.kill()  # SIGKILL, mid-batch
        server.process.wait(DEADLINE_S)
    work.gate.touch()  # let a runtime that outlived its server end
    message = wait_until(
        lambda: sqs.receive_message(QueueUrl=queue.url, WaitTimeSeconds=1, AttributeNames=["All"]).get(
            "Messages"
        ),
        "the killed batch visible again",
    )[0]
    assert message["MessageId"] == message_id
    assert message["Attributes"]["ApproximateReceiveCount"] == "2"
    sqs.delete_message(QueueUrl=queue.url, ReceiptHandle=message["ReceiptHandle"])


def test_stopping_does_not_wait_for_a_long_poll(moto: MotoServer, sqs: Any, work: Workdir) -> None:
    """With the service's 20 s long poll in flight on an empty queue, SIGTERM ends the server within the
    harness's exit deadline (10 s): the poll is not waited for."""
    queue = new_queue(sqs)
    with serve(work, moto, {"queue": queue.arn}, long_poll_s=None) as server:
        wait_until(lambda: any("polling http" in line for line in server.stderr.lines), "the poller polling")
    # supervised(): a clean exit, within EXIT_TIMEOUT_S, with no process left


# --- the API ---------------------------------------------------------------------------------------


def test_api_mappings_with_only_the_basic_parameters_poll_through_aws_endpoint_url_sqs(
    moto: MotoServer, sqs: Any, work: Workdir
) -> None:
    from botocore.exceptions import ClientError

    queue = new_queue(sqs, visibility_s=2)
    config = work.config(None)
    args = ["--config", str(config), "--state-dir", str(work.root / "state")]
    with running_server(args, work.root, server_env(moto)) as server:
        client = lambda_client(server.endpoint)
        created = client.create_event_source_mapping(
            EventSourceArn=queue.arn,
            FunctionName="worker",
            BatchSize=5,
            FunctionResponseTypes=["ReportBatchItemFailures"],
        )
        assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
        assert created["State"] == "Creating"
        key = created["UUID"]
        assert created["FunctionArn"] == f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:worker"
        assert created["EventSourceMappingArn"].endswith(f":event-source-mapping:{key}")
        send(sqs, queue, "a", "item-fail")
        wait_drained(sqs, queue)
        assert work.counts() == {"a": [1], "item-fail": [1, 2]}
        assert client.get_event_source_mapping(UUID=key)["State"] == "Enabled"

        # refused calls change nothing
        before = client.list_event_source_mappings()["EventSourceMappings"]
        refusals = [
            ({"EventSourceArn": queue.arn, "FunctionName": "worker"}, "ResourceConflictException"),
            ({"EventSourceArn": queue.arn, "FunctionName": "nobody"}, "ResourceNotFoundException"),
            (
                {
                    "EventSourceArn": queue.arn.replace(queue.name, "other"),
                    "FunctionName": "worker",
                    "BatchSize": 100,
                },
                "InvalidParameterValueException",
            ),
            (
                {
                    "EventSourceArn": "arn:aws:kinesis:us-east-1:123456789012:stream/s",
                    "FunctionName": "worker",
                },
                "InvalidParameterValueException",
            ),
            (
                {
                    "EventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:f.fifo",
                    "FunctionName": "worker",
                    "MaximumBatchingWindowInSeconds": 5,
                },
                "InvalidParameterValueException",
            ),
        ]
        for request, code in refusals:
            with pytest.raises(ClientError) as refused:
                client.create_event_source_mapping(**request)
            assert refused.value.response["Error"]["Code"] == code, request
        assert client.list_event_source_mappings()["EventSourceMappings"] == before

        # disabled: nothing is taken off the queue
        disabling = client.update_event_source_mapping(UUID=key, Enabled=False)
        assert disabling["State"] == "Disabling"
        assert client.get_event_source_mapping(UUID=key)["State"] == "Disabled"
        send(sqs, queue, "while-disabled")
        updated = client.update_event_source_mapping(UUID=key, Enabled=True, BatchSize=2)
        assert (updated["State"], updated["BatchSize"]) == ("Enabling", 2)
        wait_drained(sqs, queue)
        # delivered once (a disabled poller's last long poll may have received it, and handed it back)
        assert len(work.counts()["while-disabled"]) == 1

        # list: filters and paging
        second = new_queue(sqs)
        other = client.create_event_source_mapping(EventSourceArn=second.arn, FunctionName="worker")["UUID"]
        listed = client.list_event_source_mappings(FunctionName="worker")["EventSourceMappings"]
        assert sorted(m["UUID"] for m in listed) == sorted([key, other])
        by_queue = client.list_event_source_mappings(EventSourceArn=second.arn)["EventSourceMappings"]
        assert [m["UUID"] for m in by_queue] == [other]
        page = client.list_event_source_mappings(MaxItems=1)
        rest = client.list_event_source_mappings(Marker=page["NextMarker"])
        assert sorted(m["UUID"] for m in page["EventSourceMappings"] + rest["EventSourceMappings"]) == sorted(
            [key, other]
        )
        assert "NextMarker" not in rest

    # API-created mappings persist under --state-dir
    with running_server(args, work.root, server_env(moto)) as server:
        client = lambda_client(server.endpoint)
        assert {m["UUID"] for m in client.list_event_source_mappings()["EventSourceMappings"]} == {key, other}
        deleted = client.delete_event_source_mapping(UUID=other)
        assert (deleted["ResponseMetadata"]["HTTPStatusCode"], deleted["State"]) == (202, "Deleting")
        with pytest.raises(ClientError) as gone:
            client.get_event_source_mapping(UUID=other)
        assert gone.value.response["Error"]["Code"] == "ResourceNotFoundException"


# --- the template ----------------------------------------------------------------------------------


def test_a_sam_sqs_event_is_a_mapping(moto: MotoServer, sqs: Any, work: Workdir, tmp_path: Path) -> None:
    queue = new_queue(sqs, visibility_s=2)
    environment = "\n".join(f"          {k}: {json.dumps(v)}" for k, v in work.environment().items())
    template = tmp_path / "template.yaml"
    template.write_text(
        f"""Transform: AWS::Serverless-2016-10-31
Resources:
  Queue:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: {queue.name}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: worker
      CodeUri: {FUNCTION_CODE}
      Handler: handlers.handler
      Runtime: python3.12
      Environment:
        Variables:
{environment}
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Queue.Arn
            BatchSize: 3
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 2
"""
    )
    args = ["--template", str(template), "--state-dir", str(work.root / "state"), "--no-watch"]
    with running_server(args, work.root, server_env(moto)) as server:
        send(sqs, queue, "a", "item-fail")
        wait_drained(sqs, queue)
        client = lambda_client(server.endpoint)
        (mapping,) = client.list_event_source_mappings(FunctionName="worker")["EventSourceMappings"]
    assert work.counts() == {"a": [1], "item-fail": [1, 2]}
    assert mapping["EventSourceArn"] == queue.arn
    assert (mapping["BatchSize"], mapping["ScalingConfig"]) == (3, {"MaximumConcurrency": 2})
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["State"] == "Enabled"


def test_a_mapping_added_by_a_reload_polls(moto: MotoServer, sqs: Any, work: Workdir) -> None:
    """`--watch`: a rapidboot.toml edited to add an event source starts its pollers (and the machinery, not
    loaded at start by a server without mappings)."""
    queue = new_queue(sqs)
    config = work.config(None)
    args = ["--config", str(config), "--state-dir", str(work.root / "state"), "--watch"]
    with running_server(args, work.root, server_env(moto)) as server:
        work.config({"queue": queue.arn})
        wait_until(
            lambda: any("polling http" in line for line in server.stderr.lines), "the new mapping polling"
        )
        send(sqs, queue, "after-reload")
        wait_drained(sqs, queue)
    assert work.counts() == {"after-reload": [1]}
