"""SQS event source mappings without a queue (rapid_server/event_sources/): the event's shape, what an
answer deletes, the service's checks on a mapping, and the mappings a rapidboot.toml or a template
declares. The e2e suite (tests/e2e/test_e2e_sqs.py) runs the same contract against moto's server."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rapidboot.rapid_server.config import ConfigError, load_toml
from rapidboot.rapid_server.definitions.template import load_template
from rapidboot.rapid_server.event_sources import batch
from rapidboot.rapid_server.event_sources.manager import long_poll_from_environment
from rapidboot.rapid_server.event_sources.mapping import (
    API,
    EventSourceMapping,
    MappingError,
    check_source,
    definition_uuid,
)
from rapidboot.rapid_server.event_sources.store import MappingStore, StoreError

ARN = "arn:aws:sqs:eu-west-1:123456789012:orders"
FIFO_ARN = "arn:aws:sqs:eu-west-1:123456789012:orders.fifo"


def message(i: int, body: str = "hello", **extra: Any) -> dict[str, Any]:
    return {
        "MessageId": f"id-{i}",
        "ReceiptHandle": f"handle-{i}",
        "MD5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "Body": body,
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000001",
        },
        **extra,
    }


# --- the event ---------------------------------------------------------------------------------------


def test_the_event_is_the_services_records_shape() -> None:
    from aws_lambda_powertools.utilities.data_classes import SQSEvent
    from aws_lambda_powertools.utilities.parser.models import SqsModel

    attributes = {
        "kind": {"DataType": "String", "StringValue": "order"},
        "blob": {"DataType": "Binary", "BinaryValue": b"\x00\xff"},
    }
    payload = batch.event(
        [message(0), message(1, "two", MessageAttributes=attributes, MD5OfMessageAttributes="abc")],
        ARN,
        "eu-west-1",
    )
    event = orjson.loads(payload)
    parsed = SqsModel.model_validate(event)
    assert [r.messageId for r in parsed.Records] == ["id-0", "id-1"]
    record = list(SQSEvent(event).records)[1]
    assert record.body == "two"
    assert record.event_source_arn == ARN
    assert record.aws_region == "eu-west-1"
    assert record.message_attributes["kind"].string_value == "order"
    assert (
        event["Records"][1]["messageAttributes"]["blob"]["binaryValue"]
        == base64.b64encode(b"\x00\xff").decode()
    )
    assert event["Records"][0]["messageAttributes"] == {}
    assert event["Records"][0]["md5OfMessageAttributes"] is None


# --- what an answer deletes ----------------------------------------------------------------------------

BATCH = [message(0), message(1), message(2)]


def test_a_function_error_deletes_nothing() -> None:
    verdict = batch.verdict(BATCH, True, b'{"errorMessage": "boom"}', report_batch_item_failures=True)
    assert (verdict.delete, verdict.failed) == ((), 3)


def test_success_deletes_the_batch_whatever_the_answer_without_report_batch_item_failures() -> None:
    answer = b'{"batchItemFailures": [{"itemIdentifier": "id-1"}]}'
    assert batch.verdict(BATCH, False, answer, False).delete == ("handle-0", "handle-1", "handle-2")


def test_listed_failures_are_kept() -> None:
    answer = b'{"batchItemFailures": [{"itemIdentifier": "id-1"}]}'
    verdict = batch.verdict(BATCH, False, answer, True)
    assert (verdict.delete, verdict.failed, verdict.problem) == (("handle-0", "handle-2"), 1, None)


@pytest.mark.parametrize(
    "answer", [b"", b"null", b"{}", b'{"batchItemFailures": []}', b'{"batchItemFailures": null}']
)
def test_empty_or_null_means_success(answer: bytes) -> None:
    verdict = batch.verdict(BATCH, False, answer, True)
    assert (len(verdict.delete), verdict.problem) == (3, None)


@pytest.mark.parametrize(
    "answer",
    [
        b"{not json",
        b'"done"',
        b"[]",
        b'{"batchItemFailures": "id-1"}',
        b'{"batchItemFailures": [{"itemIdentifier": ""}]}',
        b'{"batchItemFailures": [{"itemIdentifier": null}]}',
        b'{"batchItemFailures": [{"itemIdentifier": 1}]}',
        b'{"batchItemFailures": [{"id": "id-1"}]}',
        b'{"batchItemFailures": ["id-1"]}',
        b'{"batchItemFailures": [{"itemIdentifier": "id-9"}]}',
    ],
)
def test_a_malformed_answer_fails_the_whole_batch(answer: bytes) -> None:
    verdict = batch.verdict(BATCH, False, answer, True)
    assert (verdict.delete, verdict.failed) == ((), 3)
    assert verdict.problem is not None and "malformed" in verdict.problem


@given(st.binary(max_size=200))
def test_any_answer_either_deletes_a_subset_or_fails_the_batch(answer: bytes) -> None:
    verdict = batch.verdict(BATCH, False, answer, True)
    assert set(verdict.delete) <= {"handle-0", "handle-1", "handle-2"}
    assert len(verdict.delete) + verdict.failed == 3


# --- the service's checks ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        ({"batch_size": 0}, "BatchSize"),
        ({"batch_size": 10_001, "batching_window": 1}, "BatchSize"),
        ({"batch_size": 11}, "MaximumBatchingWindowInSeconds"),
        ({"batching_window": 301}, "MaximumBatchingWindowInSeconds"),
        ({"function_response_types": ["Other"]}, "FunctionResponseTypes"),
        ({"maximum_concurrency": 1}, "ScalingConfig.MaximumConcurrency"),
        ({"maximum_concurrency": 1001}, "ScalingConfig.MaximumConcurrency"),
        ({"enabled": "yes"}, "Enabled"),
        ({"endpoint_url": "localhost:4566"}, "EndpointUrl"),
    ],
)
def test_settings_outside_the_services_limits_are_refused(settings: dict[str, Any], key: str) -> None:
    with pytest.raises(MappingError) as refused:
        check_source(ARN, **settings)
    assert refused.value.key == key


def test_fifo_queues_take_at_most_ten_and_no_window() -> None:
    with pytest.raises(MappingError, match="FIFO"):
        check_source(FIFO_ARN, batch_size=11, batching_window=1)
    with pytest.raises(MappingError, match="FIFO"):
        check_source(FIFO_ARN, batching_window=1)
    assert check_source(FIFO_ARN, batch_size=10).queue.fifo


@pytest.mark.parametrize(
    "arn", ["orders", "arn:aws:kinesis:eu-west-1:123456789012:stream/s", "arn:aws:sqs:eu-west-1:123:orders"]
)
def test_only_sqs_queue_arns_are_mapped(arn: str) -> None:
    with pytest.raises(MappingError, match="EventSourceArn"):
        check_source(arn)


def test_the_services_defaults_and_the_queues_region() -> None:
    source = check_source(ARN)
    assert (source.batch_size, source.batching_window_s, source.enabled) == (10, 0, True)
    assert (source.queue.region, source.queue.account, source.queue.name) == (
        "eu-west-1",
        "123456789012",
        "orders",
    )
    assert check_source(ARN, batch_size=10_000, batching_window=5).batch_size == 10_000


def test_a_definitions_mapping_keeps_its_uuid() -> None:
    assert definition_uuid("f", ARN) == definition_uuid("f", ARN) != definition_uuid("g", ARN)


def test_the_long_poll_override() -> None:
    assert long_poll_from_environment({}) == 20
    assert long_poll_from_environment({"RAPIDBOOT_SQS_LONG_POLL": "1"}) == 1
    with pytest.raises(ValueError, match="RAPIDBOOT_SQS_LONG_POLL"):
        long_poll_from_environment({"RAPIDBOOT_SQS_LONG_POLL": "21"})


# --- the store -------------------------------------------------------------------------------------------


def test_the_store_round_trips_and_refuses_garbage(tmp_path: Path) -> None:
    store = MappingStore(tmp_path)
    mapping = EventSourceMapping(
        "u-1", "f", check_source(ARN, 5, None, ["ReportBatchItemFailures"], 3), 1.5, API
    )
    store.save([mapping])
    assert MappingStore(tmp_path).load() == [mapping]
    (tmp_path / "mappings.json").write_text("[{}]")
    with pytest.raises(StoreError):
        store.load()


# --- rapidboot.toml ---------------------------------------------------------------------------------------


def toml(tmp_path: Path, sources: str) -> Path:
    (tmp_path / "fn").mkdir(exist_ok=True)
    path = tmp_path / "rapidboot.toml"
    path.write_text(f'[functions.worker]\ncode = "fn"\nhandler = "app.handler"\n{sources}')
    return path


def test_toml_event_sources(tmp_path: Path) -> None:
    path = toml(
        tmp_path,
        f'[[functions.worker.event_sources]]\nqueue = "{ARN}"\nbatch_size = 100\n'
        "maximum_batching_window = 2\n"
        'report_batch_item_failures = true\nmaximum_concurrency = 5\nendpoint_url = "http://localhost:4566"\n',
    )
    (source,) = load_toml(path)["worker"].event_sources
    assert (source.batch_size, source.batching_window_s, source.maximum_concurrency) == (100, 2, 5)
    assert source.report_batch_item_failures
    assert source.endpoint_url == "http://localhost:4566"


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (
            f'queue = "{ARN}"\nbatch_size = 11',
            "event_sources[0].maximum_batching_window: must be greater than 0",
        ),
        (f'queue = "{ARN}"\nbatchsize = 11', "event_sources[0]: unknown key(s) batchsize"),
        ("batch_size = 1", "event_sources[0]: queue: required"),
        (
            f'queue = "{ARN}"\nreport_batch_item_failures = "yes"',
            "report_batch_item_failures: must be true or false",
        ),
        (
            f'queue = "{ARN}"\nmaximum_concurrency = 1',
            "event_sources[0].maximum_concurrency: 1 is outside 2-1000",
        ),
    ],
)
def test_toml_mistakes_name_the_key(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_toml(toml(tmp_path, f"[[functions.worker.event_sources]]\n{table}\n"))
    assert f"functions.worker.{message}" in str(refused.value) or message in str(refused.value)


def test_toml_refuses_the_same_queue_twice(tmp_path: Path) -> None:
    table = f'[[functions.worker.event_sources]]\nqueue = "{ARN}"\n'
    with pytest.raises(ConfigError, match=r"event_sources\[1\]\.queue: .* already mapped"):
        load_toml(toml(tmp_path, table * 2))


# --- templates ------------------------------------------------------------------------------------------

TEMPLATE = """Transform: AWS::Serverless-2016-10-31
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: orders
  Worker:
    Type: AWS::Serverless::Function
    Metadata:
      rapidboot:
        EndpointUrl: http://localhost:4566
    Properties:
      CodeUri: src
      Handler: app.handler
      Runtime: python3.12
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt Orders.Arn
            BatchSize: {batch_size}
            MaximumBatchingWindowInSeconds: 1
            FunctionResponseTypes: [ReportBatchItemFailures]
            ScalingConfig:
              MaximumConcurrency: 4
  Stream:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref Worker
      EventSourceArn: arn:aws:kinesis:us-east-1:123456789012:stream/s
      StartingPosition: LATEST
"""


def template(tmp_path: Path, batch_size: int) -> Path:
    (tmp_path / "src").mkdir(exist_ok=True)
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.replace("{batch_size}", str(batch_size)))
    return path


def test_a_sam_sqs_event_becomes_the_functions_event_source(tmp_path: Path) -> None:
    definition = load_template(template(tmp_path, 50), region="us-east-1")
    (source,) = definition.functions["Worker"].event_sources
    assert source.queue.arn == "arn:aws:sqs:us-east-1:123456789012:orders"
    assert (source.batch_size, source.batching_window_s, source.maximum_concurrency) == (50, 1, 4)
    assert source.report_batch_item_failures
    assert source.endpoint_url == "http://localhost:4566"
    assert any("not an SQS queue" in warning for warning in definition.warnings)


def test_a_template_mistake_names_the_event_and_its_line(tmp_path: Path) -> None:
    path = template(tmp_path, 20_000)
    with pytest.raises(ConfigError) as refused:
        load_template(path, region="us-east-1")
    assert str(refused.value).startswith(f"{path}:21: resource Worker, property Events.Work.BatchSize: ")
