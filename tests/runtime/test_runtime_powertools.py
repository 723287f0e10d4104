"""Powertools for AWS Lambda's Logger, unchanged, inside the real bootstrap (and awslambdaric, for parity).

Powertools attaches its own stdout handler to its logger and adds a filter to every root handler (ours
included) so its records are not printed twice; it reads the context's members for its fields.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from fake_runtime_api import FakeEvent
from runtime_harness import run_runtime, write

HAVE_RIC = importlib.util.find_spec("awslambdaric") is not None
HAVE_POWERTOOLS = importlib.util.find_spec("aws_lambda_powertools") is not None
IMPLS = ["rapidboot", pytest.param("awslambdaric", marks=pytest.mark.skipif(not HAVE_RIC, reason="no ric"))]
pytestmark = pytest.mark.skipif(not HAVE_POWERTOOLS, reason="aws-lambda-powertools not installed")

APP = """\
import logging
from aws_lambda_powertools import Logger

logger = Logger(service="x")
logging.getLogger().warning("root %s", "warning")

@logger.inject_lambda_context
def handler(event, context):
    logger.info("hi", extra={"order_id": 7})
    logger.append_keys(tenant="acme")
    logger.warning({"a": 1})
    child = Logger(service="x", child=True)
    child.info("from child")
    return "ok"
"""


def _records(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.split("\n") if line.startswith("{")]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("log_format", ["Text", "JSON"])
def test_powertools_logger(task_root: Path, impl: str, log_format: str) -> None:
    write(task_root, {"app.py": APP})
    events = [FakeEvent({}, request_id="p1"), FakeEvent({}, request_id="p2")]
    run = run_runtime(task_root, events, impl=impl, env={"AWS_LAMBDA_LOG_FORMAT": log_format})
    assert [p.body for p in run.api.posts("/response")] == [b'"ok"', b'"ok"'], run.stdout + run.stderr
    assert "Logging error" not in run.stderr
    records = [r for r in _records(run.stdout) if r.get("service") == "x"]
    # Each message exactly once per invoke: our root handler printed none of them again.
    assert [r["message"] for r in records] == ["hi", {"a": 1}, "from child"] * 2
    assert "\thi\n" not in run.stdout and "from child\n" not in run.stdout.replace('"from child"', "")
    context_fields = {
        "function_name": "f",
        "function_memory_size": "128",
        "function_arn": "arn:aws:lambda:us-east-1:123456789012:function:f",
    }
    for index, record in enumerate(records):
        request_id, cold = ("p1", True) if index < 3 else ("p2", False)
        assert record["level"] == ("WARNING" if record["message"] == {"a": 1} else "INFO")
        assert record["function_request_id"] == request_id
        assert record["cold_start"] is cold
        assert {key: record[key] for key in context_fields} == context_fields
        assert record["timestamp"] and record["location"].startswith("handler:")
    assert records[0]["order_id"] == 7
    assert records[1]["tenant"] == "acme"
    # The root logger is still ours: a plain `logging` record keeps the runtime's format.
    if log_format == "Text":
        assert "[WARNING]\t" in run.stdout and "\t\troot warning\n" in run.stdout
    else:
        (root,) = [r for r in _records(run.stdout) if r.get("logger") == "root"]
        assert (root["level"], root["message"], root["requestId"]) == ("WARNING", "root warning", "")
