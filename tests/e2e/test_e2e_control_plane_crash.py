"""An update is visible whole or not at all after the server dies between the store write and the answer.

The server is SIGKILLed while paused at a point of the update (the test-only `RAPIDBOOT_TEST_PAUSE_AT`):
`control-write` (the new code file is in place and the running server already serves the update, but the
row is not committed) and `control-commit` (committed, not yet answered). After a restart on the same
--state-dir, GetFunction and Invoke agree on one state: the old one whole (code, configuration, RevisionId),
or the new one whole.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import signal
import threading
import zipfile
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_harness import lambda_client, running_server, server_environment

pytestmark = pytest.mark.e2e


def package(version: int) -> bytes:
    """The same bytes for the same version (a fixed timestamp), so its CodeSha256 is known."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            zipfile.ZipInfo("app.py", date_time=(2024, 1, 1, 0, 0, 0)),
            "import os\n\n\ndef handler(event, context):\n"
            f"    return {{'version': {version}, 'memory': context.memory_limit_in_mb,"
            " 'stage': os.environ.get('STAGE')}\n",
        )
    return buffer.getvalue()


def sha(zipped: bytes) -> str:
    return base64.b64encode(hashlib.sha256(zipped).digest()).decode()


def state(client: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    configuration = client.get_function(FunctionName="durable")["Configuration"]
    response = client.invoke(FunctionName="durable", Payload=b"{}")
    return configuration, json.loads(response["Payload"].read())


# The update each case sends, raw (the server never answers it), and what it changes.
UPDATES = {
    "code": ("code", {"ZipFile": base64.b64encode(package(2)).decode()}),
    "configuration": ("configuration", {"MemorySize": 256, "Environment": {"Variables": {"STAGE": "new"}}}),
}


@pytest.mark.parametrize(
    ("point", "update"),
    [("control-write", "code"), ("control-commit", "code"), ("control-commit", "configuration")],
)
def test_an_update_killed_mid_way_is_old_or_new_whole(tmp_path: Path, point: str, update: str) -> None:
    args = ["--state-dir", str(tmp_path / "state")]
    with running_server(args, tmp_path) as server:
        client = lambda_client(server.endpoint)
        client.create_function(
            FunctionName="durable",
            Runtime="python3.12",
            Role="arn:aws:iam::123456789012:role/crash",
            Handler="app.handler",
            Code={"ZipFile": package(1)},
        )
        old, old_answer = state(client)
    assert old_answer == {"version": 1, "memory": "128", "stage": None}

    env = server_environment()
    env["RAPIDBOOT_TEST_PAUSE_AT"] = point
    with running_server(args, tmp_path, env=env, check_shutdown=False) as server:
        tail, body = UPDATES[update]
        url = f"{server.endpoint}/2015-03-31/functions/durable/{tail}"
        sender = threading.Thread(target=_unanswered, args=(url, body), daemon=True)
        sender.start()
        paused = server.stderr.wait_for(lambda line: f"paused at {point}" in line)
        assert paused is not None, server.output_tail()
        server.stop(signal.SIGKILL)  # its runtimes go with its group as the context ends

    with running_server(args, tmp_path) as server:
        new, answer = state(lambda_client(server.endpoint))
    whole = (new["RevisionId"], new["CodeSha256"], new["MemorySize"], new["Environment"], answer)
    if point == "control-write":  # never committed: the old function, all of it
        assert whole == (old["RevisionId"], old["CodeSha256"], 128, old["Environment"], old_answer)
    elif update == "code":
        assert new["RevisionId"] != old["RevisionId"]
        assert (new["CodeSha256"], new["MemorySize"]) == (sha(package(2)), 128)
        assert answer == {"version": 2, "memory": "128", "stage": None}
    else:
        assert new["RevisionId"] != old["RevisionId"] and new["CodeSha256"] == old["CodeSha256"]
        assert (new["MemorySize"], new["Environment"]) == (256, {"Variables": {"STAGE": "new"}})
        assert answer == {"version": 1, "memory": "256", "stage": "new"}


def _unanswered(url: str, body: dict[str, Any]) -> None:
    """The update, sent by a client that never gets its answer (the server dies first)."""
    with contextlib.suppress(httpx.HTTPError):
        httpx.put(url, json=body, timeout=60)
