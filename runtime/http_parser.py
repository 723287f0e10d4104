"""Incremental HTTP/1.1 *response* parser: bytes in, `Response` objects out, no I/O.

Only what a Runtime API client needs (RFC 9112): status line, header section, and a body framed by
`Content-Length`, `Transfer-Encoding: chunked` (chunk extensions and trailers tolerated and ignored)
or the end of the connection. Every input either parses or raises `ProtocolError`; every buffer is
bounded, so a broken or hostile server cannot make the client allocate without limit.
"""

# Imports nothing: this module is on the path to the first response.

MAX_HEADER_BYTES = 64 * 1024
MAX_CHUNK_LINE_BYTES = 4 * 1024
# The largest Runtime API event is 6 MB (sync) and responses are ours to size; 256 MiB leaves room
# for future limits while still refusing a runaway `Content-Length`.
MAX_BODY_BYTES = 256 * 1024 * 1024

_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Field values may hold visible ASCII, SP, HTAB and obs-text (0x80-0xFF); no other control bytes.
_VALUE_CHARS = bytes([0x09, *range(0x20, 0x7F), *range(0x80, 0x100)])
_SECTION_CHARS = _VALUE_CHARS + b"\n"
_HEX_CHARS = b"0123456789abcdefABCDEF"

# Parser states.
_HEAD = 0  # status line and header section, parsed together once the empty line that ends them is in
_BODY_LENGTH = 2
_CHUNK_SIZE = 3
_CHUNK_DATA = 4
_CHUNK_END = 5
_TRAILERS = 6
_BODY_UNTIL_EOF = 7
_CLOSED = 8

_STATE_NAMES = {
    _BODY_LENGTH: "Content-Length body",
    _CHUNK_SIZE: "chunk size line",
    _CHUNK_DATA: "chunk data",
    _CHUNK_END: "CRLF after chunk data",
    _TRAILERS: "trailer section",
}


class ProtocolError(Exception):
    """The peer sent bytes that are not a valid (or not a supported) HTTP/1.1 response."""


