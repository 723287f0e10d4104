"""The pure response parser: raw bytes in, responses or ProtocolError out."""

from __future__ import annotations

import contextlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rapidboot.runtime.http_parser import (
    MAX_BODY_BYTES,
    MAX_HEADER_BYTES,
    ProtocolError,
    Response,
    ResponseParser,
    whole_response,
)

SIMPLE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nLambda-Runtime-Aws-Request-Id: abc\r\n\r\n"
    b"5;name=value;x\r\nhello\r\n"
    b"6\r\n world\r\n"
    b"0;last\r\nTrailer-One: 1\r\nTrailer-Two: 2\r\n\r\n"
)


def feed_all(data: bytes, splits: list[int] | None = None) -> list[Response]:
    parser = ResponseParser()
    out: list[Response] = []
    points = sorted({0, len(data), *(splits or [])})
    for start, end in itertools.pairwise(points):
        out += parser.feed(data[start:end])
    last = parser.feed_eof()
    return out + ([last] if last is not None else [])


def test_content_length() -> None:
    [response] = feed_all(SIMPLE)
    assert (response.status, response.reason, response.body) == (200, "OK", b"{}")
    assert response.headers == {"content-type": "application/json", "content-length": "2"}
    assert response.keep_alive


def test_chunked_with_extensions_and_trailers() -> None:
    [response] = feed_all(CHUNKED)
    assert response.body == b"hello world"
    assert response.headers["lambda-runtime-aws-request-id"] == "abc"


@pytest.mark.parametrize("message", [SIMPLE, CHUNKED], ids=["length", "chunked"])
def test_every_split_point(message: bytes) -> None:
    expected = feed_all(message)[0]
    for split in range(len(message) + 1):
        [response] = feed_all(message, [split])
        assert (response.status, response.headers, response.body) == (
            expected.status,
            expected.headers,
            expected.body,
        )
    # and one byte at a time
    [response] = feed_all(message, list(range(len(message))))
    assert response.body == expected.body


def test_keep_alive_sequence_in_one_feed() -> None:
    parser = ResponseParser()
    responses = parser.feed(SIMPLE + CHUNKED + SIMPLE)
    assert [r.body for r in responses] == [b"{}", b"hello world", b"{}"]
    assert parser.idle


def test_case_insensitive_names_and_repeated_fields() -> None:
    data = b"HTTP/1.1 202 Accepted\r\ncOnTeNt-LeNgTh: 0\r\nX-A: 1\r\nx-a: 2\r\n\r\n"
    [response] = feed_all(data)
    assert response.headers == {"content-length": "0", "x-a": "1, 2"}


def test_connection_close_and_body_until_eof() -> None:
    parser = ResponseParser()
    assert parser.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc") == []
    assert parser.feed(b"def") == []
    response = parser.feed_eof()
    assert response is not None and response.body == b"abcdef" and not response.keep_alive
    [closing] = ResponseParser().feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx")
    assert not closing.keep_alive


def test_http10_and_bare_lf_and_no_reason() -> None:
    [response] = feed_all(b"HTTP/1.0 204\nX: y\n\n")
    assert (response.status, response.reason, response.body, response.keep_alive) == (204, "", b"", False)


