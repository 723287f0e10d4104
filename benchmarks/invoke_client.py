"""The invoke client of the latency benchmarks: one keep-alive HTTP/1.1 connection over a raw socket, one
request at a time, so that what is timed is the server and not its client.

A general client costs more than the server it measures: a 3 MB warm invoke took 89 ms through httpx and
28 ms through curl here. This one sends the head and the body with one `sendmsg` (no copy of the body), reads
the response head, then exactly Content-Length bytes into a buffer sized once (or the chunks of a chunked
body: AWS's emulator answers large bodies chunked). It knows only what the servers measured here answer;
anything else is an error, not a guess.

The floor of the same run (`floor.py`) is the same bytes through two bare-socket round trips.
"""

from __future__ import annotations

import socket

RECV_BYTES = 1 << 20


class InvokeClient:
    """`post(path, body)` -> (status, headers with lower-case names, body)."""

    def __init__(self, host: str, port: int) -> None:
        self._sock = socket.create_connection((host, port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray()  # bytes read past the previous response (none, for a well-behaved server)

    def post(self, path: str, body: bytes) -> tuple[int, dict[bytes, bytes], bytes | bytearray]:
        head = f"POST {path} HTTP/1.1\r\nHost: bench\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        sent = self._sock.sendmsg([head, body])
        if sent < len(head) + len(body):  # a large body does not fit the socket buffer at once
            rest = (
                memoryview(head + body)[sent:] if sent < len(head) else memoryview(body)[sent - len(head) :]
            )
            self._sock.sendall(rest)
        status, headers = self._read_head()
        length = headers.get(b"content-length")
        if length is not None:
            return status, headers, self._read_exactly(int(length))
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            return status, headers, self._read_chunked()
        raise ConnectionError(f"a response with neither Content-Length nor chunked encoding: {headers!r}")

    def close(self) -> None:
        self._sock.close()

    def _fill(self) -> None:
        data = self._sock.recv(RECV_BYTES)
        if not data:
            raise ConnectionError("the server closed the connection")
        self._buffer += data

    def _read_line(self) -> bytes:
        while (end := self._buffer.find(b"\r\n")) < 0:
            self._fill()
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def _read_head(self) -> tuple[int, dict[bytes, bytes]]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            self._fill()
        lines = bytes(self._buffer[:end]).split(b"\r\n")
        del self._buffer[: end + 4]
        status = int(lines[0].split(b" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def _read_exactly(self, size: int) -> bytes | bytearray:
        if len(self._buffer) >= size:
            ready = bytes(self._buffer[:size])
            del self._buffer[:size]
            return ready
        body = bytearray(size)
        view = memoryview(body)
        have = len(self._buffer)
        view[:have] = self._buffer
        self._buffer.clear()
        while have < size:
            received = self._sock.recv_into(view[have:], size - have)
            if not received:
                raise ConnectionError("the server closed the connection mid-body")
            have += received
        return body  # not copied into `bytes`: 3 MB would add a copy to every timed invoke

    def _read_chunked(self) -> bytes:
        parts: list[bytes | bytearray] = []
        while True:
            size = int(self._read_line().split(b";", 1)[0], 16)
            if size == 0:
                while self._read_line():  # trailers, then the empty line
                    pass
                return b"".join(parts)
            parts.append(self._read_exactly(size))
            self._read_line()
