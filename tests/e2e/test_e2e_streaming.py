"""A function that streams its response (our bootstrap's generator handlers), invoked through a plain sync
invoke: the caller gets the whole body, or the error the stream ended with (its trailers)."""

from __future__ import annotations

from pathlib import Path

import pytest
from e2e_harness import FUNCTIONS_DIR, running_server

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("streaming")
    code = FUNCTIONS_DIR / "streaming"
    config = root / "rapidboot.toml"
    config.write_text(
        f'[functions.chunks]\ncode = "{code}"\nhandler = "app.chunks"\n\n'
        f'[functions.breaks]\ncode = "{code}"\nhandler = "app.breaks"\n'
    )
    with running_server(["--config", str(config), "--state-dir", str(root / "state")], root) as running:
        yield running


def test_a_streamed_response_arrives_whole(server) -> None:  # type: ignore[no-untyped-def]
    response = server.invoke("chunks", {"count": 3})
    assert response.status_code == 200
    assert "X-Amz-Function-Error" not in response.headers
    assert response.content == b"chunk 0\nchunk 1\nchunk 2\n"
    assert response.headers["content-type"] == "application/octet-stream"


def test_a_stream_that_fails_midway_is_a_function_error(server) -> None:  # type: ignore[no-untyped-def]
    response = server.invoke("breaks", {})
    assert response.status_code == 200
    assert response.headers["X-Amz-Function-Error"] == "Unhandled"
    body = response.json()
    assert body["errorType"] == "ValueError"
    assert body["errorMessage"] == "the stream broke"


def test_a_runtime_sending_an_unknown_response_mode_is_refused(tmp_path: Path) -> None:
    """Reference section 1: a mode other than `streaming` is 400 InvalidFunctionResponseMode."""
    fake = tmp_path / "fake.py"
    fake.write_text(
        "import http.client, json, os\n"
        "c = http.client.HTTPConnection(os.environ['AWS_LAMBDA_RUNTIME_API'])\n"
        "c.request('GET', '/2018-06-01/runtime/invocation/next'); r = c.getresponse(); r.read()\n"
        "rid = r.getheader('Lambda-Runtime-Aws-Request-Id')\n"
        "c.request('POST', f'/2018-06-01/runtime/invocation/{rid}/response', body=b'x',\n"
        "          headers={'Lambda-Runtime-Function-Response-Mode': 'buffered-please'})\n"
        "r = c.getresponse(); refused = (r.status, json.loads(r.read())['errorType'])\n"
        "c.request('POST', f'/2018-06-01/runtime/invocation/{rid}/response', body=json.dumps(refused))\n"
        "c.getresponse().read()\n"
        "c.request('GET', '/2018-06-01/runtime/invocation/next'); c.getresponse().read()\n"
    )
    import sys

    args = ["--code", str(tmp_path), "--handler", "x.y", "--command", f"{sys.executable} {fake}"]
    with running_server([*args, "--state-dir", str(tmp_path / "state")], tmp_path) as running:
        assert running.invoke("function", {}).json() == [400, "InvalidFunctionResponseMode"]
