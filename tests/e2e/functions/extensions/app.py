"""Handlers for the extension tests (tests/e2e/test_e2e_extensions.py)."""

import os
import time


def plain(event, context):
    print("hello from the handler")
    if event.get("exit") is not None:  # a crash of the runtime
        os._exit(event["exit"])
    for i in range(event.get("lines", 0)):
        print(f"line {i}")
    gate = event.get("wait_for")
    if gate:
        while not os.path.exists(gate):  # held by the test, which creates the file to let it finish
            time.sleep(0.01)
    return {"ok": True}


def powertools(event, context):
    from aws_lambda_powertools import Logger, Metrics
    from aws_lambda_powertools.metrics import MetricUnit

    logger = Logger(service="shop")
    metrics = Metrics(namespace="Shop", service="shop")
    logger.info("order placed", extra={"order_id": 7})
    metrics.add_metric(name="Orders", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    print("a plain line")
    return {"ok": True}
