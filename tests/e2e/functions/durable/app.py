"""Durable handlers written with AWS's Durable Execution SDK, unchanged: the SDK's own boto3 client
reaches the server through AWS_ENDPOINT_URL_LAMBDA, which the server sets for durable functions."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, JitterStrategy, StepConfig
from aws_durable_execution_sdk_python.retries import RetryStrategyConfig, create_retry_strategy


@durable_execution
def steps(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """`count` steps, each adding its index: a multi-step execution with no waits."""
    total = 0
    for index in range(int(event.get("count", 3))):
        total = context.step(lambda _, i=index, t=total: t + i, name=f"add-{index}")
    return {"total": total, "endpoint": os.environ.get("AWS_ENDPOINT_URL_LAMBDA", "")}


@durable_execution
def waits(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """A step, a wait, a step; the first step appends to `marker` each time it runs (it must run once).
    With `gate`, the wait is followed by a step that returns only once the gate file exists."""
    marker = Path(event["marker"])
    if "replays" in event:  # each invocation's `context.is_replaying()` on entry
        _append(Path(event["replays"]), str(context.is_replaying()))
    before = context.step(lambda _: _append(marker, "before"), name="before")
    context.wait(Duration.from_seconds(int(event.get("seconds", 1))), name="pause")
    after = context.step(lambda _: _append(marker, "after"), name="after")
    return {"before": before, "after": after}


@durable_execution
def approval(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Waits for a callback that someone completes with SendDurableExecutionCallbackSuccess."""
    callback = context.create_callback(name="approval")
    answer = callback.result()
    return {"approved": answer, "order": event.get("order")}


@durable_execution
def flaky(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """A step that fails until its `fail` first attempts are spent, retried by the SDK's strategy."""
    marker = Path(event["marker"])

    def attempt(_: Any) -> int:
        runs = _append(marker, "attempt")
        if runs <= int(event.get("fail", 2)):
            raise RuntimeError(f"attempt {runs} failed")
        return runs

    strategy = create_retry_strategy(
        RetryStrategyConfig(
            max_attempts=int(event.get("max_attempts", 5)),
            initial_delay=Duration.from_seconds(int(event.get("delay", 1))),
            backoff_rate=1,
            jitter_strategy=JitterStrategy.NONE,
        )
    )
    runs = context.step(attempt, name="flaky", config=StepConfig(retry_strategy=strategy))
    return {"runs": runs}


@durable_execution
def fanout(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """A map of steps, then parallel branches of which one waits: each step appends to `marker` (each
    must run once, whatever restarts the server had)."""
    marker = Path(event["marker"])
    mapped = context.map(
        event["items"],
        lambda child, item, index, _: child.step(lambda _: _append(marker, f"m{index}") and item * 2),
        name="double",
    )

    def waiting(child: DurableContext) -> str:
        child.step(lambda _: _append(marker, "b1"), name="b1")
        child.wait(Duration.from_seconds(int(event.get("seconds", 1))), name="b-wait")
        child.step(lambda _: _append(marker, "b2"), name="b2")
        return "b"

    branches = context.parallel(
        [lambda child: child.step(lambda _: _append(marker, "a") and "a", name="a"), waiting],
        name="branches",
    )
    return {"doubled": mapped.get_results(), "branches": branches.get_results()}


@durable_execution
def doomed(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """A step, a wait, then a step that fails with no retry: the execution FAILS with its error."""
    marker = Path(event["marker"])
    context.step(lambda _: _append(marker, "before"), name="before")
    context.wait(Duration.from_seconds(int(event.get("seconds", 1))), name="pause")

    def fail(_: Any) -> None:
        _append(marker, "doomed")
        raise ValueError("the order cannot be shipped")

    once = create_retry_strategy(RetryStrategyConfig(max_attempts=1))
    context.step(fail, name="doomed", config=StepConfig(retry_strategy=once))
    return {"unreachable": True}


def _append(marker: Path, word: str) -> int:
    """Appends a line; returns how many lines the file now has with that word."""
    with marker.open("a") as file:
        file.write(word + "\n")
    return marker.read_text().split().count(word)


def tokens(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Not decorated: speaks the checkpoint API itself, to see a used token refused as the service
    refuses it (and an unknown one), then ends the execution as the SDK would."""
    import json

    import boto3

    client = boto3.client("lambda")
    arn, first = event["DurableExecutionArn"], event["CheckpointToken"]
    update = {"Id": "one", "Type": "STEP", "Action": "SUCCEED", "Payload": "1", "Name": "one"}
    second = client.checkpoint_durable_execution(
        DurableExecutionArn=arn, CheckpointToken=first, Updates=[update]
    )
    refused = {}
    for label, token in (("reused", first), ("unknown", "bm90LWEtdG9rZW4=")):
        try:
            client.checkpoint_durable_execution(DurableExecutionArn=arn, CheckpointToken=token, Updates=[])
            refused[label] = "accepted"
        except client.exceptions.InvalidParameterValueException as exc:
            refused[label] = exc.response["Error"]["Message"]
    state = client.get_durable_execution_state(
        DurableExecutionArn=arn, CheckpointToken=second["CheckpointToken"]
    )
    ids = [op["Id"] for op in state["Operations"]]
    return {"Status": "SUCCEEDED", "Result": json.dumps({"refused": refused, "ids": ids})}


@durable_execution
def order(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    """Chained invokes (a plain function and a durable one), parallel branches and a map: what the SDK's
    in-memory runner computes for it, the server must too."""
    price = context.invoke("price", {"sku": event["sku"]}, name="price")
    payment = context.invoke("payment", {"amount": price["price"]}, name="payment")
    checks = context.parallel(
        [
            lambda child: child.step(lambda _: "stock", name="stock"),
            lambda child: child.step(lambda _: "fraud", name="fraud"),
        ],
        name="checks",
    )
    labels = context.map(event["items"], lambda child, item, index, _: f"{index}:{item}", name="labels")
    return {
        "sku": event["sku"],
        "charged": payment["charged"],
        "checks": checks.get_results(),
        "labels": labels.get_results(),
    }


def lookup_price(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"price": 25, "sku": event["sku"]}


@durable_execution
def process_payment(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    charged = context.step(lambda _: event["amount"], name="charge")
    return {"charged": charged}
