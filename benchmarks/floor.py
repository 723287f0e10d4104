"""The physical floor of a warm invoke on this machine: the event's bytes through two loopback round trips of
a bare socket ping-pong, measured in the same run as the servers.

A warm invoke moves the event twice and the result twice: caller -> server -> runtime, then runtime ->
server -> caller. No server can do it in less than two round trips of the same bytes between processes, so
this is the floor: a separate process that echoes length-prefixed frames, no HTTP, no JSON, and a client
that sends the payload, reads it back, and does it again. `ours / floor` says how much of a warm invoke is
the server's and the runtime's own work.

    python benchmarks/floor.py [--payload-bytes 1024] [--samples 2000]
"""

from __future__ import annotations

import argparse
import socket
import struct
import subprocess
import sys
import time

from rapidboot.benchmarks.stats import summarize

FRAME = struct.Struct("!Q")
ECHO = """\
import socket, struct, sys
FRAME = struct.Struct("!Q")
listener = socket.create_server(("127.0.0.1", 0))
print(listener.getsockname()[1], flush=True)
conn, _ = listener.accept()
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
buffer = bytearray(1 << 16)
def read(view, size):
    have = 0
    while have < size:
        got = conn.recv_into(view[have:size])
        if not got:
            sys.exit(0)
        have += got
header = bytearray(FRAME.size)
while True:
    read(memoryview(header), FRAME.size)
    (size,) = FRAME.unpack(header)
    if size > len(buffer):
        buffer = bytearray(size)
    read(memoryview(buffer), size)
    conn.sendmsg([header, memoryview(buffer)[:size]])
"""


class FloorClient:
    """Looks like the invoke client to the warm benchmark: `post` is two round trips of the body."""

    def __init__(self) -> None:
        self._echo = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", ECHO], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
        )
        assert self._echo.stdout is not None
        port = int(self._echo.stdout.readline())  # the echo's readiness line: its port
        self._sock = socket.create_connection(("127.0.0.1", port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = bytearray(1 << 16)

    def post(self, path: str, body: bytes) -> tuple[int, dict[bytes, bytes], bytes | bytearray]:
        """Two round trips; the answer is the body sent (the echo's is checked by its length only: a copy
        of 3 MB out of the receive buffer would be timed as part of the floor)."""
        for _ in range(2):
            self._round_trip(body)
        return 200, {}, body

    def _round_trip(self, body: bytes) -> None:
        size = len(body)
        sent = self._sock.sendmsg([FRAME.pack(size), body])
        if sent < FRAME.size + size:
            self._sock.sendall((FRAME.pack(size) + body)[sent:])
        if len(self._buffer) < FRAME.size + size:
            self._buffer = bytearray(FRAME.size + size)
        view = memoryview(self._buffer)
        have = 0
        while have < FRAME.size + size:
            got = self._sock.recv_into(view[have : FRAME.size + size])
            if not got:
                raise ConnectionError("the echo process closed the connection")
            have += got
        if FRAME.unpack_from(self._buffer)[0] != size:
            raise ConnectionError("the echo answered a frame of another size")

    def close(self) -> None:
        self._sock.close()
        self._echo.wait(timeout=5)
        if self._echo.stdout is not None:
            self._echo.stdout.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--payload-bytes", type=int, default=1024)
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    payload = b"x" * args.payload_bytes
    client = FloorClient()
    try:
        timings = []
        for _ in range(args.samples):
            start = time.perf_counter()
            client.post("", payload)
            timings.append((time.perf_counter() - start) * 1000)
    finally:
        client.close()
    s = summarize(timings)
    print(f"floor, {args.payload_bytes} B: p50 {s.median * 1000:.0f} us  p99 {s.p99 * 1000:.0f} us")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
