"""peers.py: finding the process at the other end of an accepted loopback connection.

Real sockets and real processes: a child connects to a listener of ours and tells us its socket's inode;
every way of looking the peer up must find that socket and that child, and nobody else."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from rapidboot.rapid_server.data_plane.peers import (
    NetlinkSocketTable,
    PeerCheck,
    PeerLookupError,
    ProcNetSocketTable,
    SocketTable,
    _proc_address,
    detect_peer_check,
)

_CONNECT = """
import os, socket, sys
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
print(os.fstat(sock.fileno()).st_ino, flush=True)
sys.stdin.readline()
"""


@dataclass
class Peer:
    process: subprocess.Popen[str]
    inode: int
    accepted: socket.socket


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        yield sock


@pytest.fixture
def peer(listener: socket.socket) -> Iterator[Peer]:
    """A child process connected to `listener`, holding its socket until told to exit."""
    port = str(listener.getsockname()[1])
    process = subprocess.Popen(
        [sys.executable, "-c", _CONNECT, port], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    inode = int(process.stdout.readline())
    accepted, _ = listener.accept()
    try:
        yield Peer(process, inode, accepted)
    finally:
        accepted.close()
        process.communicate("", timeout=10)


def table_named(name: str) -> SocketTable:
    if name == "sock_diag":
        try:
            return NetlinkSocketTable()
        except PeerLookupError as exc:
            pytest.skip(str(exc))
    return ProcNetSocketTable()


@pytest.fixture(params=["sock_diag", "/proc/net/tcp"])
def check(request: pytest.FixtureRequest) -> Iterator[PeerCheck]:
    peer_check = PeerCheck(table_named(request.param))
    yield peer_check
    peer_check.close()


@pytest.fixture
def bystander() -> Iterator[int]:
    """A process that is neither the peer nor its ancestor."""
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        yield process.pid
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(10)


def test_the_peer_socket_is_found_by_its_four_tuple(check: PeerCheck, peer: Peer) -> None:
    assert check.peer_inode(peer.accepted) == peer.inode


def test_the_peer_and_its_ancestors_own_the_connection(check: PeerCheck, peer: Peer) -> None:
    assert check.owned_by(peer.accepted, peer.process.pid)
    assert check.owned_by(peer.accepted, os.getpid())  # the peer is a descendant of this process


def test_any_other_process_does_not(check: PeerCheck, peer: Peer, bystander: int) -> None:
    assert not check.owned_by(peer.accepted, bystander)
    assert check.foreign_owner(peer.accepted) == peer.process.pid


def test_a_peer_that_has_gone_owns_nothing(check: PeerCheck, peer: Peer) -> None:
    peer.process.communicate("", timeout=10)
    assert not check.owned_by(peer.accepted, peer.process.pid)
    assert not check.owned_by(peer.accepted, os.getpid())


def test_without_a_lookup_everyone_is_admitted(peer: Peer, bystander: int) -> None:
    check = PeerCheck(None, "no /proc here")
    assert not check.enabled
    assert check.owned_by(peer.accepted, bystander)
    assert check.foreign_owner(peer.accepted) is None
    assert check.description == "Runtime API: open to any local process (no /proc here)"


def test_a_failing_lookup_admits(peer: Peer, bystander: int) -> None:
    class Broken(SocketTable):
        name = "broken"

        def inode(self, family: int, local: tuple[str, int], remote: tuple[str, int]) -> int:
            raise PeerLookupError("cannot read")

    assert PeerCheck(Broken()).owned_by(peer.accepted, bystander)


def test_detection_chooses_a_working_lookup_here() -> None:
    check = detect_peer_check()
    try:
        assert check.enabled, check.description
        assert check.description.startswith("Runtime API: only each environment's own processes")
    finally:
        check.close()


def test_proc_net_addresses_are_words_in_host_order() -> None:
    word = "0100007F" if sys.byteorder == "little" else "7F000001"
    assert _proc_address(socket.AF_INET, "127.0.0.1", 8080) == f"{word}:1F90"
    assert _proc_address(socket.AF_INET6, "::1", 1).endswith(":0001")
