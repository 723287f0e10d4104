"""The HTTP front as a careful server keeps it (issue 12, section 3), against real `rapidboot serve`
processes: curl, boto3 and raw sockets.

Three servers: `front_server` with the default connection policy; `tight_server` with timeouts of a
fraction of a second, so a test sees them fire without waiting 15 s; `capped_server` with a cap of a few
connections. Whether a timeout has passed is learnt from the server itself (it closed a connection that
was opened later), never from a clock of ours.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import pty
import select
import shutil
import socket
import subprocess
import sys
import time
import tty
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import pytest
from e2e_harness import (
    EXIT_TIMEOUT_S,
    HTTP_TIMEOUT_S,
    LINE_TIMEOUT_S,
    READY_PATTERN,
    READY_TIMEOUT_S,
    LineCollector,
    RapidServer,
    chaos,
    hold_invoke,
    lambda_client,
    misbehaving_command,
    request_id_of,
    running_server,
    server_environment,
    supervised,
    wait_until,
    write_tables,
)

pytestmark = pytest.mark.e2e

BASIC_CODE = str(Path(__file__).parent / "functions" / "basic")
SYNC_LIMIT = 6_291_456
EVENT_LIMIT = 1_048_576
TIGHT_S = 1.0  # the tight server's keep-alive and request-head timeouts
CAP = 4


def tables() -> dict[str, dict[str, Any]]:
    return {
        "echo": {"code": BASIC_CODE, "handler": "handlers.echo", "memory": 512, "timeout": 10},
        "fail": {"code": BASIC_CODE, "handler": "handlers.fail", "timeout": 10},
        "parked": chaos(),  # our bootstrap
        "parked-ric": chaos(command=[sys.executable, "-m", "awslambdaric", "chaos.handler"]),
        "held": {"code": ".", "handler": "unused.handler", "timeout": 30, "command": misbehaving_command()},
    }


def serve(tmp_path_factory: pytest.TempPathFactory, name: str, *flags: str) -> Iterator[RapidServer]:
    root = tmp_path_factory.mktemp(name)
    config = write_tables(root / "rapidboot.toml", tables())
    with running_server(["--config", str(config), *flags], root) as server:
        yield server


@pytest.fixture(scope="module")
def front_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    yield from serve(tmp_path_factory, "front")


@pytest.fixture(scope="module")
def tight_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    yield from serve(
        tmp_path_factory,
        "tight",
        "--keep-alive-timeout",
        str(TIGHT_S),
        "--request-head-timeout",
        str(TIGHT_S),
    )


@pytest.fixture(scope="module")
def capped_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    yield from serve(tmp_path_factory, "capped", "--max-connections", str(CAP))


# --- Raw HTTP -----------------------------------------------------------------------------------------


def connect(server: RapidServer) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=HTTP_TIMEOUT_S)
    return sock


class Reader:
    """Reads responses off one connection: heads, and bodies by Content-Length (bounded by the socket's
    timeout: a server that never answers fails the test instead of hanging it)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"the server closed the connection; had {self.buffer!r}"
        self.buffer += chunk

    def head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(status_line.split()[1]), headers

    def body(self, length: int) -> bytes:
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return body

    def response(self) -> tuple[int, dict[str, str], bytes]:
        status, headers = self.head()
        return status, headers, self.body(int(headers.get("content-length", "0")))


def closed_by_server(sock: socket.socket, timeout: float = LINE_TIMEOUT_S) -> bool:
    """Whether the server closes this connection within `timeout` (reading and dropping what it sends)."""
    return not still_open([sock], timeout)


def still_open(socks: list[socket.socket], timeout: float) -> list[socket.socket]:
    """The connections the server has not closed by the end of `timeout`, waiting for all at once."""
    deadline = time.monotonic() + timeout
    waiting = list(socks)
    while waiting and (remaining := deadline - time.monotonic()) > 0:
        for sock in select.select(waiting, [], [], remaining)[0]:
            try:
                closed = not sock.recv(65536)
            except ConnectionResetError:
                closed = True
            if closed:
                waiting.remove(sock)
    return waiting


def request(method: str, path: str, body: bytes = b"", headers: str = "") -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: rapidboot\r\n{headers}Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


INVOKE_ECHO = "/2015-03-31/functions/echo/invocations"


# --- HEAD ---------------------------------------------------------------------------------------------


