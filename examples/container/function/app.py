"""The container examples' function: its greeting comes from a layer (/opt/python/greeting.py)."""

import greeting


def handler(event, context):
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    return {"message": greeting.greet(name), "request_id": context.aws_request_id}
