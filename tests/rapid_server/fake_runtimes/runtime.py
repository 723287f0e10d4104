"""A fake Lambda runtime for the Runtime API tests: stdlib only, one scenario per run (argv[1]).

It tells the test what it saw as JSON lines on a TCP connection to 127.0.0.1:$FAKE_CONTROL_PORT, so the test
waits on a socket rather than polling files or sleeping.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
BASE = "/2018-06-01/runtime"
HOST, PORT = API.rsplit(":", 1)
WAIT_S = 10.0

_control = socket.create_connection(("127.0.0.1", int(os.environ["FAKE_CONTROL_PORT"])))
_conn = http.client.HTTPConnection(API, timeout=30)


def report(**fields: object) -> None:
    _control.sendall(json.dumps(fields).encode() + b"\n")


def wait_for_test() -> None:
    """Block until the test says go (one line on the control connection)."""
    received = b""
    while not received.endswith(b"\n"):
        chunk = _control.recv(1)
        if not chunk:
            raise ConnectionError("the test closed the control connection")
        received += chunk


def call(method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> dict:
    _conn.request(method, BASE + path, body=body, headers=headers or {})
    response = _conn.getresponse()
    data = response.read()
    return {
        "status": response.status,
        "headers": {k.lower(): v for k, v in response.getheaders()},
        "body": data.decode("utf-8", "replace"),
    }


def next_event() -> tuple[str, dict]:
    result = call("GET", "/invocation/next")
    assert result["status"] == 200, result
    return result["headers"]["lambda-runtime-aws-request-id"], result


def post_response(request_id: str, body: bytes, content_type: str | None = "application/json") -> dict:
    headers = {"Content-Type": content_type} if content_type else {}
    return call("POST", f"/invocation/{request_id}/response", body, headers)


# Raw connections, for the scenarios about connections themselves ---------------------------------------


class Raw:
    def __init__(self) -> None:
        self.sock = socket.create_connection((HOST, int(PORT)))
        self.sock.settimeout(WAIT_S)
        self.buffer = b""

    def send(self, method: str, path: str, body: bytes = b"") -> None:
        head = f"{method} {path} HTTP/1.1\r\nHost: {API}\r\nContent-Length: {len(body)}\r\n\r\n"
        self.sock.sendall(head.encode() + body)

    def receive(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._read()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._read()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), headers, body

    def round_trip(self, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        self.send(method, path, body)
        return self.receive()

    def _read(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buffer += data


def raw_connections(count: int) -> list[Raw]:
    """Connections the server has already accepted and served once, so their order is settled."""
    connections = [Raw() for _ in range(count)]
    for connection in connections:
        assert connection.round_trip("GET", "/2018-06-01/ping")[0] == 404
    return connections


# Scenarios ---------------------------------------------------------------------------------------------


def echo() -> None:
    """Answer every event with itself; say what /next looked like."""
    content_type = os.environ.get("FAKE_CONTENT_TYPE", "application/x-echo")
    print("echo runtime starting", flush=True)
    while True:
        request_id, event = next_event()
        report(step="next", **event)
        print(f"handling {request_id}", flush=True)
        result = post_response(request_id, event["body"].encode(), content_type or None)
        report(step="response", **result)


def error() -> None:
    """Fail every event through /error, with the type header only when FAKE_ERROR_TYPE is set."""
    while True:
        request_id, _ = next_event()
        headers = {"Content-Type": "application/json"}
        if "FAKE_ERROR_TYPE" in os.environ:
            headers["Lambda-Runtime-Function-Error-Type"] = os.environ["FAKE_ERROR_TYPE"]
        body = os.environ["FAKE_ERROR_BODY"].encode()
        report(step="error", **call("POST", f"/invocation/{request_id}/error", body, headers))


def misuse() -> None:
    """Every way of calling the Runtime API wrongly, each reported in order, around one good response."""
    report(step="response-before-init", **post_response("no-such-id", b"{}"))
    request_id, _ = next_event()
    report(step="response-wrong-id", **post_response("not-" + request_id, b"{}"))
    report(step="next-while-invoking", **call("GET", "/invocation/next"))
    report(step="init-error-after-init", **call("POST", "/init/error", b"{}"))
    report(step="unknown-path", **call("GET", "/nope"))
    report(step="post-next", **call("POST", "/invocation/next", b""))
    report(step="get-response", **call("GET", f"/invocation/{request_id}/response"))
    report(step="response", **post_response(request_id, b'"ok"'))
    wait_for_test()  # the invoke has returned: this id is answered and no longer current
    report(step="response-again", **post_response(request_id, b'"again"'))
    report(step="error-after-response", **call("POST", f"/invocation/{request_id}/error", b"{}"))
    next_event()


def double_response() -> None:
    """Answer one event twice, then post an error for it, all pipelined in one write: the second and third
    requests reach the server before the invoke in flight has been wound up."""
    (connection,) = raw_connections(1)
    _, headers, _ = connection.round_trip("GET", f"{BASE}/invocation/next")
    path = f"{BASE}/invocation/{headers['lambda-runtime-aws-request-id']}"
    requests = [("response", b'"first"'), ("response", b'"second"'), ("error", b"{}")]
    wire = b""
    for action, body in requests:
        wire += (
            f"POST {path}/{action} HTTP/1.1\r\nHost: {API}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        )
        wire += body
    connection.sock.sendall(wire)
    answers = [connection.receive() for _ in requests]
    report(step="answers", statuses=[a[0] for a in answers], bodies=[a[2].decode() for a in answers])
    time.sleep(60)


def big_response() -> None:
    """Answer with FAKE_SIZE bytes, then echo normally."""
    size = int(os.environ["FAKE_SIZE"])
    request_id, _ = next_event()
    result = post_response(request_id, b"x" * size, "application/octet-stream")
    report(step="big", **result)
    echo()


def init_error() -> None:
    """Report an init error, then exit 1 as awslambdaric does, after FAKE_CLEANUP_S of cleaning up.

    SIGTERM is ignored unless FAKE_REPORT_SIGTERM is set, in which case it is reported and ends the process.
    """
    if "FAKE_REPORT_SIGTERM" in os.environ:

        def on_sigterm(signum: int, frame: object) -> None:
            report(step="sigterm")
            os._exit(128 + signum)

        signal.signal(signal.SIGTERM, on_sigterm)
    else:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    headers = {}
    if "FAKE_ERROR_TYPE" in os.environ:
        headers["Lambda-Runtime-Function-Error-Type"] = os.environ["FAKE_ERROR_TYPE"]
    print("init failing", flush=True)
    report(step="init-error", **call("POST", "/init/error", os.environ["FAKE_ERROR_BODY"].encode(), headers))
    time.sleep(float(os.environ.get("FAKE_CLEANUP_S", "0")))  # simulated work: flushing logs, say
    report(step="exiting")
    sys.exit(1)


def init_crash() -> None:
    print("crashing during init", flush=True)
    os._exit(int(os.environ.get("FAKE_EXIT_CODE", "1")))


def init_hang() -> None:
    report(step="hanging")
    time.sleep(60)


def crash() -> None:
    """Die in the middle of the first invoke: exit FAKE_EXIT_CODE, or SIGKILL itself when it is 'kill'."""
    request_id, _ = next_event()
    report(step="crashing", request_id=request_id)
    if os.environ["FAKE_EXIT_CODE"] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    os._exit(int(os.environ["FAKE_EXIT_CODE"]))


def hang() -> None:
    """Take the first event and never answer it; a child in the same process group hangs too."""
    child = subprocess.Popen([sys.executable, "-S", "-c", "import time; time.sleep(60)"])
    request_id, _ = next_event()
    report(step="hanging", request_id=request_id, child=child.pid)
    time.sleep(60)


def exit_after_response() -> None:
    request_id, event = next_event()
    result = post_response(request_id, event["body"].encode())
    report(step="response", **result)
    _control.close()
    os._exit(2)


def reconnect() -> None:
    """Park /next on one connection, drop it, park again on another: the event must come on the second."""
    first, second, control = raw_connections(3)
    first.send("GET", f"{BASE}/invocation/next")
    first.sock.close()
    second.send("GET", f"{BASE}/invocation/next")
    assert control.round_trip("GET", "/2018-06-01/ping")[0] == 404
    report(step="ready")
    status, headers, body = second.receive()
    request_id = headers["lambda-runtime-aws-request-id"]
    answer = control.round_trip("POST", f"{BASE}/invocation/{request_id}/response", b'{"via":"second"}')
    report(step="answered", next_status=status, event=body.decode(), status=answer[0])
    time.sleep(60)


def two_pollers() -> None:
    """Two /next parked at once (two workers); each event answered once, the other left parked."""
    first, second, control = raw_connections(3)
    first.send("GET", f"{BASE}/invocation/next")
    second.send("GET", f"{BASE}/invocation/next")
    assert control.round_trip("GET", "/2018-06-01/ping")[0] == 404
    report(step="ready")
    waiting = {first.sock: first, second.sock: second}
    for index in range(2):
        readable, _, _ = select.select(list(waiting), [], [], WAIT_S)
        assert readable, "no event arrived"
        connection = waiting.pop(readable[0])
        status, headers, _ = connection.receive()
        request_id = headers["lambda-runtime-aws-request-id"]
        answer = control.round_trip(
            "POST", f"{BASE}/invocation/{request_id}/response", b'"answer %d"' % index
        )
        report(step="answered", index=index, next_status=status, status=answer[0])
    time.sleep(60)


SCENARIOS = {f.__name__.replace("_", "-"): f for f in (
    echo, error, misuse, double_response, big_response, init_error, init_crash, init_hang, crash, hang,
    exit_after_response, reconnect, two_pollers,
)}  # fmt: skip

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]]()
