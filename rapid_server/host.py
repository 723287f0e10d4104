"""What of Linux this host offers the server: chosen once at start, passed down, said in the startup line.

The server leans on three Linux features, each with a fallback (the modules named are data_plane/'s):
- pidfds (Linux >= 5.3): a runtime's exit is an event on the loop; else the process is polled (process.py);
- /proc: peak memory and its limit by RSS watching (memory.py), a pending SIGKILL (process_setup.py), and who
  holds a Runtime API connection (peers.py); else memory is neither limited nor measured, and the Runtime
  API is open to any local process;
- cgroups: memory limits by the kernel and containment (limits.py, containment.py); else an environment's
  processes are its runtime's process group.

A host without them (macOS, the BSDs) takes every fallback. `RAPIDBOOT_PORTABLE=1` forces the same on Linux,
so that the fallbacks are tested on the machine the tests run on. One more Linux feature is chosen by the
platform alone, not here: a connection's TCP state (`TCP_INFO`, http.py), which costs nothing to keep on
Linux; the tests take it away with the others (tests/e2e/not_linux.py).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from .config import ConfigError

PORTABLE_VARIABLE = "RAPIDBOOT_PORTABLE"


@dataclass(frozen=True, slots=True)
class Host:
    pidfd: bool  # os.pidfd_open may be tried (it can still fail on an old kernel: then polled)
    proc: bool  # /proc may be read
    cgroups: bool  # /sys/fs/cgroup may be used
    forced: bool = False  # RAPIDBOOT_PORTABLE=1 turned the others off

    @classmethod
    def detect(cls, environ: Mapping[str, str]) -> Host:
        raw = environ.get(PORTABLE_VARIABLE, "").strip()
        if raw not in ("", "0", "1"):
            raise ConfigError(f"{PORTABLE_VARIABLE}={raw!r}: must be 1 (take every non-Linux fallback) or 0")
        if raw == "1":
            return cls(pidfd=False, proc=False, cgroups=False, forced=True)
        linux = sys.platform.startswith("linux")
        return cls(
            pidfd=hasattr(os, "pidfd_open"),
            proc=linux and os.path.exists("/proc/self/status"),
            cgroups=linux,
        )

    @property
    def lacking(self) -> str:
        """What is missing, for the startup line; "" on a full Linux host."""
        missing = [
            name
            for name, present in (("cgroups", self.cgroups), ("/proc", self.proc), ("pidfds", self.pidfd))
            if not present
        ]
        if not missing:
            return ""
        names = " or ".join(missing) if len(missing) < 3 else f"{missing[0]}, {missing[1]} or {missing[2]}"
        if self.forced:
            return f"{PORTABLE_VARIABLE}=1: no {names} used"
        return f"this host has no {names}"


LINUX = Host(pidfd=True, proc=True, cgroups=True)  # what tests and tools that build limits directly assume
