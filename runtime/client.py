"""HTTP client for the Lambda Runtime API (`$AWS_LAMBDA_RUNTIME_API/2018-06-01/...`).

One keep-alive TCP connection over a raw socket; parsing is `http_parser.ResponseParser`'s job.
`http.client` is avoided on purpose: it costs ~20 ms of cold start (it imports `email`).
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

# `_socket` is the C module under `socket` (~0.4-1.2 ms); `socket` itself adds ~2.5 ms (selectors,
# array, enum) for conveniences this client does not use.
import _socket

from .http_parser import ProtocolError, Response, ResponseParser

_API = b"/2018-06-01/runtime"
# Each recv() allocates a bytes object of this size and shrinks it to what arrived. At 256 KB the
# allocation is above glibc's mmap threshold (128 KB): a 300-byte /next response then costs 16 us per
# recv instead of 2.2 us at 64 KB (measured on a socketpair), twice per invoke, ~30 us of the warm
# invoke. 64 KB still reads a 6 MB event in ~100 calls.
_RECV_BYTES = 64 * 1024

# Request ids and invocation ids go into the request line and headers verbatim: allow the RFC 3986
# path characters (no "/", no "%", no spaces, no controls). Real ids are UUIDs.
_SAFE_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@")
_HEADER_VALUE_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F))
# The two content types `marshal.encode_response` gives every result, as header bytes.
_CONTENT_TYPE_HEADERS = {
    "application/json": b"Content-Type: application/json\r\n",
    "application/unknown": b"Content-Type: application/unknown\r\n",
}


class RuntimeClientError(Exception):
    """A Runtime API request failed: no connection, a broken response, or an error status."""

    def __init__(self, message: str, status: int | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class Invocation:
    """One event from `GET /runtime/invocation/next`: its headers and raw body."""

    __slots__ = (
        "body",
        "client_context",
        "cognito_identity",
        "content_type",
        "deadline_ms",
        "invocation_id",
        "invoked_function_arn",
        "request_id",
        "tenant_id",
        "trace_id",
    )

    def __init__(
        self,
        request_id: str,
        body: bytes,
        deadline_ms: int = 0,
        invoked_function_arn: str | None = None,
        content_type: str | None = None,
        trace_id: str | None = None,
        client_context: str | None = None,
        cognito_identity: str | None = None,
        tenant_id: str | None = None,
        invocation_id: str | None = None,
    ) -> None:
        self.request_id = request_id
        self.body = body
        self.deadline_ms = deadline_ms
        self.invoked_function_arn = invoked_function_arn
        self.content_type = content_type
        self.trace_id = trace_id
        self.client_context = client_context
        self.cognito_identity = cognito_identity
        self.tenant_id = tenant_id
        self.invocation_id = invocation_id

    @classmethod
    def from_response(cls, response: Response) -> Invocation:
        headers = response.headers
        request_id = headers.get("lambda-runtime-aws-request-id", "")
        if not request_id or not _SAFE_ID_CHARS.issuperset(request_id):
            raise RuntimeClientError(f"/next response has a missing or invalid request id: {request_id!r}")
        invocation_id = headers.get("lambda-runtime-invocation-id") or None
        if invocation_id is not None and not _HEADER_VALUE_CHARS.issuperset(invocation_id):
            invocation_id = None
        deadline = headers.get("lambda-runtime-deadline-ms", "")
        # RAPID omits empty headers; awslambdaric reports an empty one as absent (None). Positional:
        # a call with ten keywords costs ~0.3 us more, once per invoke.
        return cls(
            request_id,
            response.body,
            int(deadline) if deadline.isascii() and deadline.isdigit() else 0,
            headers.get("lambda-runtime-invoked-function-arn") or None,
            headers.get("content-type") or None,
            headers.get("lambda-runtime-trace-id") or None,
            headers.get("lambda-runtime-client-context") or None,
            headers.get("lambda-runtime-cognito-identity") or None,
            headers.get("lambda-runtime-aws-tenant-id") or None,
            invocation_id,
        )


class RuntimeClient:
    def __init__(self, address: str, user_agent: str) -> None:
        self._host, self._port = _split_address(address)
        self._sock: _socket.socket | None = None
        self._parser = ResponseParser()
        # Built once: every request reuses these bytes.
        common = (
            b"Host: " + address.encode("ascii") + b"\r\nUser-Agent: " + user_agent.encode("ascii") + b"\r\n"
        )
        self._next_request = b"GET " + _API + b"/invocation/next HTTP/1.1\r\n" + common + b"\r\n"
        self._common_headers = common

    # -- endpoints -------------------------------------------------------------------------------

    def next_invocation(self) -> Invocation:
        response = self._exchange(self._next_request, b"")
        if response.status != 200:
            raise RuntimeClientError(
                f"/next returned HTTP {response.status}: {response.body[:500]!r}",
                response.status,
                response.body,
            )
        return Invocation.from_response(response)

    def post_response(
        self, request_id: str, body: bytes, content_type: str, invocation_id: str | None = None
    ) -> Response:
        headers = _CONTENT_TYPE_HEADERS.get(content_type)
        if headers is None:
            headers = b"Content-Type: " + content_type.encode("ascii") + b"\r\n"
        if invocation_id is not None:
            # awslambdaric 4.x echoes this Managed Instances header on the response.
            headers += b"Lambda-Runtime-Invocation-Id: " + invocation_id.encode("ascii") + b"\r\n"
        path = _API + b"/invocation/" + request_id.encode("ascii") + b"/response"
        return self._post(path, headers, body)

    def post_invocation_error(
        self,
        request_id: str,
        body: bytes,
        error_type: str,
        xray_cause: str | None,
        invocation_id: str | None = None,
    ) -> Response:
        headers = b"Content-Type: application/json\r\n" + _error_type_header(error_type)
        if xray_cause is not None:
            headers += b"Lambda-Runtime-Function-XRay-Error-Cause: " + xray_cause.encode("ascii") + b"\r\n"
        if invocation_id is not None:
            headers += b"Lambda-Runtime-Invocation-Id: " + invocation_id.encode("ascii") + b"\r\n"
        path = _API + b"/invocation/" + request_id.encode("ascii") + b"/error"
        return self._post(path, headers, body)

    def post_init_error(self, body: bytes, error_type: str) -> Response:
        headers = b"Content-Type: application/json\r\n" + _error_type_header(error_type)
        return self._post(_API + b"/init/error", headers, body)

    def restore_next(self) -> Response:
        """SnapStart: `GET /runtime/restore/next`, which returns once the snapshot was restored."""
        return self._exchange(
            b"GET " + _API + b"/restore/next HTTP/1.1\r\n" + self._common_headers + b"\r\n", b""
        )

    def post_restore_error(self, body: bytes, error_type: str) -> Response:
        headers = b"Content-Type: application/json\r\n" + _error_type_header(error_type)
        return self._post(_API + b"/restore/error", headers, body)

    def start_streaming_response(
        self, request_id: str, content_type: str, invocation_id: str | None = None
    ) -> ResponseStream:
        """Open a streamed `/response` (reference section 1): the head goes out now, then each chunk
        as it is written; `ResponseStream.finish` ends it, with the error trailers if the handler failed.
        """
        headers = (
            b"Content-Type: "
            + content_type.encode("ascii")
            + b"\r\nLambda-Runtime-Function-Response-Mode: streaming\r\nTransfer-Encoding: chunked\r\n"
            + b"Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n"
        )
        if invocation_id is not None:
            headers += b"Lambda-Runtime-Invocation-Id: " + invocation_id.encode("ascii") + b"\r\n"
        path = _API + b"/invocation/" + request_id.encode("ascii") + b"/response"
        head = b"POST " + path + b" HTTP/1.1\r\n" + self._common_headers + headers + b"\r\n"
        # The connection was used for this invoke's `/next` an instant ago, so it is not a stale one
        # (a streamed body cannot be replayed on a fresh connection like `_exchange` does).
        sock = self._sock if self._sock is not None else self._connect()
        stream = ResponseStream(self, sock)
        stream._send(head)
        return stream

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    # -- transport -------------------------------------------------------------------------------

    def _post(self, path: bytes, headers: bytes, body: bytes) -> Response:
        head = b"POST %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n" % (
            path,
            self._common_headers,
            headers,
            len(body),
        )
        return self._exchange(head, body)

    def _exchange(self, head: bytes, body: bytes) -> Response:
        # A kept-alive connection may have been closed by the server while we were idle (or
        # frozen): if it fails before any response byte arrives, reconnect once and resend.
        for attempt in (1, 2):
            reused = self._sock is not None
            sock = self._sock if self._sock is not None else self._connect()
            try:
                _send(sock, head, body)
                response = self._read_response(sock)
            except (ConnectionError, _ConnectionClosedIdle) as exc:
                nothing_received = self._parser.idle
                self.close()
                if reused and attempt == 1 and nothing_received:
                    continue
                raise RuntimeClientError(f"connection to the Runtime API lost: {exc}") from exc
            except ProtocolError as exc:
                self.close()
                raise RuntimeClientError(f"invalid HTTP response from the Runtime API: {exc}") from exc
            except OSError as exc:
                self.close()
                raise RuntimeClientError(f"Runtime API I/O error: {exc}") from exc
            if not response.keep_alive:
                self.close()
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_response(self, sock: _socket.socket) -> Response:
        parser = self._parser
        while True:
            # A blocking `recv` that a signal can interrupt (SIGTERM while waiting on `/next`:
            # `shutdown`). Linux hands a process-directed signal to the main thread first unless it
            # blocks it (kernel `complete_signal`), and the main thread is the one waiting here, so
            # `recv` fails with EINTR; Python then runs the handler (PEP 475), which may exit or raise
            # (the exception propagates to the caller, like any other), and otherwise resumes the
            # `recv`. Background threads the function starts do not change that (tested), so no
            # polling is needed.
            data = sock.recv(_RECV_BYTES)
            if not data:
                response = parser.feed_eof()
                if response is None:
                    raise _ConnectionClosedIdle("closed by the server before any response byte")
                return response
            responses = parser.feed(data)
            if responses:
                if len(responses) > 1 or not parser.idle:
                    raise ProtocolError("unsolicited bytes after the response")
                return responses[0]

    def _connect(self) -> _socket.socket:
        error: OSError | None = None
        try:
            # An ASCII host is passed as bytes: for a str, getaddrinfo imports the `idna` codec
            # (~1 ms, and ~6 ms more for `re` when nothing else loaded it).
            host: str | bytes = self._host.encode("ascii") if self._host.isascii() else self._host
            addresses = _socket.getaddrinfo(host, self._port, 0, _socket.SOCK_STREAM)
        except OSError as exc:
            raise RuntimeClientError(f"cannot resolve Runtime API host {self._host!r}: {exc}") from exc
        for family, kind, proto, _, address in addresses:
            sock = _socket.socket(family, kind, proto)
            try:
                sock.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
                sock.connect(address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            self._sock = sock
            self._parser = ResponseParser()
            return sock
        raise RuntimeClientError(f"cannot connect to the Runtime API at {self._host}:{self._port}: {error}")


class ResponseStream:
    """One streamed `/response` in progress: `write` sends a chunk at once, `finish` ends the body."""

    def __init__(self, client: RuntimeClient, sock: _socket.socket) -> None:
        self._client = client
        self._sock = sock

    def write(self, data: bytes) -> None:
        if not data:
            return  # an empty chunk would end the chunked body
        size = b"%x\r\n" % len(data)
        if len(data) <= 64 * 1024:
            self._send(size + data + b"\r\n")
        else:
            self._send(size)
            self._send(data)
            self._send(b"\r\n")

    def finish(self, error_type: str | None = None, error_body: bytes | None = None) -> Response:
        """End the body (with the error trailers when `error_type` is given) and read the response."""
        last = b"0\r\n"
        if error_type is not None:
            import binascii  # built in

            last += (
                _error_type_header(error_type) or b"Lambda-Runtime-Function-Error-Type: Runtime.Unknown\r\n"
            )
            encoded = binascii.b2a_base64(error_body or b"", newline=False)
            last += b"Lambda-Runtime-Function-Error-Body: " + encoded + b"\r\n"
        self._send(last + b"\r\n")
        client = self._client
        try:
            response = client._read_response(self._sock)
        except (ConnectionError, _ConnectionClosedIdle, ProtocolError, OSError) as exc:
            client.close()
            raise RuntimeClientError(
                f"streamed response: no valid reply from the Runtime API: {exc}"
            ) from exc
        if not response.keep_alive:
            client.close()
        return response

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            self._client.close()
            raise RuntimeClientError(f"connection to the Runtime API lost while streaming: {exc}") from exc


class _ConnectionClosedIdle(Exception):
    pass


def _send(sock: _socket.socket, head: bytes, body: bytes) -> None:
    if len(body) <= 64 * 1024:
        sock.sendall(head + body)  # one segment for the common small request
    else:
        sock.sendall(head)
        sock.sendall(body)


def _error_type_header(error_type: str) -> bytes:
    # The header is optional and only feeds REPORT/telemetry; skip a value that is not plain ASCII
    # (Python class names may be any Unicode identifier).
    if not error_type or not _HEADER_VALUE_CHARS.issuperset(error_type):
        return b""
    return b"Lambda-Runtime-Function-Error-Type: " + error_type.encode("ascii") + b"\r\n"


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RuntimeClientError(f"AWS_LAMBDA_RUNTIME_API must be host:port, got {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # [::1]:9001
    return host, int(port)