class Response:
    """One complete HTTP response. Header names are lower-cased; repeated fields are joined by ", "."""

    __slots__ = ("body", "headers", "http_version", "keep_alive", "reason", "status")

    def __init__(
        self,
        status: int,
        reason: str,
        headers: dict[str, str],
        body: bytes,
        keep_alive: bool,
        http_version: str,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        self.keep_alive = keep_alive
        self.http_version = http_version

    def __repr__(self) -> str:
        return f"Response({self.status} {self.reason!r}, {len(self.body)} body bytes)"


class ResponseParser:
    """Feed it the bytes read from one connection; it returns each response once complete.

    `feed(data)` returns the responses completed by `data` (normally zero or one), `feed_eof()` is
    called when the peer closed the connection. After a response that does not allow keep-alive,
    further bytes are ignored.
    """

    def __init__(
        self,
        max_header_bytes: int = MAX_HEADER_BYTES,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self._max_header_bytes = max_header_bytes
        self._max_body_bytes = max_body_bytes
        self._buf = bytearray()
        self._scan_from = 0  # where to resume searching, so byte-by-byte input stays linear
        self._state = _HEAD
        self._reset_message()

    def _reset_message(self) -> None:
        self._head_bytes = 0
        self._status = 0
        self._reason = ""
        self._version = ""  # set once the status line is parsed
        self._headers: dict[str, str] = {}
        self._keep_alive = True
        self._remaining = 0
        self._body_size = 0
        self._body_parts: list[bytes] = []

    @property
    def idle(self) -> bool:
        """True when no byte of a next response has been received (safe point to reuse or close)."""
        return self._state in (_HEAD, _CLOSED) and not self._buf

    def feed(self, data: bytes) -> list[Response]:
        if self._state == _CLOSED:
            return []
        if self._state == _HEAD and not self._buf:
            response = whole_response(data, self._max_header_bytes, self._max_body_bytes)
            if response is not None:
                return [response]
        self._buf += data
        done: list[Response] = []
        while True:
            response = self._advance()
            if response is None:
                return done
            done.append(response)
            if self._state == _CLOSED:
                self._buf.clear()
                return done

    def feed_eof(self) -> Response | None:
        """The peer closed the connection: finish a read-until-close body or complain."""
        state = self._state
        if state == _BODY_UNTIL_EOF:
            self._body_parts.append(bytes(self._buf))
            self._buf.clear()
            return self._finish()
        if state == _CLOSED or (state == _HEAD and not self._buf):
            self._state = _CLOSED
            return None
        if state == _HEAD:
            what = "header section" if self._version else "status line"
        else:
            what = _STATE_NAMES[state]
        raise ProtocolError(f"connection closed in the middle of the {what}")

    # -- internals -------------------------------------------------------------------------------

    def _take_line(self, limit: int, what: str) -> bytes | None:
        buf = self._buf
        end = buf.find(b"\n", self._scan_from)
        if end < 0:
            if len(buf) > limit:
                raise ProtocolError(f"{what} longer than {limit} bytes")
            self._scan_from = len(buf)
            return None
        if end > limit:
            raise ProtocolError(f"{what} longer than {limit} bytes")
        self._scan_from = 0
        # RFC 9112 2.2: a recipient MAY accept a bare LF as line terminator.
        line = bytes(buf[: end - 1 if end and buf[end - 1] == 0x0D else end])
        del buf[: end + 1]
        return line

    def _take_head(self) -> tuple[bytes, bytes] | None:
        """The status line and the field section, once the empty line ending the section is in.

        One search, one copy and one split per response instead of a pass through the state machine
        per line. Lines end with CRLF or, as RFC 9112 2.2 allows a recipient to accept, a bare LF;
        the section ends at the first empty line ("\n\r\n" or "\n\n"). The field section comes
        back with its lines joined by LF alone.
        """
        buf = self._buf
        limit = self._max_header_bytes
        end = buf.find(b"\n\r\n", self._scan_from)
        if end >= 0:
            bare = buf.find(b"\n\n", self._scan_from, end + 2)
            size = 3
            if bare >= 0:
                end, size = bare, 2
        else:
            end = buf.find(b"\n\n", self._scan_from)
            size = 2
        if end < 0:
            if not self._version:
                self._check_status_line()  # fail fast on a response that is not HTTP at all
            if len(buf) > limit:
                raise ProtocolError(f"response header section longer than {limit} bytes")
            self._scan_from = max(len(buf) - 2, 0)
            return None
        if end + size > limit:
            raise ProtocolError(f"response header section longer than {limit} bytes")
        self._scan_from = 0
        head = bytes(buf[:end])
        del buf[: end + size]
        if head[-1:] == b"\r":
            head = head[:-1]
        # A CR anywhere else than before an LF stays in its line: a control character, refused.
        status_line, _, fields = head.replace(b"\r\n", b"\n").partition(b"\n")
        return status_line, fields

    def _check_status_line(self) -> None:
        buf = self._buf
        end = buf.find(b"\n", self._scan_from)  # an earlier one would have been parsed already
        if end >= 0:
            self._parse_status_line(bytes(buf[: end - 1 if end and buf[end - 1] == 0x0D else end]))

    def _take_head_line(self) -> bytes | None:
        budget = self._max_header_bytes - self._head_bytes
        line = self._take_line(budget, "response header section")
        if line is not None:
            self._head_bytes += len(line) + 2
        return line

    def _take_body_part(self) -> bool:
        """Take what is buffered of the body (or chunk) being read; True once all of it is here."""
        if not self._buf:
            return False
        part = self._take_body(self._remaining)
        self._body_parts.append(part)
        self._remaining -= len(part)
        return not self._remaining

    def _take_body(self, limit: int) -> bytes:
        buf = self._buf
        if len(buf) <= limit:
            part = bytes(buf)
            buf.clear()
        else:
            part = bytes(buf[:limit])
            del buf[:limit]
        return part

    def _advance(self) -> Response | None:
        while True:
            state = self._state
            if state == _HEAD:
                if not self._buf:
                    return None  # the common end of a feed: the previous response took every byte
                head = self._take_head()
                if head is None:
                    return None
                if not self._version:
                    self._parse_status_line(head[0])
                self._headers = _parse_fields(head[1])
                if 100 <= self._status < 200:
                    if self._status == 101:
                        raise ProtocolError("unexpected 101 Switching Protocols")
                    # Interim responses (100 Continue, 103 Early Hints) precede the real one.
                    self._reset_message()
                    continue
                self._start_body()
            elif state == _BODY_LENGTH:
                if self._remaining and not self._take_body_part():
                    return None
                return self._finish()
            elif state == _CHUNK_SIZE:
                line = self._take_line(MAX_CHUNK_LINE_BYTES, "chunk size line")
                if line is None:
                    return None
                size = _parse_chunk_size(line)
                if size == 0:
                    self._head_bytes = 0  # trailers get their own header-section budget
                    self._state = _TRAILERS
                    continue
                self._body_size += size
                if self._body_size > self._max_body_bytes:
                    raise ProtocolError(f"chunked body larger than {self._max_body_bytes} bytes")
                self._remaining = size
                self._state = _CHUNK_DATA
            elif state == _CHUNK_DATA:
                if not self._take_body_part():
                    return None
                self._state = _CHUNK_END
            elif state == _CHUNK_END:
                line = self._take_line(MAX_CHUNK_LINE_BYTES, "chunk terminator")
                if line is None:
                    return None
                if line:
                    raise ProtocolError("chunk data not followed by CRLF")
                self._state = _CHUNK_SIZE
            elif state == _TRAILERS:
                line = self._take_head_line()
                if line is None:
                    return None
                if not line:
                    return self._finish()
                # Trailer fields are validated like headers, then ignored (nothing the Runtime
                # API sends in trailers matters to a runtime client).
                _split_field(line)
            elif state == _BODY_UNTIL_EOF:
                if len(self._buf) > self._max_body_bytes - self._body_size:
                    raise ProtocolError(f"body larger than {self._max_body_bytes} bytes")
                return None
            else:  # _CLOSED
                return None

    def _parse_status_line(self, line: bytes) -> None:
        parts = line.split(b" ", 2)
        version = parts[0]
        if version == b"HTTP/1.1":
            self._keep_alive = True
        elif version == b"HTTP/1.0":
            self._keep_alive = False
        else:
            raise ProtocolError(f"not an HTTP/1.x status line: {line[:80]!r}")
        if len(parts) < 2:
            raise ProtocolError(f"status line without status code: {line[:80]!r}")
        code = parts[1]
        if len(code) != 3 or not code.isdigit():
            raise ProtocolError(f"bad status code in status line: {line[:80]!r}")
        reason = parts[2] if len(parts) == 3 else b""
        if reason.translate(None, _VALUE_CHARS):
            raise ProtocolError("control character in status line reason phrase")
        self._version = version.decode("ascii")
        self._status = int(code)
        self._reason = reason.decode("latin-1")

    def _start_body(self) -> None:
        headers = self._headers
        connection = headers.get("connection")
        if connection is not None:
            tokens = {token.strip().lower() for token in connection.split(",")}
            if "close" in tokens:
                self._keep_alive = False
            elif "keep-alive" in tokens:
                self._keep_alive = True
        status = self._status
        if status == 204 or status == 304:
            self._remaining = 0
            self._state = _BODY_LENGTH
            return
        transfer_encoding = headers.get("transfer-encoding")
        if transfer_encoding is not None:
            codings = [coding.strip().lower() for coding in transfer_encoding.split(",")]
            if codings != ["chunked"]:
                raise ProtocolError(f"unsupported Transfer-Encoding: {transfer_encoding!r}")
            if "content-length" in headers:
                # RFC 9112 6.3: chunked wins, and the connection must not be reused.
                self._keep_alive = False
            self._state = _CHUNK_SIZE
            return
        content_length = headers.get("content-length")
        if content_length is not None:
            length = _parse_content_length(content_length)
            if length > self._max_body_bytes:
                raise ProtocolError(f"Content-Length {length} exceeds {self._max_body_bytes} bytes")
            self._remaining = length
            self._state = _BODY_LENGTH
            return
        self._keep_alive = False
        self._state = _BODY_UNTIL_EOF

    def _finish(self) -> Response:
        parts = self._body_parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        response = Response(self._status, self._reason, self._headers, body, self._keep_alive, self._version)
        keep_alive = self._keep_alive
        self._reset_message()
        self._state = _HEAD if keep_alive else _CLOSED
        return response


# The status lines the Runtime API sends on the warm path, parsed once: (status, reason, version).
_KNOWN_STATUS_LINES = {
    b"HTTP/1.1 200 OK": (200, "OK", "HTTP/1.1"),
    b"HTTP/1.1 202 Accepted": (202, "Accepted", "HTTP/1.1"),
}


def whole_response(data: bytes, max_header_bytes: int, max_body_bytes: int) -> Response | None:
    """The common case, parsed from `data` alone: one read holding exactly one kept-alive HTTP/1.1
    response with a CRLF head, distinct well-formed fields and a `Content-Length` body that is all
    here. No copy into the parser's buffer and out again, one search, one decode and one split.

    Anything else (a partial read, bare LFs, a repeated field, `Connection`, chunked, 1xx/204/304,
    any byte the general path would refuse) returns None, for `ResponseParser`'s general path to
    parse or to refuse with its own error: this never raises, and it accepts only what the general
    path parses to the same `Response` (tests/runtime/test_runtime_http_parser.py checks both).
    """
    end = data.find(b"\r\n\r\n")
    if end < 0 or end + 4 > max_header_bytes:
        return None
    head = data[:end]
    # The only bytes outside field-value characters (visible ASCII, SP, HTAB, obs-text) may be the
    # CRLF pairs in the head: a bare CR or LF, or any other control byte, would be one more.
    if len(head.translate(None, _VALUE_CHARS)) != 2 * head.count(b"\r\n"):
        return None
    lines = head.decode("latin-1").split("\r\n")
    status_line = _KNOWN_STATUS_LINES.get(head[: head.find(b"\r\n")] if len(lines) > 1 else head)
    if status_line is None:
        status_line = _plain_status_line(lines[0])
        if status_line is None:
            return None
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon:
            return None
        headers[name.lower()] = value.strip(" \t")
    if (
        len(headers) != len(lines) - 1  # a repeated field: the general path joins them
        or "" in headers
        or "".join(headers).encode("latin-1", "replace").translate(None, _TOKEN_CHARS)
        or "connection" in headers
        or "transfer-encoding" in headers
    ):
        return None
    length = headers.get("content-length")
    if (
        length is None
        or not length.isdigit()
        or not length.isascii()
        or len(length) > 18
        or int(length) != len(data) - end - 4
        or int(length) > max_body_bytes
    ):
        return None
    return Response(status_line[0], status_line[1], headers, data[end + 4 :], True, status_line[2])


def _plain_status_line(line: str) -> tuple[int, str, str] | None:
    """An HTTP/1.1 status line with a final status that frames its body by Content-Length; else None.
    The caller has checked that it holds no control character."""
    version, _, rest = line.partition(" ")
    code, _, reason = rest.partition(" ")
    if (
        version != "HTTP/1.1"
        or len(code) != 3
        or not code.isascii()
        or not code.isdigit()
        or code[0] in "01"
        or code == "204"
        or code == "304"
    ):
        return None
    return int(code), reason, version


def _parse_fields(section: bytes) -> dict[str, str]:
    """The field lines (LF-separated): names lower-cased, repeated fields joined by ", "."""
    if not section:
        return {}
    # The common case with one check per kind over the whole section: no control byte anywhere, a
    # colon on every line, no repeated name, and all names (lower-cased: that maps token characters
    # to token characters and others to others) made of token characters. Anything else goes line by
    # line, which joins repeated fields and names the problem.
    if not section.translate(None, _SECTION_CHARS):
        lines = section.decode("latin-1").split("\n")
        headers: dict[str, str] = {}
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon:
                break
            headers[name.lower()] = value.strip(" \t")
        else:
            if (
                len(headers) == len(lines)
                and "" not in headers
                and not "".join(headers).encode("latin-1", "replace").translate(None, _TOKEN_CHARS)
            ):
                return headers
    headers = {}
    for field_line in section.split(b"\n"):
        key, text = _split_field(field_line)
        previous = headers.get(key)
        headers[key] = text if previous is None else previous + ", " + text
    return headers


def _split_field(line: bytes) -> tuple[str, str]:
    if line[0] in b" \t":
        raise ProtocolError("obsolete line folding in header section")
    colon = line.find(b":")
    if colon <= 0:
        raise ProtocolError(f"malformed header line: {line[:80]!r}")
    name = line[:colon]
    if name.translate(None, _TOKEN_CHARS):
        raise ProtocolError(f"invalid header name: {name[:80]!r}")
    value = line[colon + 1 :].strip(b" \t")
    if value.translate(None, _VALUE_CHARS):
        raise ProtocolError(f"control character in value of header {name.decode('ascii')!r}")
    return name.decode("ascii").lower(), value.decode("latin-1")


def _parse_content_length(value: str) -> int:
    if value.isdigit() and value.isascii() and len(value) <= 18:
        return int(value)
    # A repeated but consistent Content-Length ("5, 5") is tolerated (RFC 9110 8.6).
    candidates = {item.strip() for item in value.split(",")}
    if len(candidates) != 1:
        raise ProtocolError(f"conflicting Content-Length values: {value!r}")
    digits = candidates.pop()
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > 18:
        raise ProtocolError(f"invalid Content-Length: {value!r}")
    return int(digits)


def _parse_chunk_size(line: bytes) -> int:
    size = line.split(b";", 1)[0].strip(b" \t")
    if not size or len(size) > 16 or size.translate(None, _HEX_CHARS):
        raise ProtocolError(f"invalid chunk size line: {line[:80]!r}")
    return int(size, 16)
