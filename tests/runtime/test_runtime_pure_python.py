"""Pure Python: the bootstrap runs from the source tree on the stdlib alone (`python -I -S`), no compiler,
no third-party package, through init, sync, async and streamed invokes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fake_runtime_api import FakeEvent, FakeRuntimeAPI
from runtime_harness import BOOTSTRAP, runtime_env, write

APP = """
import sys, sysconfig

def handler(event, context):
    stdlib = sysconfig.get_paths()["stdlib"]
    zipped = "%s/lib/python%d%d.zip" % (sys.base_prefix, *sys.version_info[:2])  # on sys.path, never exists
    foreign = [p for p in sys.path if p and not p.startswith(stdlib) and p != zipped]
    third_party = [m for m in ("orjson", "awslambdaric", "simplejson", "snapshot_restore_py")
                   if m in sys.modules]
    site_packages = [p for p in sys.path if "-packages" in p]
    try:
        import orjson  # noqa: F401
        importable = True
    except ImportError:
        importable = False
    return {"site": "site" in sys.modules, "foreign": foreign, "site_packages": site_packages,
            "third_party": third_party, "orjson_importable": importable, "event": event}

async def async_handler(event, context):
    return "async ok"

def stream(event, context):
    yield b"streamed "
    yield b"ok"
"""


def test_stdlib_only_full_cycle(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    events = [FakeEvent({"n": 1}, request_id="r1")]
    with FakeRuntimeAPI(events) as api:
        env = runtime_env(api, task_root)
        # -I: no environment variables, no user site, no script dir; -S: no `site`, so no site-packages.
        proc = subprocess.run(
            [sys.executable, "-I", "-S", str(BOOTSTRAP), "app.handler"],
            env=env,
            capture_output=True,
            timeout=20,
        )
    assert proc.returncode == 1, proc.stderr  # /next closed after the event
    result = api.posts("/r1/response")[0].json()
    # Only the task root (put first by the runtime) and the stdlib are on sys.path.
    assert result["foreign"] == [str(task_root)], result
    assert result == {
        "site": False,
        "foreign": [str(task_root)],
        "site_packages": [],
        "third_party": [],
        "orjson_importable": False,
        "event": {"n": 1},
    }


def test_stdlib_only_async_and_streaming(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    for handler, check in [
        ("app.async_handler", lambda post: post.json() == "async ok"),
        (
            "app.stream",
            lambda post: post.body == b"streamed ok" and post.headers["transfer-encoding"] == "chunked",
        ),
    ]:
        with FakeRuntimeAPI([FakeEvent({}, request_id="r1")]) as api:
            env = runtime_env(api, task_root)
            proc = subprocess.run(
                [sys.executable, "-I", "-S", str(BOOTSTRAP), handler],
                env=env,
                capture_output=True,
                timeout=20,
            )
        (post,) = api.posts("/r1/response")
        assert check(post), (handler, post, proc.stderr)
