"""A Lambda runtime that misbehaves on request: stdlib only, run through a function's `command`.

`misbehaving.py [serve|never-next|garbage-then-exit]` picks how it starts; in `serve` mode each event's
`action` picks what it does with that invoke, so one function covers many faults. It prints what it saw
(e.g. the server's answer to a second response) as function output, which the server relays on its stdout
under the request's id.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import sys
import time
import uuid

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HOST, PORT = API.rsplit(":", 1)
BASE = "/2018-06-01/runtime"
GARBAGE = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http at all \x00\xff\r\n\r\n\x7f\x80"


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "serve"
    if mode == "never-next":
        time.sleep(120)  # the server's init timeout must end this
        return
    if mode == "garbage-then-exit":
        reply = send_raw(GARBAGE)
        print(f"garbage reply: {reply!r}", flush=True)
        os._exit(5)
    connection = http.client.HTTPConnection(HOST, int(PORT), timeout=60)
    while True:
        print(f"polling {os.getpid()}", flush=True)
        request_id, event = next_event(connection)
        handle(connection, request_id, event)


def call(connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None):
    connection.request(method, BASE + path, body=body, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, response.read(), response.getheaders()


def next_event(connection: http.client.HTTPConnection) -> tuple[str, dict]:
    status, body, headers = call(connection, "GET", "/invocation/next")
    if status != 200:
        raise SystemExit(f"/next answered {status}: {body!r}")
    request_id = {name.lower(): value for name, value in headers}["lambda-runtime-aws-request-id"]
    return request_id, json.loads(body)


def respond(connection: http.client.HTTPConnection, request_id: str, answer: dict) -> tuple[int, bytes]:
    status, body, _ = call(
        connection, "POST", f"/invocation/{request_id}/response", json.dumps(answer).encode()
    )
    return status, body


def send_raw(data: bytes) -> bytes:
    """Writes `data` on a fresh connection to the Runtime API and returns whatever comes back before it
    closes (bounded)."""
    with socket.create_connection((HOST, int(PORT)), timeout=5) as sock:
        sock.sendall(data)
        reply = b""
        try:
            while chunk := sock.recv(65536):
                reply += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return reply


def handle(connection: http.client.HTTPConnection, request_id: str, event: dict) -> None:
    action = event.get("action", "echo")
    answer = {
        "token": event.get("token"),
        "request_id": request_id,
        "pid": os.getpid(),
        "initialization_type": os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE"),
    }
    if action == "sleep":
        print(f"sleeping {request_id}", flush=True)  # the event is read: it is mid-invoke from here
        time.sleep(float(event["seconds"]))
    elif action == "hold":
        # Blocks until the test writes a line into the FIFO: the test decides when this invoke ends.
        print(f"holding {event.get('token')} pid {os.getpid()}", flush=True)
        with open(event["fifo"]) as fifo:
            answer["released_with"] = fifo.readline().strip()
    elif action == "double":
        first = respond(connection, request_id, answer)
        second = respond(connection, request_id, {**answer, "second": True})
        print(f"first response: {first[0]}; second response: {second[0]} {second[1].decode()}", flush=True)
        return
    elif action == "foreign":
        foreign_id = event.get("foreign_id") or str(uuid.uuid4())
        status, body = respond(connection, foreign_id, {"token": "FOREIGN", "from_pid": os.getpid()})
        answer["foreign"] = {"status": status, "body": json.loads(body)}
    elif action == "garbage":
        answer["garbage_reply"] = send_raw(GARBAGE).decode("latin-1")
    elif action == "partial":
        # A response cut off mid-body: the headers promise 1000 bytes, 100 arrive, then the process ends.
        sock = socket.create_connection((HOST, int(PORT)))
        head = (
            f"POST {BASE}/invocation/{request_id}/response HTTP/1.1\r\nHost: {API}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"token": "PARTIAL"' + b" " * 81)
        os._exit(int(event.get("code", 1)))
    elif action == "exit":
        os._exit(int(event.get("code", 3)))
    elif action == "answer-then-hold":
        # Answers at once, then stays busy, as a handler's leftover work would, until the test writes a
        # line into the FIFO: only then does it ask for its next event.
        respond(connection, request_id, answer)
        print(f"busy after answering {event.get('token')} pid {os.getpid()}", flush=True)
        with open(event["fifo"]) as fifo:
            fifo.readline()
        return
    respond(connection, request_id, answer)


if __name__ == "__main__":
    main()