def test_head_answers_carry_no_body(front_server: RapidServer) -> None:
    """The answer to HEAD ends with its head: the next bytes on the connection are the next answer."""
    with connect(front_server) as sock:
        sock.sendall(
            f"HEAD {INVOKE_ECHO} HTTP/1.1\r\nHost: rapidboot\r\n\r\n".encode()
            + b"HEAD /2015-03-31/functions/ HTTP/1.1\r\nHost: rapidboot\r\n\r\n"
            + request("POST", INVOKE_ECHO, b'{"after": "head"}')
        )
        reader = Reader(sock)
        status, headers = reader.head()
        assert status == 404, "HEAD is no Invoke API operation"
        assert headers["x-amzn-errortype"] == "UnknownOperationException"
        assert int(headers["content-length"]) > 0  # the length GET's answer would have
        status, headers = reader.head()
        assert status == 404
        status, _, body = reader.response()
        assert (status, json.loads(body)) == (200, {"after": "head"})


# --- Expect: 100-continue -------------------------------------------------------------------------------


def curl_upload(server: RapidServer, tmp_path: Path, size: int, *headers: str) -> tuple[int, int]:
    """curl POSTs a `size`-byte JSON payload (it sends `Expect: 100-continue` for a body this big): the
    status it got and how many bytes it uploaded."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    payload = tmp_path / "payload.json"
    payload.write_bytes(b'{"pad": "' + b"x" * (size - 11) + b'"}')
    extra = [arg for header in headers for arg in ("--header", header)]
    completed = subprocess.run(
        [
            curl,
            "--silent",
            "--show-error",
            "--max-time",
            "30",
            "--output",
            os.devnull,
            "--write-out",
            "%{http_code} %{size_upload}",
            "--data-binary",
            f"@{payload}",
            *extra,
            f"{server.endpoint}{INVOKE_ECHO}",
        ],
        capture_output=True,
        timeout=HTTP_TIMEOUT_S,
        check=False,
        text=True,
    )
    assert completed.returncode == 0, completed.stderr
    status, uploaded = completed.stdout.split()
    return int(status), int(uploaded)


def test_curl_is_refused_an_oversized_payload_before_it_uploads_it(
    front_server: RapidServer, tmp_path: Path
) -> None:
    # Today's complaint: curl waited a second for `100 Continue`, uploaded 6 MB, then got the 413.
    assert curl_upload(front_server, tmp_path, SYNC_LIMIT + 1) == (413, 0)
    # An Event invoke's limit is 1 MB: known from the head, so refused before the body too.
    assert curl_upload(front_server, tmp_path, EVENT_LIMIT + 1, "X-Amz-Invocation-Type: Event") == (413, 0)


def test_curl_is_invited_to_send_a_payload_within_the_limit(
    front_server: RapidServer, tmp_path: Path
) -> None:
    size = 2 * 1024 * 1024  # over curl's threshold for Expect
    assert curl_upload(front_server, tmp_path, size) == (200, size)


@pytest.mark.parametrize(
    ("declared", "headers"),
    [(SYNC_LIMIT + 1, ""), (EVENT_LIMIT + 1, "X-Amz-Invocation-Type: Event\r\n")],
    ids=["sync", "event"],
)
def test_expect_continue_over_the_limit_gets_an_immediate_413(
    front_server: RapidServer, declared: int, headers: str
) -> None:
    with connect(front_server) as sock:
        sock.sendall(
            f"POST {INVOKE_ECHO} HTTP/1.1\r\nHost: rapidboot\r\n{headers}Expect: 100-continue\r\n"
            f"Content-Length: {declared}\r\n\r\n".encode()
        )
        # Nothing of the body is sent: the answer must come without it.
        status, answer_headers, body = Reader(sock).response()
        assert status == 413
        assert answer_headers["x-amzn-errortype"] == "RequestEntityTooLargeException"
        assert answer_headers["connection"] == "close"
        assert str(declared) in json.loads(body)["message"] or "smaller than" in json.loads(body)["message"]
        assert closed_by_server(sock)


def test_expect_continue_within_the_limit_is_invited_first(front_server: RapidServer) -> None:
    body = b'{"expect": "continue"}'
    with connect(front_server) as sock:
        sock.sendall(
            f"POST {INVOKE_ECHO} HTTP/1.1\r\nHost: rapidboot\r\nExpect: 100-continue\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        reader = Reader(sock)
        assert reader.head() == (100, {})
        sock.sendall(body)
        status, _, answer = reader.response()
        assert (status, json.loads(answer)) == (200, {"expect": "continue"})


# --- Names, qualifiers, ARNs ------------------------------------------------------------------------------


def test_a_name_outside_lambdas_pattern_is_a_validation_exception(front_server: RapidServer) -> None:
    response = front_server.invoke("my function", {})
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "ValidationException"
    assert response.json()["message"].startswith(
        "1 validation error detected: Value 'my function' at 'functionName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?"
    )
    with connect(front_server) as sock:  # botocore sends a "/" in a name as %2F
        sock.sendall(request("POST", "/2015-03-31/functions/my%2Ffunction/invocations", b"{}"))
        status, headers, body = Reader(sock).response()
    assert (status, headers["x-amzn-errortype"]) == (400, "ValidationException")
    assert json.loads(body)["message"].startswith("1 validation error detected: Value 'my/function' at")


def test_boto3_sees_validation_exceptions_for_names_and_qualifiers(front_server: RapidServer) -> None:
    import botocore.exceptions

    client = lambda_client(front_server.endpoint)
    try:
        for arguments, member in [
            ({"FunctionName": "f" * 65}, "functionName"),
            ({"FunctionName": "bad!name"}, "functionName"),
            ({"FunctionName": "echo", "Qualifier": "no!"}, "qualifier"),
        ]:
            with pytest.raises(botocore.exceptions.ClientError) as caught:
                client.invoke(Payload=b"{}", **arguments)
            error = caught.value.response["Error"]
            assert error["Code"] == "ValidationException", arguments
            assert f"at '{member}' failed to satisfy constraint: Member must" in error["Message"]
            assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    finally:
        client.close()


@pytest.mark.parametrize(
    "name",
    [
        "arn:aws:lambda:eu-central-1:123456789012:function:echo",
        "arn:aws:lambda:us-east-1:999999999999:function:echo",
        "999999999999:function:echo",
    ],
)
def test_an_arn_of_another_region_or_account_is_not_found(front_server: RapidServer, name: str) -> None:
    """It used to invoke our `echo`."""
    client = lambda_client(front_server.endpoint)
    try:
        with pytest.raises(client.exceptions.ResourceNotFoundException) as caught:
            client.invoke(FunctionName=name, Payload=b"{}")
        assert caught.value.response["Error"]["Message"].startswith("Function not found: arn:aws:lambda:")
        assert caught.value.response["Error"]["Message"].endswith(":function:echo")
    finally:
        client.close()


# --- Messages that say what is wrong ----------------------------------------------------------------------


def test_a_payload_that_is_not_utf8_is_refused_naming_the_byte(front_server: RapidServer) -> None:
    response = front_server.invoke("echo", body=b'{"ok": "\xff\xfe"}')
    assert response.status_code == 400
    assert response.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    assert response.json()["message"] == (
        "Could not parse request body into json: Could not parse payload into json: "
        "Invalid UTF-8: invalid start byte 0xff at byte offset 8"
    )


def test_a_bad_serve_flag_is_named(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return event\n")
    completed = subprocess.run(
        [
            *RapidServer([], tmp_path).args[:4],
            "--code",
            str(tmp_path),
            "--handler",
            "app.handler",
            "--memory",
            "64",
        ],
        cwd=tmp_path,
        env=server_environment(),
        capture_output=True,
        text=True,
        timeout=HTTP_TIMEOUT_S,
        check=False,
    )
    assert (completed.returncode, completed.stderr) == (
        2,
        "rapidboot: --memory: 64 MB is outside 128-10240 MB\n",
    )


# --- A function's multi-line error output -----------------------------------------------------------------


def test_an_error_record_keeps_its_separators_in_a_pipe_and_in_the_tail(front_server: RapidServer) -> None:
    response = front_server.invoke("fail", {"n": 7}, headers={"X-Amz-Log-Type": "Tail"})
    request_id = request_id_of(response)
    tail = base64.b64decode(response.headers["X-Amz-Log-Result"])
    assert b"[ERROR] CustomError: something bad: 7\rTraceback (most recent call last):\r" in tail
    record = front_server.wait_for_line(lambda line: line.startswith(f"[fail {request_id}] [ERROR]"))
    assert "\rTraceback (most recent call last):\r" in record  # one line in a pipe, as Lambda's log has it


class _TerminalLines:
    """A pty's controller end read as lines; its EIO once the server is gone is the end of file."""

    def __init__(self, fd: int) -> None:
        self._file: BinaryIO = os.fdopen(fd, "rb", buffering=0)
        self._buffer = b""

    def readline(self) -> bytes:
        while b"\n" not in self._buffer:
            try:
                chunk = self._file.read(65536)
            except OSError:
                chunk = b""
            if not chunk:
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line + b"\n"


