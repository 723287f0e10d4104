"""`rapidboot events generate KIND`: every kind parses with Powertools' model of that event source, and the
user's flags land where the service puts those values."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser import models

from rapidboot.rapid_server.cli import main
from rapidboot.rapid_server.event_sources.samples import KINDS

MODELS: dict[str, Any] = {
    "s3-put": models.S3Model,
    "sns": models.SnsModel,
    "sqs": models.SqsModel,
    "apigw-v1": models.APIGatewayProxyEventModel,
    "apigw-v2": models.APIGatewayProxyEventV2Model,
    "function-url": models.LambdaFunctionUrlModel,
    "scheduled": models.EventBridgeModel,
    "dynamodb": models.DynamoDBStreamModel,
    "kinesis": models.KinesisDataStreamModel,
}


def generate(capsysbinary: pytest.CaptureFixture[bytes], *argv: str) -> dict[str, Any]:
    assert main(["events", "generate", *argv]) == 0
    event: dict[str, Any] = json.loads(capsysbinary.readouterr().out)
    return event


def test_every_kind_has_a_model() -> None:
    assert set(KINDS) == set(MODELS)


@pytest.mark.parametrize("kind", KINDS)
def test_the_defaults_parse(kind: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    MODELS[kind].model_validate(generate(capsysbinary, kind))


def test_s3_put(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    event = generate(capsysbinary, "s3-put", "--bucket", "photos", "--key", "my cat.jpg", "--body", "meow")
    record = models.S3Model.model_validate(event).Records[0]
    assert record.s3.bucket.name == "photos"
    assert record.s3.bucket.arn == "arn:aws:s3:::photos"
    assert record.s3.object.key == "my+cat.jpg"  # URL-encoded, as S3 sends keys
    assert record.s3.object.size == 4
    assert record.s3.object.eTag == hashlib.md5(b"meow").hexdigest()
    assert record.eventName == "ObjectCreated:Put"


def test_sns(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    event = generate(capsysbinary, "sns", "--topic", "alerts", "--message", "disk full", "--subject", "ops")
    sns = models.SnsModel.model_validate(event).Records[0].Sns
    assert (sns.Message, sns.Subject) == ("disk full", "ops")
    assert sns.TopicArn == "arn:aws:sns:us-east-1:123456789012:alerts"


def test_sqs(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    event = generate(
        capsysbinary, "sqs", "--queue", "orders", "--body", '{"order": 1}', "--region", "eu-west-1"
    )
    record = models.SqsModel.model_validate(event).Records[0]
    assert record.body == '{"order": 1}'
    assert record.md5OfBody == hashlib.md5(b'{"order": 1}').hexdigest()
    assert record.eventSourceARN == "arn:aws:sqs:eu-west-1:123456789012:orders"
    assert record.awsRegion == "eu-west-1"


@pytest.mark.parametrize("kind", ["apigw-v1", "apigw-v2", "function-url"])
def test_http_requests(kind: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    event = generate(capsysbinary, kind, "--method", "post", "--path", "/orders/7", "--body", "hi")
    parsed = MODELS[kind].model_validate(event)
    assert parsed.body == "hi"
    if kind == "apigw-v1":
        assert (parsed.httpMethod, parsed.path) == ("POST", "/orders/7")
    else:
        assert (parsed.requestContext.http.method, parsed.rawPath) == ("POST", "/orders/7")
    if kind == "apigw-v2":
        assert parsed.routeKey == "POST /orders/7"


def test_scheduled(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    event = generate(capsysbinary, "scheduled", "--rule", "nightly", "--time", "2027-01-31T03:00:00Z")
    parsed = models.EventBridgeModel.model_validate(event)
    assert parsed.detail_type == "Scheduled Event" and parsed.source == "aws.events"
    assert parsed.resources == ["arn:aws:events:us-east-1:123456789012:rule/nightly"]
    assert event["time"] == "2027-01-31T03:00:00Z"


@pytest.mark.parametrize("name", ["INSERT", "MODIFY", "REMOVE"])
def test_dynamodb(name: str, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    event = generate(capsysbinary, "dynamodb", "--table", "users", "--key", "u1", "--event-name", name)
    record = models.DynamoDBStreamModel.model_validate(event).Records[0]
    assert record.eventName == name
    assert record.dynamodb is not None and record.dynamodb.Keys == {"id": "u1"}  # Powertools deserialises
    assert (record.dynamodb.NewImage is None) == (name == "REMOVE")
    assert (record.dynamodb.OldImage is None) == (name == "INSERT")
    assert record.eventSourceARN.startswith("arn:aws:dynamodb:us-east-1:123456789012:table/users/stream/")


def test_kinesis(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    event = generate(
        capsysbinary, "kinesis", "--stream", "clicks", "--data", "click!", "--partition-key", "p7"
    )
    record = models.KinesisDataStreamModel.model_validate(event).Records[0]
    assert record.kinesis.data == b"click!"  # Powertools decodes the base64
    assert event["Records"][0]["kinesis"]["data"] == base64.b64encode(b"click!").decode()
    assert record.kinesis.partitionKey == "p7"
    assert record.eventSourceARN == "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"


def test_a_bad_time_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["events", "generate", "scheduled", "--time", "tomorrow"])
    assert "'tomorrow' is not an ISO 8601 time" in capsys.readouterr().err
