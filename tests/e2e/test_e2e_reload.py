"""Hot reload (`serve --watch`), as a user lives it: a real `rapidboot serve --template` (and one from
--code), files edited on disk, invokes over HTTP. Every wait is on the server's reload line (stderr) or on
a gate the handler opens, never a sleep."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from e2e_harness import RapidServer, running_server

pytestmark = pytest.mark.e2e

# Same size, "v1" and "v2": an edit Python's bytecode cache would miss within one second (reload.py).
HANDLER = """\
import json
import socket


def handler(event, context):
    if "gate" in event:  # hold the invoke until the test says go
        with socket.create_connection(("127.0.0.1", event["gate"])) as gate:
            gate.recv(1)
    return "{version}"
"""

TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Runtime: python3.12
    Timeout: 30
Resources:
  Hello:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
"""

SECOND = """\
  Second:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: app.handler
      Environment:
        Variables:
          ADDED: "yes"
"""


def write_handler(code: Path, version: str) -> None:
    (code / "app.py").write_text(HANDLER.format(version=version))


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    write_handler(root / "src", "v1")
    (root / "template.yaml").write_text(TEMPLATE)
    return root


@pytest.fixture
def server(project: Path, tmp_path: Path) -> Iterator[RapidServer]:
    with running_server(
        ["--template", str(project / "template.yaml"), "--state-dir", str(tmp_path / "state")], cwd=tmp_path
    ) as server:
        yield server


def answer(server: RapidServer, name: str = "Hello", event: object = None) -> object:
    response = server.invoke(name, event if event is not None else {})
    assert response.status_code == 200, response.text
    assert "x-amz-function-error" not in response.headers, response.text
    return json.loads(response.content)


def reload_lines(server: RapidServer) -> list[str]:
    return [line for line in server.stderr.lines if line.startswith("rapidboot: reloaded ")]


def wait_stderr(server: RapidServer, text: str, after: int) -> str:
    line = server.stderr.wait_for(lambda line: text in line, after=after)
    assert line is not None, f"no stderr line with {text!r}.\n{server.output_tail()}"
    return line


def test_an_edited_handler_answers_the_next_invoke_without_a_restart(server: RapidServer) -> None:
    assert answer(server) == "v1"
    old = server.runtime_processes("Hello")
    assert len(old) == 1
    seen = len(server.stderr.lines)
    write_handler(Path(server.args[server.args.index("--template") + 1]).parent / "src", "v2")
    assert wait_stderr(server, "rapidboot: reloaded", seen) == "rapidboot: reloaded Hello: src/app.py"
    assert answer(server) == "v2"
    assert all(process.pid != old[0].pid for process in server.runtime_processes("Hello"))


def test_an_editors_temporary_file_is_not_named_as_a_change(server: RapidServer) -> None:
    """`sed -i` (like many editors) writes a temporary file beside the one it edits and renames it over
    it: the reload line names the edited file only."""
    src = Path(server.args[server.args.index("--template") + 1]).parent / "src"
    seen = len(server.stderr.lines)
    subprocess.run(["sed", "-i", "s/v1/v2/", str(src / "app.py")], check=True)
    assert wait_stderr(server, "rapidboot: reloaded", seen) == "rapidboot: reloaded Hello: src/app.py"
    assert answer(server) == "v2"


