"""Shared by every function of the example, through the CommonLayer (merged into /opt/python)."""

import json


def respond(status: int, body: object) -> dict[str, object]:
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}
