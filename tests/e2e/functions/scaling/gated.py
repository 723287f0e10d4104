"""chaos.handler held at a gate the test opens (tests/e2e/functions/scaling/chaos.py does the work).

With `gate` (a TCP port on 127.0.0.1) in the event, the handler does its `action` first, then connects to
the gate, which tells the test it is inside, and waits until the test closes that connection. An invoke the
test never lets go of is held until the platform ends it (the memory limit, the function's timeout).
"""

import socket

import chaos


def handler(event, context):
    answer = chaos.handler(event, context)
    gate = event.get("gate")
    if gate is not None:
        with socket.create_connection(("127.0.0.1", int(gate))) as connection:
            connection.recv(1)  # returns once the test closes its end
    return answer
