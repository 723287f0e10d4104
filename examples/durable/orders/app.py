"""An order workflow as a Lambda durable function (AWS's Durable Execution SDK): check the order, reserve
the stock (retried if the warehouse is busy), wait a day before charging, wait for a person's approval,
then charge. Every step is checkpointed; waits and the approval cost nothing while they last."""

from __future__ import annotations

from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import CallbackConfig, Duration


@durable_execution
def handler(event: dict[str, Any], context: DurableContext) -> dict[str, Any]:
    order = context.step(lambda _: _checked(event), name="check-order")
    reservation = context.step(lambda _: f"reservation-{order['id']}", name="reserve-stock")
    context.wait(Duration.from_days(1), name="cooling-off")
    approval = context.create_callback(name="approval", config=CallbackConfig(timeout=Duration.from_days(7)))
    context.logger.info("waiting for approval: rapidboot callback succeed %s", approval.callback_id)
    decision = approval.result()
    if decision != "approved":
        return {"order": order["id"], "status": "rejected", "by": decision}
    charge = context.step(lambda _: {"charged": order["total"]}, name="charge")
    return {"order": order["id"], "status": "charged", "reservation": reservation, **charge}


def _checked(event: dict[str, Any]) -> dict[str, Any]:
    if not event.get("items"):
        raise ValueError("an order needs items")
    return {"id": event.get("id", "order-1"), "total": sum(item["price"] for item in event["items"])}