def test_code_served_from_flags_reloads_with_watch(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    write_handler(code, "v1")
    args = ["--code", str(code), "--handler", "app.handler", "--watch", "--state-dir", str(tmp_path / "s")]
    with running_server(args, cwd=tmp_path) as server:
        assert answer(server, "function") == "v1"
        seen = len(server.stderr.lines)
        write_handler(code, "v2")
        wait_stderr(server, "rapidboot: reloaded function: ", seen)
        assert answer(server, "function") == "v2"


def test_an_invoke_in_flight_finishes_on_the_old_code(server: RapidServer, project: Path) -> None:
    gate = socket.create_server(("127.0.0.1", 0))
    held: dict[str, object] = {}

    def invoke_held() -> None:
        held["answer"] = answer(server, event={"gate": gate.getsockname()[1]})

    with gate:
        caller = threading.Thread(target=invoke_held)
        caller.start()
        gate.settimeout(20)
        connection, _ = gate.accept()  # the handler of v1 is running and waits for us
        with connection:
            seen = len(server.stderr.lines)
            write_handler(project / "src", "v2")
            wait_stderr(server, "rapidboot: reloaded Hello", seen)
            with httpx.Client(base_url=server.endpoint, timeout=30) as other:  # the held one keeps its own
                fresh = other.post(server.invoke_path("Hello"), content=b"{}")
            assert fresh.json() == "v2"
            connection.sendall(b"go")
        caller.join(30)
    assert held["answer"] == "v1"


def test_a_template_edit_adds_a_function(server: RapidServer, project: Path) -> None:
    assert answer(server) == "v1"
    seen = len(server.stderr.lines)
    (project / "template.yaml").write_text(TEMPLATE + SECOND)
    line = wait_stderr(server, "rapidboot: reloaded", seen)
    assert line == "rapidboot: reloaded template.yaml: added Second", line
    assert answer(server, "Second") == "v1"
    assert answer(server) == "v1"


def test_a_broken_template_edit_prints_the_error_and_keeps_serving(
    server: RapidServer, project: Path
) -> None:
    assert answer(server) == "v1"
    seen = len(server.stderr.lines)
    (project / "template.yaml").write_text(TEMPLATE.replace("Handler: app.handler", "Handler: ''"))
    line = wait_stderr(server, "still serving the last good configuration", seen)
    assert f"{project / 'template.yaml'}:" in line and "resource Hello, property Handler" in line, line
    assert answer(server) == "v1"
    assert reload_lines(server) == []
    (project / "template.yaml").write_text(TEMPLATE + SECOND)  # fixed: the reload goes through
    wait_stderr(server, "rapidboot: reloaded template.yaml: added Second", seen)
    assert answer(server, "Second") == "v1"


def test_a_burst_of_20_files_is_one_reload(server: RapidServer, project: Path) -> None:
    assert answer(server) == "v1"
    seen = len(server.stderr.lines)
    files = [(project / "src" / f"module{i:02}.py", f"VALUE = {i}\n") for i in range(20)]
    for path, text in files:  # an editor's "save all"
        path.write_text(text)
    burst = wait_stderr(server, "rapidboot: reloaded", seen)
    assert (
        burst
        == "rapidboot: reloaded Hello: "
        + ", ".join(f"src/module{i:02}.py" for i in range(5))
        + " and 15 more"
    ), burst
    write_handler(project / "src", "v2")  # a later save: the next line is its own
    wait_stderr(server, "src/app.py", seen)
    assert len(reload_lines(server)) == 2, reload_lines(server)
    assert answer(server) == "v2"


LAYERED = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer/
  Reader:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src/
      Handler: reader.handler
      Runtime: python3.12
      Layers: [!Ref Shared]
"""


def test_a_changed_layer_is_merged_again(tmp_path: Path) -> None:
    root = tmp_path / "layered"
    (root / "src").mkdir(parents=True)
    (root / "src" / "reader.py").write_text(
        "import shared\n\n\ndef handler(event, context):\n    return shared.NAME\n"
    )
    (root / "layer" / "python").mkdir(parents=True)
    (root / "layer" / "python" / "shared.py").write_text('NAME = "first"\n')
    (root / "template.yaml").write_text(LAYERED)
    args = ["--template", str(root / "template.yaml"), "--state-dir", str(tmp_path / "state")]
    with running_server(args, cwd=tmp_path) as server:
        assert answer(server, "Reader") == "first"
        seen = len(server.stderr.lines)
        (root / "layer" / "python" / "shared.py").write_text('NAME = "second, longer"\n')
        line = wait_stderr(server, "rapidboot: reloaded", seen)
        assert line == "rapidboot: reloaded Reader: layer/python/shared.py", line
        assert answer(server, "Reader") == "second, longer"


def test_provisioned_environments_are_replaced_at_once(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    write_handler(code, "v1")
    args = ["--code", str(code), "--handler", "app.handler", "--provisioned-concurrency", "1", "--watch"]
    with running_server([*args, "--state-dir", str(tmp_path / "s")], cwd=tmp_path) as server:
        [old] = server.runtime_processes("function")
        seen = len(server.stderr.lines)
        write_handler(code, "v2")
        wait_stderr(server, "rapidboot: reloaded function: ", seen)  # printed once the new one is ready
        [new] = server.runtime_processes("function")  # before any invoke: replaced, not on demand
        assert new.pid != old.pid
        response = server.invoke("function", {})
        assert response.json() == "v2"
        report = server.report(response.headers["x-amzn-RequestId"])
        assert report.init_duration_ms is None  # provisioned: its init was before the invoke
