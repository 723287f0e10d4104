"""A Lambda runtime that plays a script against its own Runtime API: stdlib only, run through a function's
`command` (tests/e2e/test_e2e_fuzz.py).

Runtime API fuzzing must come from inside the environment: only an environment's own processes may use its
Runtime API, so the test cannot post to it itself. The test sends the script in the event instead:

    {"token": ..., "steps": [...], "after": [...], "exit": null | CODE, "next_init": null | {...}}

`steps` run while the invoke is in flight (before this runtime's own answer), `after` once it has posted
its answer and before it asks for the next event. Each step is one request (or a broken one) on a
connection of its own, or on the runtime's keep-alive connection, and what the server answered is recorded.
The record goes to `$FUZZ_REPORTS/<token>.json` (written whole, then renamed) before the runtime polls
again, so the test knows when the script has run to its end. Then the runtime exits with `exit`, if given.

`next_init` is a script for the environment that comes next: written to `$FUZZ_REPORTS/init.json`, it is
taken (renamed) by the next runtime to start, which plays its `steps` before its first `/next` and records
them under the script's `token`.

Every answer this runtime posts starts with the token (`<token>:<step>:...`), so the test can tell whose
bytes reached a caller.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import uuid
from urllib.parse import quote

API = os.environ["AWS_LAMBDA_RUNTIME_API"]
HOST, PORT = API.rsplit(":", 1)
BASE = "/2018-06-01/runtime"
REPORTS = os.environ["FUZZ_REPORTS"]
# A bound that only catches a hang: every request here is answered (or refused) at once by a working server.
SOCKET_TIMEOUT_S = 10.0
OVERSIZE_BYTES = 6 * 1024 * 1024 + 101  # one byte past what a buffered response may hold


class Script:
    """One script's run: the invoke it runs in (None during init) and what it has seen."""

    def __init__(self, main: http.client.HTTPConnection, request_id: str | None, old_ids: list[str]):
        self.main = main
        self.request_id = request_id
        self.old_ids = old_ids
        self.posted_current = False  # a complete post for the current id was sent (answered or not)
        self.accepted = False  # one was answered 202: the invoke is answered
        self.records: list[dict] = []

    def run(self, steps: list[dict]) -> None:
        for index, step in enumerate(steps):
            record = {"do": step["do"], "index": len(self.records)}
            try:
                record.update(STEPS[step["do"]](self, step, index))
            except (OSError, http.client.HTTPException) as exc:
                record["failure"] = f"{type(exc).__name__}: {exc}"
            self.records.append(record)


# --- connections ----------------------------------------------------------------------------------------


def connect() -> socket.socket:
    return socket.create_connection((HOST, int(PORT)), timeout=SOCKET_TIMEOUT_S)


def read_to_end(sock: socket.socket) -> bytes:
    reply = b""
    while chunk := sock.recv(65536):
        reply += chunk
    return reply


def exchange(
    script: Script,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict | None = None,
    conn: str = "fresh",
) -> dict:
    """One request: on the keep-alive connection ("main"), on a new one ("fresh"), or written whole on a
    new one that is closed at once, unread ("fresh-close"). The status and errorType it got, if read."""
    headers = dict(headers or {})
    if conn == "main":
        script.main.request(method, path, body=body, headers=headers)
        response = script.main.getresponse()
        return describe(response.status, response.read())
    connection = http.client.HTTPConnection(HOST, int(PORT), timeout=SOCKET_TIMEOUT_S)
    try:
        if conn == "fresh-close":
            connection.connect()
            head = f"{method} {path} HTTP/1.1\r\nHost: {API}\r\nContent-Length: {len(body)}\r\n"
            head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            connection.sock.sendall(head.encode("latin-1") + b"\r\n" + body)
            return {"status": None}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return describe(response.status, response.read())
    finally:
        connection.close()


def send_chunked(path: str, body: bytes, headers: dict, trailer: bytes | None, read: bool) -> dict:
    """A post whose body is chunked (in two pieces), on a connection of its own; with `trailer`, the error
    trailers a streamed response that failed midway ends with."""
    head = f"POST {path} HTTP/1.1\r\nHost: {API}\r\nTransfer-Encoding: chunked\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    if trailer is not None:
        head += "Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
    data = head.encode("latin-1") + b"\r\n"
    middle = len(body) // 2
    for piece in (body[:middle], body[middle:]):
        if piece:
            data += b"%x\r\n" % len(piece) + piece + b"\r\n"
    data += b"0\r\n"
    if trailer is not None:
        data += b"Lambda-Runtime-Function-Error-Type: Fuzz.Stream\r\n"
        data += b"Lambda-Runtime-Function-Error-Body: " + base64.b64encode(trailer) + b"\r\n"
    data += b"\r\n"
    with connect() as sock:
        sock.sendall(data)
        if not read:
            return {"status": None}
        response = http.client.HTTPResponse(sock)
        response.begin()
        return describe(response.status, response.read())


