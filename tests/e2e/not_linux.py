"""`python not_linux.py serve ARGS...`: the rapidboot server with this Linux host's Linux taken away, as far
as one process can: no `os.pidfd_open` or `socket.TCP_INFO`, and every open or listing under /proc and
/sys/fs/cgroup refused (PermissionError, by an audit hook) and named on stderr as `not-linux: refused EVENT
PATH`. With `--platform darwin` first, `sys.platform` says so too, as the server sees it on macOS.

No Mac is at hand: this shows what the server does without those features, not that macOS runs it."""

from __future__ import annotations

import os
import runpy
import socket
import sys
from typing import Any

HIDDEN = ("/proc", "/sys/fs/cgroup")
REFUSED = "not-linux: refused"


def server_command(rapid_server_args: list[str], platform: str | None = None) -> list[str]:
    """A RapidServer's `[python, -m, rapidboot.rapid_server, serve, ...]` run through this launcher
    instead."""
    launcher = [sys.executable, __file__, *(["--platform", platform] if platform else [])]
    return [*launcher, *rapid_server_args[3:]]


def refused_lines(lines: list[str]) -> list[str]:
    """The server's stderr lines naming a reach for Linux that was refused."""
    return [line for line in lines if line.startswith(REFUSED)]


def _refuse(event: str, args: tuple[Any, ...]) -> None:
    if event not in ("open", "os.listdir", "os.scandir") or not args:
        return
    path = args[0]
    if not isinstance(path, (str, bytes)):  # a descriptor, or None (the cwd)
        return
    text = os.fsdecode(path)
    if any(text == hidden or text.startswith(hidden + "/") for hidden in HIDDEN):
        os.write(2, f"{REFUSED} {event} {text}\n".encode())  # os.write raises no audit event
        raise PermissionError(13, "hidden: this host is not Linux", text)


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv[:1] == ["--platform"]:
        sys.platform = argv[1]
        argv = argv[2:]
    if hasattr(os, "pidfd_open"):
        del os.pidfd_open
    if hasattr(socket, "TCP_INFO"):  # Linux and FreeBSD only (macOS has TCP_CONNECTION_INFO)
        del socket.TCP_INFO
    sys.addaudithook(_refuse)
    sys.argv = ["rapid_server", *argv]
    runpy.run_module("rapidboot.rapid_server", run_name="__main__", alter_sys=True)
