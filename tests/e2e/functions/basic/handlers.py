"""Handlers for the end-to-end suite: each exercises one piece of the Lambda contract.

The same module runs under our bootstrap and under awslambdaric, so it uses nothing but the standard library
and the documented context object.
"""

import os
import signal
import sys
import time

# Module state lives exactly as long as one execution environment: the suite reads it to tell a warm invoke
# from a fresh environment (Lambda keeps globals between invokes and loses them on a reset).
invocation_count = 0
retained: list[bytes] = []

print("handlers module initialised", flush=True)


class CustomError(Exception):
    """A user-defined exception: Lambda reports its bare class name as errorType."""


def echo(event, context):
    return event


def shout(event, context):
    # One line of function output, to check the server's `[name request-id]` prefix.
    print(f"handler says {event['word']}", flush=True)
    return {"said": event["word"]}


def fail(event, context):
    raise CustomError(f"something bad: {event.get('n', 42)}")


def state(event, context):
    """Counter for init-once checks; on request it sleeps past the timeout or ends the process mid-invoke."""
    global invocation_count
    if event.get("sleep"):
        time.sleep(float(event["sleep"]))
    if "exit" in event:
        os._exit(int(event["exit"]))
    if event.get("sigkill"):
        os.kill(os.getpid(), signal.SIGKILL)
    invocation_count += 1
    return {"count": invocation_count, "pid": os.getpid()}


def context_fields(event, context):
    return {
        "function_name": context.function_name,
        "function_version": context.function_version,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "memory_limit_type": type(context.memory_limit_in_mb).__name__,
        "invoked_function_arn": context.invoked_function_arn,
        "aws_request_id": context.aws_request_id,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining_time_in_millis": context.get_remaining_time_in_millis(),
    }


def environment(event, context):
    names = event.get("names", [])
    return {
        "cwd": os.getcwd(),
        "environ": {name: os.environ.get(name) for name in names},
        "pid": os.getpid(),
        "executable": sys.executable,
    }


def raw_bytes(event, context):
    # A bytes result is sent back as-is (awslambdaric: content type application/unknown).
    return b"\x00\x01rapidboot\xff\xfe"


def large_response(event, context):
    return {"data": "x" * int(event["size"])}


def allocate(event, context):
    """Keeps `megabytes` MB resident (pages written, not just reserved) so Max Memory Used must grow."""
    megabytes = int(event.get("megabytes", 0))
    if megabytes:
        retained.append(b"m" * (megabytes * 1024 * 1024))
    return {"retained_mb": sum(len(block) for block in retained) // (1024 * 1024), "pid": os.getpid()}
