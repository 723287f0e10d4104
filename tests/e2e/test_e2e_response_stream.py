"""InvokeWithResponseStream end to end: boto3's `invoke_with_response_stream` reading the event stream our
server writes while our bootstrap streams a generator handler's chunks."""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_harness import RapidServer, lambda_client, request_id_of, running_server, write_tables

from rapidboot.rapid_server.invoke.eventstream import Decoder

pytestmark = pytest.mark.e2e

HANDLERS = """\
import os
import time


def chunks(event, context):
    for index in range(event["count"]):
        yield f"chunk {index}\\n".encode()


def handshake(event, context):
    # Waits until the caller has seen the first chunk (it creates the flag file then): only a server that
    # forwards chunks as they arrive lets this function see the flag.
    yield b"first\\n"
    deadline = time.monotonic() + 8
    while not os.path.exists(event["flag"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    yield f"flag seen: {os.path.exists(event['flag'])}\\n".encode()


def breaks(event, context):
    yield b"first part\\n"
    raise ValueError("the stream broke")


def raises(event, context):
    raise KeyError("before any chunk")


def buffered(event, context):
    print("buffered says hi")
    return {"whole": True}


def big(event, context):
    block = bytes(range(256)) * 4096  # 1 MiB
    for _ in range(event["mib"]):
        yield block


def stalls(event, context):
    yield b"started\\n"
    time.sleep(30)
    yield b"never\\n"
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    root = tmp_path_factory.mktemp("response-stream")
    (root / "code").mkdir()
    (root / "code" / "app.py").write_text(HANDLERS)
    names = ["chunks", "handshake", "breaks", "raises", "buffered", "big"]
    tables: dict[str, dict[str, Any]] = {
        name: {"code": "code", "handler": f"app.{name}", "timeout": 30} for name in names
    }
    tables["stalls"] = {"code": "code", "handler": "app.stalls", "timeout": 1}
    config = write_tables(root / "rapidboot.toml", tables)
    with running_server(["--config", str(config), "--state-dir", str(root / "state")], root) as running:
        yield running


def read_stream(response: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
    """The payload chunks joined, and the InvokeComplete event."""
    payload = b""
    complete: dict[str, Any] | None = None
    for event in response["EventStream"]:
        if "PayloadChunk" in event:
            assert complete is None, "a PayloadChunk after InvokeComplete"
            payload += event["PayloadChunk"]["Payload"]
        elif "InvokeComplete" in event:
            complete = event["InvokeComplete"]
    assert complete is not None, "the stream ended without InvokeComplete"
    return payload, complete


def test_boto3_reads_the_chunks_and_the_completion(server: RapidServer) -> None:
    client = lambda_client(server.endpoint)
    response = client.invoke_with_response_stream(FunctionName="chunks", Payload=b'{"count": 3}')
    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseStreamContentType"] == "application/vnd.amazon.eventstream"
    payload, complete = read_stream(response)
    assert payload == b"chunk 0\nchunk 1\nchunk 2\n"
    assert "ErrorCode" not in complete
    assert "LogResult" not in complete


def test_the_first_chunk_reaches_the_caller_before_the_function_finishes(
    server: RapidServer, tmp_path: Path
) -> None:
    flag = tmp_path / "seen-first-chunk"
    client = lambda_client(server.endpoint)
    response = client.invoke_with_response_stream(
        FunctionName="handshake", Payload=json.dumps({"flag": str(flag)}).encode()
    )
    events = iter(response["EventStream"])
    first = next(events)
    assert first["PayloadChunk"]["Payload"] == b"first\n"
    flag.touch()  # only now may the function go on
    rest = b"".join(event["PayloadChunk"]["Payload"] for event in events if "PayloadChunk" in event)
    assert rest == b"flag seen: True\n"


def test_a_mid_stream_error_ends_with_its_error_code(server: RapidServer) -> None:
    client = lambda_client(server.endpoint)
    payload, complete = read_stream(client.invoke_with_response_stream(FunctionName="breaks", Payload=b"{}"))
    assert payload == b"first part\n"
    assert complete["ErrorCode"] == "ValueError"
    assert complete["ErrorDetails"] == "the stream broke"


def test_an_error_before_any_chunk_is_still_http_200(server: RapidServer) -> None:
    client = lambda_client(server.endpoint)
    response = client.invoke_with_response_stream(FunctionName="raises", Payload=b"{}")
    assert response["StatusCode"] == 200
    payload, complete = read_stream(response)
    assert payload == b""
    assert complete["ErrorCode"] == "KeyError"
    assert complete["ErrorDetails"] == "'before any chunk'"


def test_a_buffered_function_arrives_as_one_chunk_with_its_tail(server: RapidServer) -> None:
    client = lambda_client(server.endpoint)
    response = client.invoke_with_response_stream(FunctionName="buffered", Payload=b"{}", LogType="Tail")
    payload, complete = read_stream(response)
    assert json.loads(payload) == {"whole": True}
    log = base64.b64decode(complete["LogResult"]).decode()
    request_id = response["ResponseMetadata"]["RequestId"]
    assert f"START RequestId: {request_id} " in log
    assert "buffered says hi\n" in log
    assert f"REPORT RequestId: {request_id}\t" in log


def test_a_timeout_mid_stream_is_reported_after_the_chunks_sent(server: RapidServer) -> None:
    client = lambda_client(server.endpoint)
    payload, complete = read_stream(client.invoke_with_response_stream(FunctionName="stalls", Payload=b"{}"))
    assert payload == b"started\n"
    assert complete["ErrorCode"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in complete["ErrorDetails"]


def test_a_large_stream_arrives_intact_through_a_slow_reader(server: RapidServer) -> None:
    """64 MiB read in small pieces: flow control keeps it out of the server's memory, nothing is lost."""
    mib = 64
    url = f"{server.endpoint}/2021-11-15/functions/big/response-streaming-invocations"
    decoder = Decoder()
    received = 0
    checksum = 0
    completes = []
    with (
        httpx.Client(timeout=60) as client,
        client.stream("POST", url, content=json.dumps({"mib": mib}).encode()) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
        for piece in response.iter_raw(16384):
            for message in decoder.feed(piece):
                if message.event_type == "PayloadChunk":
                    received += len(message.payload)
                    checksum = zlib.crc32(message.payload, checksum)
                else:
                    completes.append(json.loads(message.payload))
    assert decoder.pending == 0
    assert received == mib * 1024 * 1024
    assert checksum == zlib.crc32(bytes(range(256)) * 4096 * mib)
    assert completes == [{}]


def test_dry_run_and_bad_headers_on_the_stream_route(server: RapidServer) -> None:
    url = f"{server.endpoint}/2021-11-15/functions/chunks/response-streaming-invocations"
    dry = httpx.post(url, content=b"{}", headers={"X-Amz-Invocation-Type": "DryRun"})
    assert dry.status_code == 204
    event = httpx.post(url, content=b"{}", headers={"X-Amz-Invocation-Type": "Event"})
    assert event.status_code == 400
    assert event.headers["x-amzn-ErrorType"] == "InvalidParameterValueException"
    assert "RequestResponse, DryRun" in event.json()["message"]
    missing = httpx.post(f"{server.endpoint}/2021-11-15/functions/nope/response-streaming-invocations")
    assert missing.status_code == 404
    assert request_id_of(missing)


def test_a_plain_invoke_of_a_streaming_function_still_gets_the_whole_body(server: RapidServer) -> None:
    response = server.invoke("chunks", {"count": 2})
    assert response.content == b"chunk 0\nchunk 1\n"
