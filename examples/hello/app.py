"""The quick-start function: greets the caller and shows what stays warm between invokes."""

import logging
import time

logger = logging.getLogger()
logger.setLevel(logging.INFO)

# Runs once per execution environment (the "init" phase): a warm invoke reuses it.
STARTED_AT = time.time()
invocations = 0


def handler(event, context):
    global invocations
    invocations += 1
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    logger.info("greeting %s", name)
    return {
        "message": f"Hello, {name}!",
        "invocation": invocations,
        "warm": invocations > 1,
        "request_id": context.aws_request_id,
        "remaining_ms": context.get_remaining_time_in_millis(),
    }
