"""events.handler behind a gate the test opens: with `gate` (a TCP port on 127.0.0.1) in the event, the
handler first connects there, which tells the test it is running, and waits until the test closes that
connection; then it runs as events.handler."""

import socket

import events


def handler(event, context):
    gate = event.get("gate")
    if gate is not None:
        with socket.create_connection(("127.0.0.1", int(gate))) as connection:
            connection.recv(1)  # returns once the test closes its end
    return events.handler(event, context)
