"""`serve --allow-updates`: the Lambda API may update a function of the definition (here a rapidboot.toml),
in memory only. The update is served at once and accumulates (configuration, then code); deleting stays
refused; a reload of the definition file that changes the function, or a restart, serves the file again."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import lambda_client, running_server

pytestmark = pytest.mark.e2e

HANDLER = (
    "import os\n\n\ndef handler(event, context):\n"
    "    return {{'version': {version!r}, 'memory': context.memory_limit_in_mb,"
    " 'stage': os.environ.get('STAGE')}}\n"
)

TOML = '[functions.function]\ncode = "{code}"\nhandler = "app.handler"\ntimeout = {timeout}\n'


def api_package(version: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER.format(version=version))
    return buffer.getvalue()


def answer(client: Any) -> dict[str, Any]:
    response = client.invoke(FunctionName="function", Payload=b"{}")
    assert "FunctionError" not in response, response
    result: dict[str, Any] = json.loads(response["Payload"].read())
    return result


def test_updates_of_a_configured_function_last_until_the_file_wins(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(HANDLER.format(version="file-1"))
    definition = tmp_path / "rapidboot.toml"
    definition.write_text(TOML.format(code=code, timeout=3))
    args = ["--config", str(definition), "--state-dir", str(tmp_path / "state")]
    with running_server([*args, "--watch", "--allow-updates"], tmp_path) as server:
        client = lambda_client(server.endpoint)
        before = client.get_function(FunctionName="function")["Configuration"]
        configured = client.update_function_configuration(
            FunctionName="function",
            MemorySize=256,
            Environment={"Variables": {"STAGE": "api"}},
            RevisionId=before["RevisionId"],
        )
        assert configured["RevisionId"] != before["RevisionId"]
        assert answer(client) == {"version": "file-1", "memory": "256", "stage": "api"}
        client.update_function_code(FunctionName="function", ZipFile=api_package("api-2"))
        assert answer(client) == {"version": "api-2", "memory": "256", "stage": "api"}
        with pytest.raises(client.exceptions.ResourceConflictException, match="remove it there"):
            client.delete_function(FunctionName="function")

        # The definition changes: it wins, the API's update is gone.
        seen = len(server.stderr.lines)
        definition.write_text(TOML.format(code=code, timeout=4))
        reloaded = server.stderr.wait_for(lambda line: "rapidboot: reloaded" in line, after=seen)
        assert reloaded is not None, server.output_tail()
        assert answer(client) == {"version": "file-1", "memory": "128", "stage": None}
        assert client.get_function_configuration(FunctionName="function")["MemorySize"] == 128

        client.update_function_configuration(FunctionName="function", MemorySize=512)
        assert answer(client)["memory"] == "512"

    # A restart serves the definition: nothing of the update was stored.
    with running_server([*args, "--allow-updates"], tmp_path) as server:
        assert answer(lambda_client(server.endpoint)) == {"version": "file-1", "memory": "128", "stage": None}

    # Without the flag, the same update is refused and names the flag.
    with running_server(args, tmp_path) as server:
        client = lambda_client(server.endpoint)
        with pytest.raises(client.exceptions.ResourceConflictException, match="--allow-updates"):
            client.update_function_configuration(FunctionName="function", MemorySize=256)
