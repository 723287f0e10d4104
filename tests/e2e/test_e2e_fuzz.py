"""Property and fuzz tests against a live server (issue 12, section 4).

Two generated streams hit one `rapidboot serve`:

- Invoke API requests: names and ARNs, qualifiers, methods, invocation and log types, client contexts, JSON
  and raw bodies, sent several at once, whole, cut off (the caller closes before the answer) or as bytes that
  are not HTTP at all;
- Runtime API sequences: out-of-order, repeated and cut-off posts, foreign request ids (random, old, another
  environment's invoke in flight), random bytes and closed connections. Only an environment's own processes
  may use its Runtime API, so these are played from inside: the function `fuzz-runtime` runs
  tests/e2e/fake_runtimes/scripted.py, which takes its script from the event and writes down every answer it
  got. A script may also end its runtime, and leave a script for the next one's init.

After every example: a normal invoke of each function still works; no caller got bytes meant for another
request (every payload and every answer a runtime posts carries a token unique to its request); and nothing
is left behind: the server's descendants are its environments' runtimes, one process each, and its open file
descriptors are what those environments account for (`Accounting`, learned when the module starts).

`make test` runs a few dozen examples of each; `make fuzz` sets RAPIDBOOT_FUZZ_EXAMPLES for a longer run.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import http.client
import io
import json
import os
import socket
import string
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from e2e_harness import (
    ACCOUNT_ARN_PREFIX,
    FAKE_RUNTIMES_DIR,
    HTTP_TIMEOUT_S,
    RapidServer,
    descendants,
    is_supervisor,
    open_fd_count,
    running_server,
    wait_until,
    write_tables,
)
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.e2e

ECHO = "fuzz-echo"
RUNTIME = "fuzz-runtime"
# Bounds, not expectations: a healthy server settles in milliseconds.
SETTLE_S = 10.0
REPORT_TIMEOUT_S = 30.0
POLL_S = 0.005

# `make test`: a few dozen examples of each, no shrinking (a failing example against a live server can take
# seconds, and shrinking runs hundreds). `make fuzz` (RAPIDBOOT_FUZZ_EXAMPLES): many more, shrunk.
LONG_RUN = "RAPIDBOOT_FUZZ_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("RAPIDBOOT_FUZZ_EXAMPLES", "40"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # a live server on a loaded 2-core runner: no per-example clock
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,  # examples depend on a live server's state: replaying one elsewhere proves little
    phases=[Phase.explicit, Phase.generate, *([Phase.shrink] if LONG_RUN else [])],
)


# --- HTTP, one connection per request -------------------------------------------------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class _Recorded:
    """What a connection received, as the socket http.client.HTTPResponse reads from."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self._data)


def parse_answer(data: bytes) -> Answer:
    response = http.client.HTTPResponse(_Recorded(data))  # type: ignore[arg-type]
    response.begin()
    body = response.read()
    return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)


