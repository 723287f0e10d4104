"""A template whose init waits at a gate the test holds (GATE_PORT): it tells the test its pid, then waits."""

import os
import socket

from snapshot_restore_py import register_before_snapshot


@register_before_snapshot
def wait_at_the_gate():
    with socket.create_connection(("127.0.0.1", int(os.environ["GATE_PORT"]))) as gate:
        gate.sendall(str(os.getpid()).encode() + b"\n")
        gate.recv(1)


def handler(event, context):
    return {"token": event.get("token"), "request_id": context.aws_request_id, "pid": os.getpid()}
