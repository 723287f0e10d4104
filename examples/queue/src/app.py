"""`handler` takes orders from the `orders` queue. An order it cannot take yet (its `quantity` is not a
number) is reported in `batchItemFailures`: only that message stays on the queue, and comes back after the
queue's visibility timeout; the others of the batch are deleted. The second time, it is taken as one item.
`summary` runs on a schedule (an EventBridge Scheduler event, invoked asynchronously)."""

import json


def handler(event, context):
    failures = []
    for record in event["Records"]:
        order = json.loads(record["body"])
        attempt = int(record["attributes"]["ApproximateReceiveCount"])
        quantity = order.get("quantity")
        if not isinstance(quantity, int) and attempt == 1:
            print(f"order {order['id']}: quantity {quantity!r} is not a number; retried later")
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        quantity = quantity if isinstance(quantity, int) else 1
        print(f"order {order['id']}: {quantity} x {order['item']} (delivery {attempt})")
    return {"batchItemFailures": failures}


def summary(event, context):
    print(f"summary: scheduled by {event.get('resources')} at {event.get('time')}")