def test_interim_100_continue_is_skipped() -> None:
    [response] = feed_all(b"HTTP/1.1 100 Continue\r\n\r\n" + SIMPLE)
    assert response.status == 200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"HTTP/2 200 OK\r\n\r\n", "not an HTTP/1.x status line"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "bad status code"),
        (b"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "invalid header name"),
        (b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n", "obsolete line folding"),
        (b"HTTP/1.1 200 OK\r\nX: a\x00b\r\n\r\n", "control character"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "invalid Content-Length"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n", "conflicting Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "unsupported Transfer-Encoding"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "invalid chunk size"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", "not followed by CRLF"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "in the middle of the Content-Length body"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "in the middle of the header section"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "in the middle of the chunk data"),
        (b"HTTP/1.1 101 Switching\r\n\r\n", "101"),
    ],
)
def test_protocol_errors_name_the_problem(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        feed_all(data)


def test_bounds() -> None:
    with pytest.raises(ProtocolError, match="longer than"):
        ResponseParser().feed(b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000)
    with pytest.raises(ProtocolError, match="longer than"):
        ResponseParser().feed(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000)
    with pytest.raises(ProtocolError, match="exceeds"):
        ResponseParser(max_body_bytes=10).feed(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n")
    with pytest.raises(ProtocolError, match="chunk size line longer"):
        ResponseParser().feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"e" * 5000)
    with pytest.raises(ProtocolError, match="larger than"):
        ResponseParser(max_body_bytes=4).feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n")
    with pytest.raises(ProtocolError, match="invalid Content-Length"):
        ResponseParser().feed(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n")


# -- property tests --------------------------------------------------------------------------------

split_lists = st.lists(st.integers(min_value=0, max_value=4096), max_size=8)


@settings(max_examples=400, deadline=None)
@given(data=st.binary(max_size=300), splits=split_lists)
def test_any_bytes_parse_or_raise_protocol_error(data: bytes, splits: list[int]) -> None:
    with contextlib.suppress(ProtocolError):
        feed_all(data, splits)


http_prefix = st.sampled_from(
    [
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n",
        b"HTTP/1.0 500 E\r\n\r\n",
    ]
)


@settings(max_examples=400, deadline=None)
@given(prefix=http_prefix, data=st.binary(max_size=200), splits=split_lists)
def test_valid_prefix_then_garbage_never_crashes(prefix: bytes, data: bytes, splits: list[int]) -> None:
    with contextlib.suppress(ProtocolError):
        feed_all(prefix + data, splits)


TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-!#$%&'*+.^_`|~",
    min_size=1,
    max_size=20,
)
VALUE = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=30
)


@st.composite
def responses(draw: st.DrawFn) -> tuple[bytes, int, dict[str, str], bytes]:
    status = draw(st.sampled_from([200, 202, 400, 403, 404, 413, 500, 502]))
    reason = draw(st.text(alphabet="ABCDEFGHIJ abc", max_size=15))
    names = draw(st.lists(TOKEN, max_size=6, unique_by=str.lower))
    names = [n for n in names if n.lower() not in ("content-length", "transfer-encoding", "connection")]
    headers = {name: draw(VALUE) for name in names}
    body = draw(st.binary(max_size=600))
    chunked = draw(st.booleans())
    head = f"HTTP/1.1 {status} {reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    if chunked:
        pieces = []
        rest = body
        while rest:
            size = draw(st.integers(min_value=1, max_value=len(rest)))
            ext = draw(st.sampled_from(["", ";a=b", ";x", ' ;q="s"']))
            pieces.append(b"%X%s\r\n%s\r\n" % (size, ext.encode(), rest[:size]))
            rest = rest[size:]
        trailers = draw(st.sampled_from([b"", b"T: 1\r\n", b"A: b\r\nC: d\r\n"]))
        wire = (
            (head + "Transfer-Encoding: chunked\r\n\r\n").encode("latin-1")
            + b"".join(pieces)
            + b"0\r\n"
            + trailers
            + b"\r\n"
        )
    else:
        wire = (head + f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
    expected = {k.lower(): v.strip(" \t") for k, v in headers.items()}
    return wire, status, expected, body


@settings(max_examples=300, deadline=None)
@given(
    messages=st.lists(responses(), min_size=1, max_size=3), splits=st.lists(st.integers(0, 3000), max_size=10)
)
def test_valid_responses_round_trip(
    messages: list[tuple[bytes, int, dict[str, str], bytes]], splits: list[int]
) -> None:
    wire = b"".join(m[0] for m in messages)
    parsed = feed_all(wire, splits)
    assert len(parsed) == len(messages)
    for response, (_, status, headers, body) in zip(parsed, messages, strict=True):
        assert response.status == status
        assert response.body == body
        for name, value in headers.items():
            assert response.headers[name] == value
        assert response.keep_alive


# -- the head in one pass ----------------------------------------------------------------------------


def test_head_with_mixed_line_endings() -> None:
    data = b"HTTP/1.1 200 OK\r\nA: 1\nB:  2 \t\r\nA: 3\n\r\n"  # bare LFs, repeated field, OWS
    [response] = feed_all(data)
    assert response.headers == {"a": "1, 3", "b": "2"}
    [response] = feed_all(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nhi")
    assert (response.headers, response.body) == ({"content-length": "2"}, b"hi")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", "control character"),  # a CR not before an LF
        (b"HTTP/1.1 200 OK\r\nX: a\r\r\n\r\n", "control character"),
        (b"HTTP/1.1 200 OK\r\n: v\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nA: 1\r\nB\r\n\r\n", "malformed header line"),
        (b"HTTP/1.1 200 OK\r\nN\xe9: v\r\n\r\n", "invalid header name"),
        (b"HTTP/1.1 200 OK\r\nX : v\r\n\r\n", "invalid header name"),
        (b"\r\n\r\n", "not an HTTP/1.x status line"),
    ],
)
def test_head_errors_name_the_line(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        feed_all(data)


def test_bad_status_line_fails_before_the_header_section_ends() -> None:
    parser = ResponseParser()
    with pytest.raises(ProtocolError, match=r"not an HTTP/1\.x status line"):
        parser.feed(b"SSH-2.0-OpenSSH\r\nmore")


def test_eof_message_names_status_line_or_header_section() -> None:
    with pytest.raises(ProtocolError, match="middle of the status line"):
        feed_all(b"HTTP/1.1 20")
    with pytest.raises(ProtocolError, match="middle of the header section"):
        feed_all(b"HTTP/1.1 200 OK\r\nX: 1\r\n")


@settings(max_examples=300, deadline=None)
@given(
    messages=st.lists(responses(), min_size=1, max_size=3),
    splits=st.lists(st.integers(0, 3000), max_size=10),
    bare_lf=st.booleans(),
)
def test_valid_responses_round_trip_with_bare_lf_heads(
    messages: list[tuple[bytes, int, dict[str, str], bytes]], splits: list[int], bare_lf: bool
) -> None:
    wire = b""
    for raw, *_ in messages:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        wire += (head.replace(b"\r\n", b"\n") + b"\n\n" if bare_lf else head + sep) + rest
    parsed = feed_all(wire, splits)
    assert len(parsed) == len(messages)
    for response, (_, status, headers, body) in zip(parsed, messages, strict=True):
        assert (response.status, response.body) == (status, body)
        assert all(response.headers[name] == value for name, value in headers.items())


# -- the one-read fast path (`whole_response`) against the general parser -----------------------------


def _general(data: bytes) -> list[Response] | ProtocolError:
    """What the general, incremental path makes of `data` (a first byte fed alone skips the fast path)."""
    parser = ResponseParser()
    try:
        return parser.feed(data[:1]) + parser.feed(data[1:])
    except ProtocolError as exc:
        return exc


def _same(fast: Response, general: Response) -> bool:
    return (fast.status, fast.reason, fast.headers, fast.body, fast.keep_alive, fast.http_version) == (
        general.status,
        general.reason,
        general.headers,
        general.body,
        general.keep_alive,
        general.http_version,
    )


def _check_fast_path_agrees(data: bytes) -> Response | None:
    fast = whole_response(data, MAX_HEADER_BYTES, MAX_BODY_BYTES)
    general = _general(data)
    if fast is not None:
        # Accepted by the fast path: exactly one response, the one the general path parses.
        assert isinstance(general, list), general
        assert len(general) == 1
        assert _same(fast, general[0])
    # And `feed` as the client calls it (fast path first) gives what the general path gives.
    try:
        fed: list[Response] | ProtocolError = ResponseParser().feed(data)
    except ProtocolError as exc:
        fed = exc
    if isinstance(general, ProtocolError):
        assert isinstance(fed, ProtocolError)
        assert str(fed) == str(general)
    elif isinstance(fed, list):
        assert all(_same(a, b) for a, b in zip(fed, general, strict=False))
    return fast


def test_fast_path_takes_the_runtime_api_responses() -> None:
    event = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nLambda-Runtime-Aws-Request-Id: r-1\r\n"
        b"Lambda-Runtime-Deadline-Ms: 1700000000000\r\nContent-Length: 2\r\n\r\n{}"
    )
    accepted = (
        b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n"
        b'{"status":"OK"}'
    )
    for data in (event, accepted, b"HTTP/1.1 413 Too Big\r\nContent-Length: 0\r\n\r\n"):
        assert _check_fast_path_agrees(data) is not None


@pytest.mark.parametrize(
    "data",
    [
        SIMPLE[:-1],  # body not all here
        SIMPLE + b"H",  # the start of a next response
        CHUNKED,
        b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: 1\r\nA: 2\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1, 1\r\n\r\nx",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\nContent-Length: 0\r\n\r\n",  # a bare LF
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\nContent-Length: 0\r\n\r\n",  # a bare CR
        b"HTTP/1.1 200 OK\r\nX: \x00\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nN\xe9: v\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n X: v\r\nContent-Length: 0\r\n\r\n",  # obsolete line folding
        b"HTTP/1.1 2\xb2\xb2 OK\r\nContent-Length: 0\r\n\r\n",  # non-ASCII digits
        b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
    ],
)
def test_fast_path_leaves_anything_else_to_the_general_path(data: bytes) -> None:
    assert _check_fast_path_agrees(data) is None


def test_fast_path_keeps_the_bounds() -> None:
    head = b"HTTP/1.1 200 OK\r\nX: " + b"a" * 200 + b"\r\nContent-Length: 4\r\n\r\n"
    assert whole_response(head + b"body", len(head) - 1, 100) is None
    assert whole_response(head + b"body", len(head), 3) is None
    assert whole_response(head + b"body", len(head), 4) is not None
    with pytest.raises(ProtocolError, match="longer than"):
        ResponseParser(max_header_bytes=len(head) - 1).feed(head + b"body")
    with pytest.raises(ProtocolError, match="exceeds 3 bytes"):
        ResponseParser(max_header_bytes=len(head), max_body_bytes=3).feed(head + b"body")


@settings(max_examples=300, deadline=None)
@given(message=responses())
def test_fast_path_agrees_with_the_general_path(
    message: tuple[bytes, int, dict[str, str], bytes],
) -> None:
    wire = message[0]
    fast = _check_fast_path_agrees(wire)
    if b"Transfer-Encoding" not in wire:
        assert fast is not None  # a plain Content-Length response is the fast path's own case


@settings(max_examples=500, deadline=None)
@given(
    message=responses(),
    edits=st.lists(
        st.tuples(st.integers(0, 400), st.sampled_from(list(b"\x00\t\r\n :,\x7f\xb2\xe9aA1 "))), max_size=3
    ),
    cut=st.integers(0, 2000),
)
def test_fast_path_agrees_on_damaged_responses(
    message: tuple[bytes, int, dict[str, str], bytes], edits: list[tuple[int, int]], cut: int
) -> None:
    data = bytearray(message[0])
    for position, byte in edits:
        data.insert(min(position, len(data)), byte)
    _check_fast_path_agrees(bytes(data[: max(cut, 1)]))
    _check_fast_path_agrees(bytes(data))