class TerminalServer(RapidServer):
    """A server whose stdout is a terminal (a pty, raw: bytes as written), read line by line."""

    def start(self) -> TerminalServer:
        controller, terminal = pty.openpty()
        tty.setraw(terminal)
        self.process = subprocess.Popen(
            self.args,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        os.close(terminal)
        self.stdout = LineCollector(_TerminalLines(controller), "rapidboot-terminal")
        self.stderr = LineCollector(self.process.stderr, "rapidboot-stderr")
        ready = self.stderr.wait_for(lambda line: READY_PATTERN.search(line) is not None, READY_TIMEOUT_S)
        assert ready is not None, f"server not ready within {READY_TIMEOUT_S} s\n{self.output_tail()}"
        match = READY_PATTERN.search(ready)
        assert match is not None
        self.host, self.port = match[1], int(match[2])
        self._client = httpx.Client(base_url=self.endpoint, timeout=HTTP_TIMEOUT_S)
        return self


def test_an_error_record_on_a_terminal_is_shown_as_lines(tmp_path: Path) -> None:
    config = write_tables(tmp_path / "rapidboot.toml", {"fail": tables()["fail"]})
    with supervised(TerminalServer(["--config", str(config)], tmp_path)) as server:
        request_id = request_id_of(server.invoke("fail", {"n": 9}))
        first = server.wait_for_line(lambda line: line.startswith(f"[fail {request_id}] [ERROR]"))
        assert first == f"[fail {request_id}] [ERROR] CustomError: something bad: 9"
        lines = server.stdout.lines
        following = lines[lines.index(first) + 1]
        assert following == "    Traceback (most recent call last):"


# --- Timeouts and the cap -----------------------------------------------------------------------------


def test_half_open_connections_and_slow_heads_are_closed(tight_server: RapidServer) -> None:
    """Today 200 half-open connections were all still open after 21 s."""
    silent = [connect(tight_server) for _ in range(100)]
    slow = [connect(tight_server) for _ in range(100)]
    try:
        for sock in slow:
            sock.sendall(f"POST {INVOKE_ECHO} HTTP/1.1\r\nHost: rap".encode())  # a head that stops
        left = still_open(silent + slow, LINE_TIMEOUT_S)
        assert not left, f"{len(left)} of 200 connections were not closed"
    finally:
        for sock in silent + slow:
            sock.close()


@pytest.mark.parametrize("parked", ["parked", "parked-ric"])
def test_idle_connections_are_closed_but_not_an_invoke_in_flight_nor_a_parked_runtime(
    tight_server: RapidServer, tmp_path: Path, parked: str
) -> None:
    # A runtime that parks on /next, keeping its keep-alive connection to its Runtime API.
    first = tight_server.invoke(parked, {"token": "first"}).json()
    # An invoke that runs until the test releases it.
    held = hold_invoke(tight_server, "held", f"long-invoke-{parked}", tmp_path)
    # A client connection that goes idle after one invoke, opened after both: once the server has closed
    # it for idleness, more than the keep-alive timeout has passed for the other two as well.
    with connect(tight_server) as idle:
        idle.sendall(request("POST", INVOKE_ECHO, b"{}"))
        assert Reader(idle).response()[0] == 200
        assert closed_by_server(idle), "an idle keep-alive connection was not closed"
    # Neither the invoke in flight nor the parked runtime was cut.
    released = held.release("after the idle timeout")
    assert released.status_code == 200, released.text
    assert released.json()["released_with"] == "after the idle timeout"
    second_response = tight_server.invoke(parked, {"token": "second"})
    second = second_response.json()
    assert second["pid"] == first["pid"], "the parked runtime lost its environment"
    assert second["count"] == first["count"] + 1
    assert tight_server.report(request_id_of(second_response)).init_duration_ms is None


def test_connections_over_the_cap_are_refused_with_a_503_and_a_log_line(capped_server: RapidServer) -> None:
    holders = [connect(capped_server) for _ in range(CAP)]
    try:
        # Each holder is known to the server once it has answered it: the cap is full.
        for sock in holders:
            sock.sendall(request("GET", "/2015-03-31/functions/"))
            assert Reader(sock).response()[0] == 200
        with connect(capped_server) as extra:
            extra.sendall(request("POST", INVOKE_ECHO, b"{}"))
            status, headers, body = Reader(extra).response()
            assert (status, headers["x-amzn-errortype"], headers["connection"]) == (
                503,
                "ServiceException",
                "close",
            )
            assert "--max-connections" in json.loads(body)["message"]
            assert closed_by_server(extra)
        notice = capped_server.stderr.wait_for(lambda line: "--max-connections cap" in line)
        assert notice == (
            f"rapidboot: {CAP} connections are open, the --max-connections cap: further connections are "
            "refused (503) until some close"
        )
    finally:
        for sock in holders:
            sock.close()

    # Once they are gone, invokes are served again (the server learns of the closes as it reads them).
    def served() -> bool:
        with contextlib.suppress(httpx.HTTPError):
            return httpx.post(capped_server.endpoint + INVOKE_ECHO, content=b"{}").status_code == 200
        return False

    assert wait_until(served, EXIT_TIMEOUT_S)
