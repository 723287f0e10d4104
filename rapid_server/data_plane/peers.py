"""Who is at the other end of a Runtime API connection.

On Lambda an environment is a microVM: nothing outside it can reach its Runtime API. Here every
environment's listener is on the host's loopback, where any local process can connect, read another
function's `AWS_LAMBDA_RUNTIME_API` from /proc/PID/environ, and answer (or steal) its invokes. So each
accepted connection is admitted only if its peer socket is held by the environment's runtime or one of its
descendants; anyone else's connection is closed before a byte of it is read.

How the peer is found, once per connection (a runtime keeps one keep-alive connection, so this is not
paid per invoke):
1. the peer socket's inode, from its 4-tuple: an exact NETLINK_SOCK_DIAG lookup (inet_diag, one
   request and one answer, ~15 us on the 2-core machine), else a scan of /proc/net/tcp[6], whose cost grows
   with every socket on the host;
2. whether a process of the environment holds `socket:[inode]` among its /proc/PID/fd links: the
   runtime first (the usual peer), then the rest of its process tree.
The connecting process holds its descriptor from socket() on, before connect() returns, so a connection
just accepted always shows its owner; one whose socket has been closed already has none and is refused.

Not chosen: a network namespace per environment (needs privileges the server usually lacks, and takes
the host's network from the function, which Lambda functions have); Unix sockets with SO_PEERCRED (the
contract's AWS_LAMBDA_RUNTIME_API is host:port).

Where this cannot work (no /proc, no visible sockets), the server says so at start and admits everyone.
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
from collections.abc import Callable, Iterable

from ..host import LINUX, Host
from .memory import process_tree

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_NLMSG_ERROR = 2
_NLMSG_HEADER = struct.Struct("=IHHII")
_ALL_STATES = 0xFFFFFFFF
_NO_COOKIE = 0xFFFFFFFF
# inet_diag_msg: family, state, timer, retrans (4 bytes), the socket id (48), expires, rqueue, wqueue,
# uid, then the inode.
_INODE_OFFSET = _NLMSG_HEADER.size + 4 + 48 + 16


class PeerLookupError(Exception):
    """The peer socket could not be looked up here at all (not: it has no owner)."""


class SocketTable:
    """Finds a TCP socket's inode from its 4-tuple."""

    name = "none"

    def inode(self, family: int, local: tuple[str, int], remote: tuple[str, int]) -> int:
        """The inode of the socket bound to `local` and connected to `remote`; 0 if it has none (gone
        or orphaned). Raises PeerLookupError if the table cannot be read."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class NetlinkSocketTable(SocketTable):
    """inet_diag exact lookup by socket id: the kernel answers from its hash tables, O(1) in the number of
    sockets. Unprivileged, stdlib `socket` only."""

    name = "sock_diag"

    def __init__(self) -> None:
        try:
            self._socket = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG)
        except (OSError, AttributeError) as exc:
            raise PeerLookupError(f"no NETLINK_SOCK_DIAG socket: {exc}") from None
        self._sequence = 0

    def inode(self, family: int, local: tuple[str, int], remote: tuple[str, int]) -> int:
        self._sequence = (self._sequence + 1) & 0xFFFFFFFF
        request = (
            struct.pack("=BBBBI", family, socket.IPPROTO_TCP, 0, 0, _ALL_STATES)
            + struct.pack(">HH", local[1], remote[1])
            + _address_bytes(family, local[0])
            + _address_bytes(family, remote[0])
            + struct.pack("=III", 0, _NO_COOKIE, _NO_COOKIE)
        )
        header = _NLMSG_HEADER.pack(
            _NLMSG_HEADER.size + len(request), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, self._sequence, 0
        )
        try:
            self._socket.send(header + request)
            while True:
                answer = self._socket.recv(4096)
                _, kind, _, sequence, _ = _NLMSG_HEADER.unpack_from(answer)
                if sequence == self._sequence:
                    break  # an answer to an earlier, abandoned request is skipped
        except OSError as exc:
            raise PeerLookupError(f"sock_diag: {exc}") from None
        if kind == _NLMSG_ERROR:
            (error,) = struct.unpack_from("=i", answer, _NLMSG_HEADER.size)
            if -error == 2:  # ENOENT: no such socket (it has gone)
                return 0
            raise PeerLookupError(f"sock_diag: {os.strerror(-error)}")
        if len(answer) < _INODE_OFFSET + 4:
            raise PeerLookupError("sock_diag: short answer")
        (inode,) = struct.unpack_from("=I", answer, _INODE_OFFSET)
        return int(inode)

    def close(self) -> None:
        self._socket.close()


class ProcNetSocketTable(SocketTable):
    """/proc/net/tcp[6]: a text table of every TCP socket in the network namespace, scanned in full."""

    name = "/proc/net/tcp"

    def inode(self, family: int, local: tuple[str, int], remote: tuple[str, int]) -> int:
        path = "/proc/net/tcp6" if family == socket.AF_INET6 else "/proc/net/tcp"
        wanted = f" {_proc_address(family, *local)} {_proc_address(family, *remote)} ".encode()
        try:
            with open(path, "rb") as table:
                for line in table:
                    if wanted in line:
                        return int(line.split()[9])
        except (OSError, ValueError, IndexError) as exc:
            raise PeerLookupError(f"{path}: {exc}") from None
        return 0


class PeerCheck:
    """Chosen once per server: how (and whether) Runtime API peers are checked."""

    def __init__(self, table: SocketTable | None, reason: str = ""):
        self._table = table
        self._reason = reason

    @property
    def enabled(self) -> bool:
        return self._table is not None

    @property
    def description(self) -> str:
        if self._table is None:
            return f"Runtime API: open to any local process ({self._reason})"
        return f"Runtime API: only each environment's own processes (peer sockets via {self._table.name})"

    def peer_inode(self, sock: socket.socket) -> int:
        """The inode of the socket at the other end of an accepted connection (0: it has gone)."""
        assert self._table is not None
        family = sock.family
        local = sock.getsockname()[:2]
        remote = sock.getpeername()[:2]
        return self._table.inode(family, remote, local)

    def owned_by(
        self, sock: socket.socket, root_pid: int, members: Callable[[], Iterable[int]] | None = None
    ) -> bool:
        """Whether the peer of `sock` is `root_pid`, one of its descendants, or (`members`, the pids of the
        environment's cgroup where it has one) any process of the environment, so that one that left the
        process tree (setsid and a double fork) but not its cgroup still counts. Admits everyone when it
        cannot tell (no lookup here, or it fails): the server said so at start."""
        if self._table is None:
            return True
        try:
            inode = self.peer_inode(sock)
        except (PeerLookupError, OSError):
            return True
        if inode == 0:
            return False
        link = f"socket:[{inode}]"
        try:
            if _holds(root_pid, link):
                return True
            candidates = list(members()) if members is not None else []
            if not candidates:  # no cgroup, or it could not be read: the process tree
                candidates = process_tree(root_pid)[1:]
            return any(_holds(pid, link) for pid in candidates if pid != root_pid)
        except PermissionError:
            return True  # the environment's descriptors cannot be read here: nothing can be told

    def foreign_owner(self, sock: socket.socket) -> int | None:
        """The pid holding the peer socket of `sock`, found by scanning every process (slow; only for a
        refused connection's log line). None if it cannot be found."""
        if self._table is None:
            return None
        try:
            inode = self.peer_inode(sock)
        except (PeerLookupError, OSError):
            return None
        return owner_of(inode, _all_pids()) if inode else None

    def close(self) -> None:
        if self._table is not None:
            self._table.close()


def detect_peer_check(host: Host = LINUX) -> PeerCheck:
    """Try each way of finding a peer on a loopback connection of our own; the first that finds it is
    used. If none does, Runtime API peers are not checked, and the description says why. Every way needs
    /proc (a socket's owner is found among /proc/PID/fd): on a host without it none is tried."""
    if not host.proc:
        return PeerCheck(None, "a peer's process cannot be found without /proc")
    reasons: list[str] = []
    for make in (NetlinkSocketTable, ProcNetSocketTable):
        try:
            table = make()
        except PeerLookupError as exc:
            reasons.append(str(exc))
            continue
        problem = _self_test(table)
        if problem is None:
            return PeerCheck(table)
        reasons.append(problem)
        table.close()
    return PeerCheck(None, "; ".join(reasons))


def owner_of(inode: int, pids: Iterable[int]) -> int | None:
    link = f"socket:[{inode}]"
    for pid in pids:
        with contextlib.suppress(OSError):
            if _holds(pid, link):
                return pid
    return None


def _self_test(table: SocketTable) -> str | None:
    try:
        with socket.socket() as listener:
            listener.bind(("127.0.0.1", 0))
            listener.listen(1)
            with socket.create_connection(listener.getsockname()) as client:
                accepted, _ = listener.accept()
                with accepted:
                    inode = PeerCheck(table).peer_inode(accepted)
                    if inode != os.fstat(client.fileno()).st_ino:
                        return f"{table.name}: the peer socket of a test connection was not found"
                    if not _holds(os.getpid(), f"socket:[{inode}]"):
                        return "/proc/PID/fd does not show sockets"
    except (PeerLookupError, OSError) as exc:
        return f"{table.name}: {exc}"
    return None


def _holds(pid: int, link: str) -> bool:
    """Whether process `pid` has a descriptor on `link` (`socket:[inode]`). A process that has gone holds
    nothing; PermissionError is raised for one whose descriptors cannot be read."""
    try:
        directory = os.open(f"/proc/{pid}/fd", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except (FileNotFoundError, ProcessLookupError):
        return False
    try:
        for name in os.listdir(directory):
            try:
                if os.readlink(name, dir_fd=directory) == link:
                    return True
            except FileNotFoundError:
                continue  # closed meanwhile
        return False
    finally:
        os.close(directory)


def _all_pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _address_bytes(family: int, host: str) -> bytes:
    packed = socket.inet_pton(family, host)
    return packed + bytes(16 - len(packed))


def _proc_address(family: int, host: str, port: int) -> str:
    """An address as /proc/net/tcp[6] prints it: each 32-bit word of the address in host byte order."""
    packed = socket.inet_pton(family, host)
    words = struct.unpack(f"={len(packed) // 4}I", packed)
    return "".join(f"{word:08X}" for word in words) + f":{port:04X}"