def describe(status: int, body: bytes) -> dict:
    try:
        error_type = json.loads(body).get("errorType")
    except (ValueError, AttributeError):
        error_type = None
    return {"status": status, "error_type": error_type}


# --- steps ----------------------------------------------------------------------------------------------


def target_id(script: Script, step: dict) -> tuple[str, str]:
    """The id a post names, and which kind it turned out to be (an old id needs an earlier invoke)."""
    target = step["target"]
    if target == "current" and script.request_id is not None:
        return script.request_id, "current"
    if target == "old" and script.old_ids:
        return script.old_ids[step.get("pick", 0) % len(script.old_ids)], "old"
    if target == "mangled" and script.request_id is not None:
        return script.request_id + step.get("suffix", "x"), "mangled"
    if target == "literal":
        return quote(step["literal"], safe=""), "literal"
    if target == "slashed":
        return (script.request_id or str(uuid.uuid4())) + "%2Fextra", "slashed"
    return str(uuid.uuid4()), "random"


def answer_body(script: Script, step: dict, index: int) -> bytes:
    token = CURRENT_TOKEN[0]
    body = f"{token}:{index}:".encode() + base64.b64decode(step.get("body", ""))
    if step.get("oversize"):
        body += b"o" * (OVERSIZE_BYTES - len(body))
    return body