def read_to_end(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def request_bytes(method: str, target: str, headers: dict[str, str], body: bytes) -> bytes:
    head = f"{method} {target} HTTP/1.1\r\nHost: fuzz\r\nConnection: close\r\nContent-Length: {len(body)}\r\n"
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return head.encode("latin-1") + b"\r\n" + body


def call(server: RapidServer, data: bytes, close_early: bool = False) -> bytes | None:
    """Sends one request on a connection of its own and reads until the server closes it: the server's end
    of it is gone by then, so it never counts among the server's open fds afterwards."""
    with socket.create_connection((server.host, server.port), timeout=HTTP_TIMEOUT_S) as sock:
        sock.sendall(data)
        if close_early:
            return None
        return read_to_end(sock)


def invoke(server: RapidServer, name: str, payload: Any, via: str = "invoke") -> Answer:
    """Invoke, or InvokeWithResponseStream with `via="stream"`."""
    path = f"/2015-03-31/functions/{name}/invocations"
    if via == "stream":
        path = f"/2021-11-15/functions/{name}/response-streaming-invocations"
    data = call(server, request_bytes("POST", path, {}, json.dumps(payload).encode()))
    assert data is not None
    return parse_answer(data)


# --- what the server holds ------------------------------------------------------------------------


@dataclass
class Accounting:
    """The server's open fds: `fixed` of its own, plus `per_env[f]` for each live environment of function f.
    Environments may legitimately stay warm (more of them after concurrent invokes), so the expected count
    follows the runtimes alive now; anything else the server still holds is a leak."""

    server: RapidServer
    fixed: int = 0
    per_env: dict[str, int] = field(default_factory=dict)

    def runtimes(self) -> dict[str, int]:
        counts = dict.fromkeys(self.per_env or (ECHO, RUNTIME), 0)
        for process in self._tree():
            if process.function_name in counts:
                counts[process.function_name] += 1
        return counts

    def _tree(self) -> list[Any]:
        """The server's processes but its supervisor, which lives as long as the server does."""
        assert self.server.process is not None
        return [p for p in descendants(self.server.process.pid) if not is_supervisor(p)]

    def problems(self) -> list[str]:
        """Why the server is not settled now (empty when it is)."""
        assert self.server.process is not None
        pid = self.server.process.pid
        found = []
        for process in self._tree():
            if process.state in ("Z", "X"):
                found.append(f"zombie {process.pid} ({process.function_name})")
            elif process.ppid != pid or process.function_name not in self.per_env:
                found.append(f"stray process {process.pid} ({process.function_name}): {process.cmdline}")
        envs = self.runtimes()
        expected = self.fixed + sum(self.per_env[name] * count for name, count in envs.items())
        fds = open_fd_count(pid)
        if fds != expected:
            found.append(f"{fds} open fds, expected {expected} for environments {envs}")
        return found

    def wait_gone(self, pid: int) -> None:
        """Until a runtime that ended is reaped by the server (not even a zombie any more)."""
        gone = wait_until(lambda: pid not in {p.pid for p in self._tree()}, SETTLE_S, POLL_S)
        assert gone, f"runtime {pid} is still among the server's processes"

    def assert_settled(self) -> None:
        if wait_until(lambda: not self.problems(), SETTLE_S, POLL_S):
            return
        assert self.server.process is not None
        fd_dir = Path(f"/proc/{self.server.process.pid}/fd")
        listing = []
        for entry in sorted(fd_dir.iterdir(), key=lambda p: int(p.name)):
            with contextlib.suppress(OSError):
                listing.append(f"  {entry.name} -> {os.readlink(entry)}")
        raise AssertionError(
            "the server did not settle:\n  "
            + "\n  ".join(self.problems())
            + "\nits fds:\n"
            + "\n".join(listing)
            + f"\n{self.server.output_tail()}"
        )


class Gate:
    """A TCP port the functions' `gate` and the scripted runtime's `hold` connect to: each says which invoke
    it holds (its request id) and waits until the test closes its connection."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(HTTP_TIMEOUT_S)
        self.port: int = self.listener.getsockname()[1]

    def inside(self) -> tuple[socket.socket, str]:
        connection, _ = self.listener.accept()
        connection.settimeout(HTTP_TIMEOUT_S)
        line = b""
        while not line.endswith(b"\n"):
            chunk = connection.recv(256)
            assert chunk, "a held invoke closed its gate connection before saying its request id"
            line += chunk
        return connection, line.decode().strip()

    def close(self) -> None:
        self.listener.close()


def reports_file(reports: Path, token: str) -> dict[str, Any]:
    path = reports / f"{token}.json"
    # Longer than the runtime's own bound on a request (10 s), so that a request left hanging shows in the
    # report as that step's failure.
    assert wait_until(path.exists, REPORT_TIMEOUT_S, POLL_S), f"the scripted runtime never reported {token}"
    report: dict[str, Any] = json.loads(path.read_text())
    return report


def runtime_invoke(
    server: RapidServer, reports: Path, script: dict[str, Any]
) -> tuple[Answer, dict[str, Any]]:
    answer = invoke(server, RUNTIME, script, script.get("via", "invoke"))
    assert answer.status == 200, (answer, script)
    return answer, reports_file(reports, script["token"])


def new_token() -> str:
    return uuid.uuid4().hex


def assert_healthy(server: RapidServer, reports: Path, accounting: Accounting) -> None:
    """A normal invoke of each function works and answers its own caller; then nothing is left behind."""
    token = new_token()
    answer = invoke(server, ECHO, {"token": token})
    assert (answer.status, json.loads(answer.body)) == (200, {"token": token}), answer
    assert "x-amz-function-error" not in answer.headers, answer
    token = new_token()
    answer, report = runtime_invoke(server, reports, {"token": token})
    assert answer.status == 200, answer
    assert "x-amz-function-error" not in answer.headers, answer
    assert (
        answer.body == f"{token}:final:".encode() + json.dumps({"request_id": report["request_id"]}).encode()
    )
    accounting.assert_settled()


# --- the server -----------------------------------------------------------------------------------


@dataclass
class FuzzServer:
    server: RapidServer
    reports: Path
    accounting: Accounting


@pytest.fixture(scope="module")
def fuzz(code_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzServer]:
    root = tmp_path_factory.mktemp("fuzz")
    reports = root / "reports"
    reports.mkdir()
    code = str(code_root / "functions" / "fuzz")
    tables = {
        ECHO: {"code": code, "handler": "echo.handler", "timeout": 10},
        RUNTIME: {
            "code": code,
            "handler": "unused.handler",
            "timeout": 10,
            "command": [sys.executable, str(FAKE_RUNTIMES_DIR / "scripted.py")],
            "environment": {"FUZZ_REPORTS": str(reports)},
        },
    }
    config = write_tables(root / "rapidboot.toml", tables)
    with running_server(["--config", str(config), "--state-dir", str(root / "state")], root) as server:
        accounting = learn_accounting(server, reports)
        yield FuzzServer(server, reports, accounting)


def learn_accounting(server: RapidServer, reports: Path) -> Accounting:
    """What one environment of each function costs in server fds: counted with one of each warm, then two
    echo environments, then two of each (both made at once by holding the first invoke at a gate). Every
    kind of invoke the examples make is made once first, so a file the server opens once, lazily, is in
    `fixed`."""
    accounting = Accounting(server)
    assert invoke(server, ECHO, {"token": "warm"}).status == 200
    for headers in ({"X-Amz-Invocation-Type": "DryRun"}, {"X-Amz-Log-Type": "Tail"}):
        data = call(
            server, request_bytes("POST", f"/2015-03-31/functions/{ECHO}/invocations", headers, b"{}")
        )
        assert data is not None and parse_answer(data).status in (200, 204)
    queued = call(
        server,
        request_bytes(
            "POST", f"/2015-03-31/functions/{ECHO}/invocations", {"X-Amz-Invocation-Type": "Event"}, b"{}"
        ),
    )
    assert queued is not None
    event_id = parse_answer(queued).headers["x-amzn-requestid"]
    server.wait_for_line(lambda line: line.startswith(f"REPORT RequestId: {event_id}\t"))
    stream = call(
        server,
        request_bytes("POST", f"/2021-11-15/functions/{ECHO}/response-streaming-invocations", {}, b"{}"),
    )
    assert stream is not None and parse_answer(stream).status == 200
    runtime_invoke(server, reports, {"token": new_token()})

    def settled_count(echo: int, runtime: int) -> int:
        assert wait_until(
            lambda: accounting.runtimes() == {ECHO: echo, RUNTIME: runtime}, SETTLE_S, POLL_S
        ), accounting.runtimes()
        assert server.process is not None
        return open_fd_count(server.process.pid)

    one_each = settled_count(1, 1)
    gate = Gate()
    try:
        with ThreadPoolExecutor(2) as pool:
            held = pool.submit(invoke, server, ECHO, {"token": "held", "gate": gate.port})
            connection, _ = gate.inside()
            assert invoke(server, ECHO, {"token": "beside"}).status == 200
            connection.close()
            assert held.result().status == 200
            two_echo = settled_count(2, 1)
            held_script = {"token": new_token(), "steps": [{"do": "hold", "port": gate.port}]}
            held = pool.submit(runtime_invoke, server, reports, held_script)
            connection, _ = gate.inside()
            runtime_invoke(server, reports, {"token": new_token()})
            connection.close()
            assert held.result()[0].status == 200
            two_each = settled_count(2, 2)
    finally:
        gate.close()
    accounting.per_env = {ECHO: two_echo - one_each, RUNTIME: two_each - two_echo}
    accounting.fixed = one_each - accounting.per_env[ECHO] - accounting.per_env[RUNTIME]
    assert all(cost > 0 for cost in accounting.per_env.values()), accounting
    # One runtime environment again, so that a script ending its runtime makes the next invoke start one.
    _, report = runtime_invoke(server, reports, {"token": new_token(), "exit": 0})
    accounting.wait_gone(report["pid"])
    accounting.assert_settled()
    return accounting


# --- Invoke API: generated requests ---------------------------------------------------------------

printable = st.text(alphabet=string.printable.strip() + " ", max_size=40)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@dataclass
class InvokeCase:
    """One generated request and what its parts make of it: `valid` when every part is one the service
    takes, `maybe` when a part's fate is the server's choice (an ARN of another region or account)."""

    route: str  # invoke | stream | list | other
    method: str
    name: str  # as it goes into the path
    resolves: bool
    maybe: bool
    qualifier: str | None
    qualifier_ok: bool
    headers: dict[str, str]
    headers_ok: bool
    invocation_type: str
    payload: Any  # a JSON value carrying the token (None: raw `body` is sent)
    body: bytes
    delivery: str  # whole | close-early | garbage
    token: str = ""

    def data(self) -> bytes:
        if self.delivery == "garbage":
            return self.body
        path = {
            "invoke": f"/2015-03-31/functions/{self.name}/invocations",
            "stream": f"/2021-11-15/functions/{self.name}/response-streaming-invocations",
            "list": "/2015-03-31/functions/",
            "other": f"/{self.name}",
        }[self.route]
        if self.qualifier is not None:
            path += f"?Qualifier={quote(self.qualifier, safe='')}"
        return request_bytes(self.method, path, self.headers, self.sent_body())

    def sent_body(self) -> bytes:
        if self.payload is None:
            return self.body
        return json.dumps(self.payload).encode()


@st.composite
def invoke_cases(draw: st.DrawFn) -> InvokeCase:
    route = draw(st.sampled_from(["invoke"] * 6 + ["stream", "list", "other"]))
    method = draw(st.sampled_from(["POST"] * 8 + ["GET", "PUT", "DELETE", "PATCH"]))
    name_kind = draw(
        st.sampled_from(["name", "arn", "partial-arn", "qualified", "foreign-arn", "unknown", "odd"])
    )
    resolves, maybe = True, False
    if name_kind == "name":
        name = ECHO
    elif name_kind == "arn":
        name = draw(st.sampled_from([ACCOUNT_ARN_PREFIX + ECHO, quote(ACCOUNT_ARN_PREFIX + ECHO, safe="")]))
    elif name_kind == "partial-arn":
        name = f"123456789012:function:{ECHO}"
    elif name_kind == "qualified":
        name = f"{ECHO}:$LATEST"
    elif name_kind == "foreign-arn":
        region = draw(st.sampled_from(["us-east-1", "eu-west-1", "ap-south-2"]))
        account = draw(st.sampled_from(["123456789012", "000000000000", "999999999999"]))
        name, maybe = f"arn:aws:lambda:{region}:{account}:function:{ECHO}", True
    elif name_kind == "unknown":
        name, resolves = "nx-" + quote(draw(printable), safe=""), False
    else:  # bytes a name cannot hold, percent-encoded: slashes, spaces, control characters, UTF-8
        name, resolves = quote("nx" + draw(st.text(max_size=30)), safe=""), False
    qualifier_kind = draw(st.sampled_from([None, None, "$LATEST", "other"]))
    qualifier = (
        {"$LATEST": "$LATEST", "other": draw(printable)}.get(qualifier_kind) if qualifier_kind else None
    )
    qualifier_ok = qualifier is None or qualifier == "$LATEST"  # "" is too short: ValidationException
    headers: dict[str, str] = {}
    headers_ok = True
    invocation_type = draw(
        st.sampled_from([None, "RequestResponse", "RequestResponse", "DryRun", "Event", "bad"])
    )
    if invocation_type == "bad":
        bad = printable.filter(lambda v: v.strip() not in ("RequestResponse", "Event", "DryRun"))
        invocation_type, headers_ok = draw(bad), False
    if invocation_type is not None:
        headers["X-Amz-Invocation-Type"] = invocation_type
    log_type = draw(st.sampled_from([None, "None", "Tail", "bad"]))
    if log_type == "bad":
        log_type, headers_ok = draw(printable.filter(lambda v: v.strip() not in ("None", "Tail"))), False
    if log_type is not None:
        headers["X-Amz-Log-Type"] = log_type
    context = draw(st.sampled_from([None, None, "object", "not-object", "not-base64"]))
    if context == "object":
        headers["X-Amz-Client-Context"] = base64.b64encode(
            json.dumps({"custom": {"k": "v"}}).encode()
        ).decode()
    elif context == "not-object":
        headers["X-Amz-Client-Context"] = base64.b64encode(b"[1]").decode()
    elif context == "not-base64":
        headers["X-Amz-Client-Context"] = "%%%" + draw(printable)
    if context in ("not-object", "not-base64"):
        headers_ok = headers_ok and invocation_type == "Event"  # an Event invoke carries no client context
        maybe = maybe or invocation_type == "Event"
    headers["Content-Type"] = draw(
        st.sampled_from(["application/json", "text/plain", "application/x-amz-json-1.1"])
    )
    body_kind = draw(st.sampled_from(["object", "object", "list", "raw", "empty"]))
    payload: Any = None
    body = b""
    if body_kind == "object":
        payload = {"token": "", "data": draw(json_values)}
    elif body_kind == "list":
        payload = ["", draw(json_values)]
    elif body_kind == "raw":
        body = draw(st.binary(max_size=200))
    delivery = draw(st.sampled_from(["whole"] * 8 + ["close-early", "garbage"]))
    if delivery == "garbage":
        body = draw(st.binary(min_size=1, max_size=300))
    return InvokeCase(
        route,
        method,
        name,
        resolves,
        maybe,
        qualifier,
        qualifier_ok,
        headers,
        headers_ok,
        invocation_type or "RequestResponse",
        payload,
        body,
        delivery,
    )


def with_token(case: InvokeCase, token: str) -> InvokeCase:
    case.token = token
    if isinstance(case.payload, dict):
        case.payload = {**case.payload, "token": token}
    elif isinstance(case.payload, list):
        case.payload = [token, *case.payload[1:]]
    return case


def run_at_once(server: RapidServer, cases: list[InvokeCase]) -> list[bytes | BaseException | None]:
    barrier = threading.Barrier(len(cases))
    results: list[bytes | BaseException | None] = [None] * len(cases)

    def send(index: int) -> None:
        try:
            barrier.wait(HTTP_TIMEOUT_S)
            case = cases[index]
            if case.delivery == "garbage":
                with socket.create_connection((server.host, server.port), timeout=HTTP_TIMEOUT_S) as sock:
                    sock.sendall(case.body)
                    sock.shutdown(socket.SHUT_WR)
                    results[index] = read_to_end(sock)
                return
            results[index] = call(server, case.data(), close_early=case.delivery == "close-early")
        except BaseException as error:  # reported in the test's thread
            results[index] = error

    threads = [threading.Thread(target=send, args=(i,), daemon=True) for i in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HTTP_TIMEOUT_S + 5)
    return results


def check_invoke_answer(case: InvokeCase, answer: Answer, others: list[str]) -> str | None:
    """Asserts what the service owes this request; returns the request id of an Event invoke it queued."""
    for token in others:
        assert token.encode() not in answer.body, (
            f"{case.token}'s caller got {token}'s bytes: {answer.body!r}"
        )
    assert answer.status < 500, (case, answer)
    body = case.sent_body()
    # A raw body that the stdlib reads as JSON may still be refused: JSON is UTF-8 only and has no NaN.
    maybe = case.maybe or (case.payload is None and bool(body.strip()) and _is_json(body))
    payload_ok = case.payload is not None or not body.strip() or _is_json(body)
    runs = (
        case.route in ("invoke", "stream") and case.method == "POST" and case.resolves and case.qualifier_ok
    )
    if case.route == "stream" and case.invocation_type == "Event":
        runs = False  # not an invocation type of InvokeWithResponseStream
    if answer.status >= 400 and maybe:
        return None  # the server's choice
    if case.route == "list" and case.method == "GET":
        assert answer.status == 200, (case, answer)
        return None
    if not (runs and case.headers_ok and payload_ok) and not (maybe and answer.status < 300):
        assert 400 <= answer.status < 500, (case, answer)
        return None
    if case.invocation_type == "DryRun":
        assert answer.status == 204, (case, answer)
        return None
    if case.invocation_type == "Event":
        assert answer.status == 202, (case, answer)
        return answer.headers["x-amzn-requestid"]
    assert answer.status == 200, (case, answer)
    assert "x-amz-function-error" not in answer.headers, (case, answer)
    request_id = answer.headers["x-amzn-requestid"]
    if case.route == "stream":
        assert answer.headers["content-type"] == "application/vnd.amazon.eventstream", (case, answer)
        assert case.payload is None or case.token.encode() in answer.body, (case, answer)
        return None
    expected = case.payload if case.payload is not None else (json.loads(body) if body.strip() else {})
    assert json.loads(answer.body) == expected, (case, answer)
    if case.headers.get("X-Amz-Log-Type") == "Tail":
        tail = base64.b64decode(answer.headers["x-amz-log-result"]).decode()
        assert f"END RequestId: {request_id}" in tail, tail
    return None


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


@FUZZ
@given(cases=st.lists(invoke_cases(), min_size=1, max_size=4))
def test_generated_invoke_requests(fuzz: FuzzServer, cases: list[InvokeCase]) -> None:
    server = fuzz.server
    cases = [with_token(case, new_token()) for case in cases]
    results = run_at_once(server, cases)
    queued = []
    for index, (case, result) in enumerate(zip(cases, results, strict=True)):
        if isinstance(result, BaseException):
            raise AssertionError(f"request {index} ({case}) failed: {result!r}")
        if case.delivery == "close-early":
            continue
        assert result is not None
        if case.delivery == "garbage":
            assert result == b"" or result.startswith(b"HTTP/1.1 4"), (case.body, result)
            continue
        others = [other.token for other in cases if other is not case]
        event_id = check_invoke_answer(case, parse_answer(result), others)
        if event_id is not None:
            queued.append(event_id)
    for request_id in queued:  # an Event invoke runs after its 202: let it end before counting
        server.wait_for_line(lambda line, rid=request_id: line.startswith(f"REPORT RequestId: {rid}\t"))
    assert_healthy(server, fuzz.reports, fuzz.accounting)


# --- Runtime API: generated sequences, played by the environment's own runtime ---------------------

ID_CHARACTERS = string.ascii_letters + string.digits + "-_.~"
CONNECTIONS = st.sampled_from(["main", "fresh"])


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def post_steps(targets: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "do": st.just("post"),
            "kind": st.sampled_from(["response", "error"]),
            "target": st.sampled_from(targets),
            "suffix": st.text(alphabet=ID_CHARACTERS, min_size=1, max_size=8),
            "pick": st.integers(0, 5),
            "body": st.binary(max_size=64).map(b64),
            "content_type": st.sampled_from(
                [None, "application/json", "text/plain; charset=utf-8", "application/octet-stream"]
            ),
            "mode": st.sampled_from([None, None, "streaming", "bogus"]),
            "conn": st.sampled_from(["main", "fresh", "fresh-close"]),
            "oversize": st.sampled_from([False] * 7 + [True]),
            "chunked": st.booleans(),
            "trailer": st.booleans(),
        }
    )


init_error_step = st.fixed_dictionaries({"do": st.just("init_error"), "conn": CONNECTIONS})
steps_in_any_phase = (
    st.just({"do": "next"}),
    st.fixed_dictionaries(
        {
            "do": st.just("wrong_method"),
            "path": st.sampled_from(["next", "response", "error", "init_error"]),
            "conn": CONNECTIONS,
        }
    ),
    st.fixed_dictionaries(
        {
            "do": st.just("unknown_path"),
            # No "/": a route of the Runtime API always has one past its prefix, so this names none.
            "path": st.text(
                alphabet=st.characters(blacklist_categories=["Cs"], blacklist_characters="/"), max_size=20
            ),
            "method": st.sampled_from(["GET", "POST", "DELETE"]),
            "conn": CONNECTIONS,
        }
    ),
    st.fixed_dictionaries({"do": st.just("garbage"), "data": st.binary(min_size=1, max_size=200).map(b64)}),
    st.fixed_dictionaries({"do": st.just("head_then_close"), "junk": st.binary(max_size=100).map(b64)}),
    st.fixed_dictionaries(
        {
            "do": st.just("partial_body"),
            "sent": st.binary(max_size=100).map(b64),
            "missing": st.integers(1, 10_000_000),
            "streaming": st.booleans(),
        }
    ),
    st.just({"do": "close_idle"}),
)
other_steps = st.one_of(init_error_step, *steps_in_any_phase)
# Before the first /next there is no invoke: every post names an id the environment does not know. No
# /init/error: it would end the init, a script of its own rather than a fuzz step.
init_steps = st.one_of(post_steps(["current", "random", "slashed"]), *steps_in_any_phase)


@st.composite
def runtime_scripts(draw: st.DrawFn) -> dict[str, Any]:
    during = st.one_of(
        post_steps(["current"]), post_steps(["old", "random", "mangled", "slashed"]), other_steps
    )
    script: dict[str, Any] = {
        "steps": draw(st.lists(during, min_size=1, max_size=6)),
        "after": draw(st.lists(st.one_of(post_steps(["current", "old", "random"]), other_steps), max_size=3)),
        "exit": draw(st.sampled_from([None, None, None, 0, 1, 7])),
        "next_init": None,
        "via": draw(st.sampled_from(["invoke", "invoke", "stream"])),
    }
    if script["via"] == "stream":
        for step in script["steps"]:
            if step["do"] == "partial_body" and step["sent"]:
                step["streaming"] = (
                    False  # raced here: test_a_streamed_answer_cut_off_midway_is_not_a_success
                )
    if script["exit"] is not None and draw(st.booleans()):
        script["next_init"] = {"token": "", "steps": draw(st.lists(init_steps, min_size=1, max_size=4))}
    if draw(st.booleans()):  # a post naming another environment's invoke, in flight at that moment
        step = draw(post_steps(["literal"]))
        script["steps"].insert(draw(st.integers(0, len(script["steps"]))), step)
    return script


ERROR_OF = {
    "InvalidRequestID": 400,
    "InvalidStateTransition": 403,
    "NotFound": 404,
    "MethodNotAllowed": 405,
    "InvalidFunctionResponseMode": 400,
}


def assert_answer(record: dict[str, Any], error_type: str) -> None:
    if record["do"] == "post" and record.get("conn") == "fresh-close":
        assert record["status"] is None, record
        return
    assert (record["status"], record["error_type"]) == (ERROR_OF[error_type], error_type), record


def check_record(record: dict[str, Any], answered: bool) -> None:
    """One step's answer, for every step but a post for the invoke in flight (`check_answering_posts`)."""
    assert "failure" not in record, record
    do = record["do"]
    if do == "post":
        if record["target"] == "slashed":  # its id holds a "/": no route of the Runtime API matches
            assert_answer(record, "NotFound")
        elif record["kind"] == "response" and record["mode"] == "bogus":
            assert_answer(record, "InvalidFunctionResponseMode")
        else:
            assert record["target"] != "current" or answered, record
            assert_answer(record, "InvalidRequestID")
    elif (do == "next" and record["read"]) or do == "init_error":
        assert_answer(record, "InvalidStateTransition")
    elif do == "wrong_method":
        assert_answer(record, "MethodNotAllowed")
    elif do == "unknown_path":
        assert_answer(record, "NotFound")
    elif do == "garbage":
        assert record["reply"] == "" or record["reply"].startswith("HTTP/1.1 4"), record


def too_large(post: dict[str, Any], via: str) -> bool:
    """An answer over the 6 MB a buffered response may hold (a streamed one, to a streaming caller, may
    hold 200 MB): it ends the invoke as Function.ResponseSizeTooLarge, and the runtime gets 413."""
    streamed = post.get("kind") == "response" and post.get("mode") == "streaming" and via == "stream"
    return bool(post.get("oversize")) and not streamed


def check_answering_posts(posts: list[dict[str, Any]], via: str) -> list[dict[str, Any]]:
    """The posts for the invoke in flight, in order, the runtime's own last: one answers it (202, or 413
    for one too large), every other is refused as answered already (400 InvalidRequestID). A post whose
    connection was closed unread races the ones after it; before any such, the first post wins. Returns
    the posts that may have won."""
    for post in posts:
        assert "failure" not in post, post
        answered = (413, "RequestEntityTooLarge") if too_large(post, via) else (202, None)
        if post["status"] is not None:
            assert (post["status"], post["error_type"]) in (answered, (400, "InvalidRequestID")), post
    accepted = [post for post in posts if post["status"] in (202, 413)]
    assert len(accepted) <= 1, f"two answers accepted for one invoke: {accepted}"
    assert posts[0]["status"] in (202, 413, None), f"the first answer was refused: {posts[0]}"
    if accepted:
        return accepted
    unread = [post for post in posts if post["status"] is None]
    assert unread, f"no answer was accepted: {posts}"
    return unread


def read_stream(answer: Answer) -> tuple[bytes, dict[str, Any]]:
    """An InvokeWithResponseStream answer: its PayloadChunks joined, and its InvokeComplete's members."""
    from botocore.eventstream import EventStreamBuffer  # only this suite's stream checks pay for it

    assert answer.status == 200, answer
    assert answer.headers["content-type"] == "application/vnd.amazon.eventstream", answer
    buffer = EventStreamBuffer()
    buffer.add_data(answer.body)
    payload, complete = b"", None
    for message in buffer:
        assert complete is None, f"an event after InvokeComplete: {answer.body!r}"
        event_type = message.headers.get(":event-type")
        if event_type == "PayloadChunk":
            payload += message.payload
        elif event_type == "InvokeComplete":
            complete = json.loads(message.payload)
    assert complete is not None, f"the stream has no InvokeComplete: {answer.body!r}"
    return payload, complete


def check_caller(answer: Answer, winners: list[dict[str, Any]], via: str) -> None:
    """The caller got what one of the posts that may have won owes it: its bytes, with its content type
    and error flag, or the error that ends an invoke whose answer was too large."""
    assert answer.status == 200, answer
    got = read_stream(answer) if via == "stream" else None
    for winner in winners:
        if got is not None and owed_stream(got, winner, via):
            return
        if got is None and owed_answer(answer, winner):
            return
    shown = got if got is not None else answer
    raise AssertionError(f"the caller got {shown!r}, not what a post of its runtime owes it: {winners}")


def _same_bytes(data: bytes, post: dict[str, Any]) -> bool:
    return (len(data), hashlib.sha256(data).hexdigest()) == (post["size"], post["sha256"])


def failed_midway(post: dict[str, Any]) -> bool:
    """A streamed response whose trailers say it failed: the invoke's outcome is that error."""
    return bool(post.get("trailer")) and post.get("kind") == "response" and post.get("mode") == "streaming"


def owed_answer(answer: Answer, post: dict[str, Any]) -> bool:
    if too_large(post, "invoke"):
        return (
            answer.headers.get("x-amz-function-error") == "Unhandled"
            and json.loads(answer.body).get("errorType") == "Function.ResponseSizeTooLarge"
        )
    if failed_midway(post):
        return (
            answer.headers.get("x-amz-function-error") == "Unhandled"
            and answer.headers["content-type"] == "application/json"
            and answer.body == base64.b64decode(post["trailer"])
        )
    if post.get("kind") == "error":
        return (
            answer.headers.get("x-amz-function-error") == "Unhandled"
            and answer.headers["content-type"] == "application/json"
            and _same_bytes(answer.body, post)
        )
    return (
        "x-amz-function-error" not in answer.headers
        and answer.headers["content-type"] == (post.get("content_type") or "application/json")
        and _same_bytes(answer.body, post)
    )


def owed_stream(got: tuple[bytes, dict[str, Any]], post: dict[str, Any], via: str) -> bool:
    payload, complete = got
    if too_large(post, via):
        return payload == b"" and complete.get("ErrorCode") == "Function.ResponseSizeTooLarge"
    if failed_midway(post):
        error = json.loads(base64.b64decode(post["trailer"]))
        expected = {"ErrorCode": error["errorType"], "ErrorDetails": error["errorMessage"]}
        return complete == expected and _same_bytes(payload, post)
    if post.get("kind") == "error":
        details = base64.b64decode(post["body"]).decode("utf-8", "replace")
        return payload == b"" and complete == {"ErrorCode": "Unhandled", "ErrorDetails": details}
    return complete == {} and _same_bytes(payload, post)


@FUZZ
@given(script=runtime_scripts())
def test_generated_runtime_api_sequences(fuzz: FuzzServer, script: dict[str, Any]) -> None:
    server, reports = fuzz.server, fuzz.reports
    script["token"] = new_token()
    if script["next_init"] is not None:
        script["next_init"]["token"] = new_token()
    literal = [step for step in script["steps"] if step.get("target") == "literal"]
    gate = Gate()
    try:
        with ThreadPoolExecutor(1) as pool:
            bystander_event = {"token": new_token(), "gate": gate.port}
            bystander = pool.submit(invoke, server, ECHO, bystander_event) if literal else None
            held: socket.socket | None = None
            if bystander is not None:
                held, bystander_id = gate.inside()
                for step in literal:
                    step["literal"] = bystander_id
            answer, report = runtime_invoke(server, reports, script)
            if bystander is not None and held is not None:
                held.close()
                other = bystander.result()
                assert (other.status, json.loads(other.body)) == (200, bystander_event), other
    finally:
        gate.close()

    records = report["records"]
    during = records[: len(script["steps"])]
    final = [record for record in records if record["do"] == "final"]
    after = records[len(during) + len(final) :]
    assert len(after) == len(script["after"]), records
    current = [r for r in during if r["do"] == "post" and r["target"] == "current" and r["mode"] != "bogus"]
    winners = check_answering_posts(current + final, script["via"])
    check_caller(answer, winners, script["via"])
    winner = winners[0]
    event(f"answered by {winner['do']} ({winner.get('kind', 'response')}) via {script['via']}")
    event(f"winning post status: {winner['status']}, too large: {too_large(winner, script['via'])}")
    event(f"winning post failed midway: {failed_midway(winner)}, chunked: {winner.get('chunked', False)}")
    for record in during:
        if record not in current:
            check_record(record, answered=False)
    for record in after:
        check_record(record, answered=True)
    if script["exit"] is not None:
        fuzz.accounting.wait_gone(report["pid"])
    assert_healthy(server, reports, fuzz.accounting)
    if script["next_init"] is not None:  # the healthy invoke started the next runtime, which played it
        init_report = reports_file(reports, script["next_init"]["token"])
        assert init_report["pid"] != report["pid"]
        for record in init_report["records"]:
            check_record(record, answered=True)


def test_a_streamed_answer_cut_off_midway_is_not_a_success(fuzz: FuzzServer) -> None:
    """Found by test_generated_runtime_api_sequences: the runtime starts a streamed response, sends 7 of
    the 107 bytes it announced and closes that connection; then it posts a whole answer on its own
    connection. The cut-off stream is the invoke's answer, a failed one (as in AWS's emulator): the caller
    is told, not handed a success made of the bytes that came, and the later whole answer is refused.

    The cut-off connection stays open until its bytes have reached the caller: a connection closed before
    the server has accepted it cannot be told to be the environment's own, and is refused unread."""
    server = fuzz.server
    token = new_token()
    streamed, ended = Gate(), Gate()
    partial = {"do": "partial_body", "sent": b64(b"PARTIAL"), "missing": 100, "streaming": True}
    script = {
        "token": token,
        "steps": [
            {**partial, "keep_open": True},
            {"do": "hold", "port": streamed.port},
            {"do": "close_kept"},
            {"do": "hold", "port": ended.port},
        ],
    }
    path = f"/2021-11-15/functions/{RUNTIME}/response-streaming-invocations"
    try:
        with socket.create_connection((server.host, server.port), timeout=HTTP_TIMEOUT_S) as caller:
            caller.sendall(request_bytes("POST", path, {}, json.dumps(script).encode()))
            held, _ = streamed.inside()
            received = b""
            while b"PARTIAL" not in received and (chunk := caller.recv(65536)):
                received += chunk
            held.close()  # the runtime closes the cut-off connection
            answer = parse_answer(received + read_to_end(caller))  # the caller's stream has ended
            held, _ = ended.inside()
            held.close()  # and only then the runtime posts its whole answer
    finally:
        streamed.close()
        ended.close()
    report = reports_file(fuzz.reports, token)
    payload, complete = read_stream(answer)
    (final,) = [record for record in report["records"] if record["do"] == "final"]
    assert payload == b"PARTIAL"
    assert complete.get("ErrorCode") == "Runtime.TruncatedResponse", (payload, complete, final)
    assert final["status"] == 400, final
    assert_healthy(server, fuzz.reports, fuzz.accounting)
