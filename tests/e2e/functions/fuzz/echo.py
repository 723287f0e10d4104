"""The function of the Invoke API fuzz suite (tests/e2e/test_e2e_fuzz.py): it answers with its event.

With `gate` (a TCP port on 127.0.0.1) in an object event, it first connects there, sends its request id (so
the test knows the id of an invoke in flight) and waits until the test closes that connection.
"""

import socket


def handler(event, context):
    if isinstance(event, dict) and "gate" in event:
        with socket.create_connection(("127.0.0.1", int(event["gate"]))) as gate:
            gate.sendall(context.aws_request_id.encode() + b"\n")
            gate.recv(1)  # returns once the test closes its end
    return event
