"""SnapStart: the hooks of the real `snapshot_restore_py`, and what each environment forked from the template
holds of its own (pid, random, uuid4, sockets, TMPDIR, cgroup, log stream)."""

import os
import random
import socket
import subprocess
import tempfile
import uuid

from snapshot_restore_py import register_after_restore, register_before_snapshot

ORDER = []
INIT_PID = os.getpid()  # the template's: init runs there, once
INIT_RANDOM = random.random()


def hook(name):
    ORDER.append(f"{name} in {'template' if os.getpid() == INIT_PID else 'child'}")


register_before_snapshot(hook, "before-1")
register_before_snapshot(hook, "before-2")
register_after_restore(hook, "after-1")
register_after_restore(hook, name="after-2")


def _sockets():
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.append(target)
    return sorted(found)


def _memory_cgroup():
    with open("/proc/self/cgroup") as cgroups:
        lines = cgroups.read().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(",") or controllers == "":
            return path
    return ""


def handler(event, context):
    if "gate" in event:  # hold this environment until the test says go
        with socket.create_connection(("127.0.0.1", event["gate"])) as gate:
            gate.sendall(b"h")
            gate.recv(1)
    escaped = None
    if event.get("escape"):  # a process of its own session, which must still end with the environment
        escaped = subprocess.Popen(["sleep", "300"], start_new_session=True).pid
    return {
        "escaped": escaped,
        "token": event.get("token"),
        "request_id": context.aws_request_id,
        "pid": os.getpid(),
        "init_pid": INIT_PID,
        "init_random": INIT_RANDOM,
        "order": ORDER,
        "random": random.random(),
        "urandom": os.urandom(8).hex(),
        "uuid": str(uuid.uuid4()),
        "tmpdir": tempfile.gettempdir(),
        "tmpdir_env": os.environ["TMPDIR"],
        "runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"],
        "initialization_type": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "log_stream": os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
        "sockets": _sockets(),
        "memory_cgroup": _memory_cgroup(),
    }