def body_fields(body: bytes) -> dict:
    """How a record names the bytes it posted: whole when small, else by length and digest."""
    fields = {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    if len(body) <= 65536:
        fields["body"] = base64.b64encode(body).decode()
    return fields


def post(script: Script, step: dict, index: int) -> dict:
    request_id, kind = target_id(script, step)
    action = "error" if step.get("kind") == "error" else "response"
    headers = {}
    if step.get("content_type") is not None:
        headers["Content-Type"] = step["content_type"]
    if action == "response" and step.get("mode") is not None:
        headers["Lambda-Runtime-Function-Response-Mode"] = step["mode"]
    if action == "error":
        headers["Lambda-Runtime-Function-Error-Type"] = "Fuzz.Error"
    body = answer_body(script, step, index)
    conn = step.get("conn", "fresh")
    path = f"{BASE}/invocation/{request_id}/{action}"
    trailer = None
    if step.get("chunked"):
        if step.get("trailer"):  # how a streamed response says it failed midway (reference section 1)
            message = f"{CURRENT_TOKEN[0]}:{index}:stream"
            trailer = json.dumps({"errorMessage": message, "errorType": "Fuzz.Stream"}).encode()
        conn = "fresh-close" if conn == "fresh-close" else "fresh"
        record = send_chunked(path, body, headers, trailer, read=conn == "fresh")
    else:
        record = exchange(script, "POST", path, body, headers, conn)
    record.update(
        target=kind, kind=action, conn=conn, oversize=bool(step.get("oversize")), **body_fields(body)
    )
    record.update(
        chunked=bool(step.get("chunked")), trailer=base64.b64encode(trailer).decode() if trailer else None
    )
    record.update(
        content_type=step.get("content_type"), mode=step.get("mode") if action == "response" else None
    )
    if kind == "current" and (action == "error" or step.get("mode") in (None, "streaming")):
        script.posted_current = True
        script.accepted = script.accepted or record["status"] == 202
    return record


def next_on_the_side(script: Script, step: dict, index: int) -> dict:
    """A second /next on a connection of its own. While the invoke is surely unanswered it is refused (403)
    and read; otherwise it may be parked (a /next that waits for work): sent, then given up (closed)."""
    if script.request_id is not None and not script.posted_current:
        return exchange(script, "GET", f"{BASE}/invocation/next") | {"read": True}
    return exchange(script, "GET", f"{BASE}/invocation/next", conn="fresh-close") | {"read": False}


def init_error(script: Script, step: dict, index: int) -> dict:
    body = json.dumps({"errorMessage": "fuzz", "errorType": "Fuzz.Init"}).encode()
    return exchange(script, "POST", f"{BASE}/init/error", body, conn=step.get("conn", "fresh"))


def wrong_method(script: Script, step: dict, index: int) -> dict:
    request_id = script.request_id or str(uuid.uuid4())
    method, path = {
        "next": ("POST", f"{BASE}/invocation/next"),
        "response": ("GET", f"{BASE}/invocation/{request_id}/response"),
        "error": ("PUT", f"{BASE}/invocation/{request_id}/error"),
        "init_error": ("GET", f"{BASE}/init/error"),
    }[step["path"]]
    return exchange(script, method, path, conn=step.get("conn", "fresh"))


def unknown_path(script: Script, step: dict, index: int) -> dict:
    path = f"{BASE}/{quote(step['path'], safe='')}"
    return exchange(script, step.get("method", "GET"), path, conn=step.get("conn", "fresh"))


def garbage(script: Script, step: dict, index: int) -> dict:
    """Bytes that are not a request, then the end of what we send: whatever comes back before the close."""
    with connect() as sock:
        sock.sendall(base64.b64decode(step["data"]))
        sock.shutdown(socket.SHUT_WR)
        reply = read_to_end(sock)
    return {"reply": reply[:200].decode("latin-1")}


def head_then_close(script: Script, step: dict, index: int) -> dict:
    """A response for the current invoke whose head never ends (`junk` has no line feed): never an answer."""
    request_id = script.request_id or str(uuid.uuid4())
    line = f"POST {BASE}/invocation/{request_id}/response HTTP/1.1\r\nHost: {API}\r\n".encode()
    with connect() as sock:
        sock.sendall(line + base64.b64decode(step["junk"]).replace(b"\n", b""))
    return {}


def partial_body(script: Script, step: dict, index: int) -> dict:
    """A response for the current invoke cut off mid-body: the head promises more than is sent. With
    `streaming`, it is a streamed response (its bytes may reach a streaming caller as they arrive)."""
    request_id = script.request_id or str(uuid.uuid4())
    sent = base64.b64decode(step["sent"])
    mode = "Lambda-Runtime-Function-Response-Mode: streaming\r\n" if step.get("streaming") else ""
    head = (
        f"POST {BASE}/invocation/{request_id}/response HTTP/1.1\r\nHost: {API}\r\n{mode}"
        f"Content-Length: {len(sent) + int(step['missing'])}\r\n\r\n"
    )
    sock = connect()
    sock.sendall(head.encode() + sent)
    if step.get("keep_open"):
        KEPT.append(sock)  # closed by a later `close_kept` step: the server has read what was sent by then
    else:
        sock.close()
    return {}


def close_kept(script: Script, step: dict, index: int) -> dict:
    while KEPT:
        KEPT.pop().close()
    return {}


def close_idle(script: Script, step: dict, index: int) -> dict:
    connect().close()
    return {}


def hold(script: Script, step: dict, index: int) -> dict:
    """Wait at the test's gate (a TCP port): say which invoke is held, then wait until the test closes it."""
    with socket.create_connection(("127.0.0.1", int(step["port"]))) as gate:
        gate.sendall(f"{script.request_id}\n".encode())
        gate.recv(1)
    return {}


STEPS = {
    "post": post,
    "next": next_on_the_side,
    "init_error": init_error,
    "wrong_method": wrong_method,
    "unknown_path": unknown_path,
    "garbage": garbage,
    "head_then_close": head_then_close,
    "partial_body": partial_body,
    "close_idle": close_idle,
    "close_kept": close_kept,
    "hold": hold,
}
CURRENT_TOKEN = ["init"]
KEPT: list[socket.socket] = []  # connections a step left open


# --- the loop -------------------------------------------------------------------------------------------


def report(token: str, content: dict) -> None:
    path = os.path.join(REPORTS, f"{token}.json")
    with open(path + ".part", "w") as f:
        json.dump(content, f)
    os.rename(path + ".part", path)


def play_init_script(main: http.client.HTTPConnection) -> None:
    mine = os.path.join(REPORTS, f"init-taken-{os.getpid()}.json")
    try:
        os.rename(os.path.join(REPORTS, "init.json"), mine)
    except FileNotFoundError:
        return
    with open(mine) as f:
        init = json.load(f)
    os.unlink(mine)
    CURRENT_TOKEN[0] = init["token"]
    script = Script(main, None, [])
    script.run(init["steps"])
    report(init["token"], {"pid": os.getpid(), "records": script.records})


def main() -> None:
    main_connection = http.client.HTTPConnection(HOST, int(PORT), timeout=None)  # /next waits for work
    play_init_script(main_connection)
    old_ids: list[str] = []
    while True:
        main_connection.request("GET", f"{BASE}/invocation/next")
        response = main_connection.getresponse()
        payload = response.read()
        if response.status != 200:
            raise SystemExit(f"/next answered {response.status}: {payload!r}")
        request_id = response.getheader("Lambda-Runtime-Aws-Request-Id")
        event = json.loads(payload)
        token = event["token"]
        CURRENT_TOKEN[0] = token
        script = Script(main_connection, request_id, old_ids)
        script.run(event.get("steps", []))
        if not script.accepted:  # the runtime's own answer, unless the script's was taken
            final = {"do": "final", "index": len(script.records), "target": "current", "conn": "main"}
            body = f"{token}:final:".encode() + json.dumps({"request_id": request_id}).encode()
            final.update(
                exchange(script, "POST", f"{BASE}/invocation/{request_id}/response", body, {}, "main")
            )
            final.update(body_fields(body))
            script.records.append(final)
        script.request_id = request_id  # `after` steps: the invoke is answered, its id is now an old one
        script.posted_current = True
        script.run(event.get("after", []))
        if event.get("next_init") is not None:
            with open(os.path.join(REPORTS, "init.json.part"), "w") as f:
                json.dump(event["next_init"], f)
            os.rename(os.path.join(REPORTS, "init.json.part"), os.path.join(REPORTS, "init.json"))
        report(token, {"pid": os.getpid(), "request_id": request_id, "records": script.records})
        old_ids.append(request_id)
        if event.get("exit") is not None:
            os._exit(int(event["exit"]))


if __name__ == "__main__":
    main()
