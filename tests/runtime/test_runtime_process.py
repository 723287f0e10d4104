"""The real `bootstrap` as a subprocess against the fake Runtime API (and awslambdaric, for parity)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest
from fake_runtime_api import FakeEvent
from runtime_harness import REPO, Run, run_runtime, write

HAVE_RIC = importlib.util.find_spec("awslambdaric") is not None
IMPLS = ["rapidboot", pytest.param("awslambdaric", marks=pytest.mark.skipif(not HAVE_RIC, reason="no ric"))]

APP = """
import logging, os
COUNT = 0

def handler(event, context):
    global COUNT
    COUNT += 1
    print("print", type(event).__name__)
    logging.getLogger().warning("warned")
    return {
        "event": event if not isinstance(event, bytes) else event.decode(),
        "count": COUNT,
        "request_id": context.aws_request_id,
        "arn": context.invoked_function_arn,
        "function_name": context.function_name,
        "memory": context.memory_limit_in_mb,
        "version": context.function_version,
        "group": context.log_group_name,
        "stream": context.log_stream_name,
        "remaining_ok": 0 < context.get_remaining_time_in_millis() < 10**13,
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "tenant": context.tenant_id,
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "client_context": None if context.client_context is None else [
            context.client_context.custom, context.client_context.env,
            context.client_context.client.installation_id, context.client_context.client.app_title],
    }

def fails(event, context):
    def inner():
        raise KeyError("missing")
    inner()

def echo_len(event, context):
    return len(event) if isinstance(event, (bytes, str)) else len(json.dumps(event))
import json
"""


def _line(text: str) -> int:
    return next(n for n, line in enumerate(APP.split("\n"), 1) if line.strip() == text)


def _only(run: Run, suffix: str):  # type: ignore[no-untyped-def]
    posts = run.api.posts(suffix)
    assert len(posts) == 1, (run.api.requests, run.stdout, run.stderr)
    return posts[0]


@pytest.mark.parametrize("impl", IMPLS)
def test_success_init_once_and_context(task_root: Path, impl: str) -> None:
    write(task_root, {"app.py": APP})
    events = [
        FakeEvent({"a": "é"}, request_id="r1", headers={"Lambda-Runtime-Trace-Id": "Root=1-abc"}),
        FakeEvent(
            {"b": 2},
            request_id="r2",
            chunked=True,
            headers={
                "Lambda-Runtime-Client-Context": json.dumps(
                    {
                        "custom": {"k": "v"},
                        "env": {"e": 1},
                        "client": {"installation_id": "i", "app_title": "t"},
                    }
                ),
                "Lambda-Runtime-Cognito-Identity": json.dumps(
                    {"cognitoIdentityId": "cid", "cognitoIdentityPoolId": "pid"}
                ),
                "Lambda-Runtime-Aws-Tenant-Id": "tenant-7",
            },
        ),
    ]
    run = run_runtime(task_root, events, impl=impl)
    assert run.returncode == 1  # the fake closes /next once the queue is empty
    assert "LAMBDA_RUNTIME Failed to get next invocation. No Response from endpoint" in run.stdout
    first, second = (p.json() for p in run.api.posts("/response"))
    assert run.api.posts("/response")[0].path == "/2018-06-01/runtime/invocation/r1/response"
    assert first == {
        "event": {"a": "é"},
        "count": 1,
        "request_id": "r1",
        "arn": "arn:aws:lambda:us-east-1:123456789012:function:f",
        "function_name": "f",
        "memory": "128",
        "version": "$LATEST",
        "group": "/aws/lambda/f",
        "stream": "2024/01/01/[$LATEST]abc",
        "remaining_ok": True,
        "trace": "Root=1-abc",
        "tenant": None,
        "identity": [None, None],
        "client_context": None,
    }
    assert second["count"] == 2  # module imported once, globals kept
    assert second["trace"] is None  # deleted when the next invoke has no trace header
    assert second["tenant"] == "tenant-7"
    assert second["identity"] == ["cid", "pid"]
    assert second["client_context"] == [{"k": "v"}, {"e": 1}, "i", "t"]
    assert run.api.posts("/response")[0].headers["content-type"] == "application/json"
    assert "print dict" in run.stdout
    assert "[WARNING]\t" in run.stdout and "\tr1\twarned\n" in run.stdout and "\tr2\twarned\n" in run.stdout


def test_handler_exception(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    run = run_runtime(task_root, [FakeEvent({}, request_id="r9")], "app.fails")
    post = _only(run, "/error")
    assert post.path == "/2018-06-01/runtime/invocation/r9/error"
    body = post.json()
    assert body["errorType"] == "KeyError"
    assert body["errorMessage"] == "'missing'"
    assert body["requestId"] == "r9"
    app = str(task_root / "app.py")
    outer, inner = _line("inner()"), _line('raise KeyError("missing")')
    assert body["stackTrace"] == [
        f'  File "{app}", line {outer}, in fails\n    inner()\n',
        f'  File "{app}", line {inner}, in inner\n    raise KeyError("missing")\n',
    ]
    assert post.headers["lambda-runtime-function-error-type"] == "KeyError"
    cause = json.loads(post.headers["lambda-runtime-function-xray-error-cause"])
    assert cause == {
        "working_directory": "/",
        "exceptions": [
            {
                "message": "'missing'",
                "type": "KeyError",
                "stack": [
                    {"label": "fails", "path": app, "line": outer},
                    {"label": "inner", "path": app, "line": inner},
                ],
            }
        ],
        "paths": [app],
    }
    expected_log = (
        "[ERROR] KeyError: 'missing'\rTraceback (most recent call last):\r"
        f'\u00a0\u00a0File "{app}", line {outer}, in fails\r\u00a0\u00a0\u00a0\u00a0inner()\r'
        f'\u00a0\u00a0File "{app}", line {inner}, in inner\r'
        '\u00a0\u00a0\u00a0\u00a0raise KeyError("missing")\n'
    )
    assert expected_log in run.stdout


INIT_CASES = {
    "malformed": (
        {"app.py": APP},
        "apphandler",
        "Runtime.MalformedHandlerName",
        "Bad handler 'apphandler': not enough values to unpack (expected 2, got 1)",
    ),
    "builtin": (
        {},
        "sys.handler",
        "Runtime.BuiltInModuleConflict",
        "Cannot use built-in module sys as a handler module",
    ),
    "import": (
        {},
        "nosuch.handler",
        "Runtime.ImportModuleError",
        "Unable to import module 'nosuch': No module named 'nosuch'",
    ),
    "import-inner": (
        {"app.py": "import not_installed_dep\n"},
        "app.handler",
        "Runtime.ImportModuleError",
        "Unable to import module 'app': No module named 'not_installed_dep'",
    ),
    "syntax": (
        {"app.py": "x = 1\ndef handler(:\n    pass\n"},
        "app.handler",
        "Runtime.UserCodeSyntaxError",
        "Syntax error in module 'app': invalid syntax (app.py, line 2)",
    ),
    "missing": (
        {"app.py": APP},
        "app.nope",
        "Runtime.HandlerNotFound",
        "Handler 'nope' missing on module 'app'",
    ),
    "raises": (
        {"app.py": "x = 1\nraise RuntimeError('at import')\n"},
        "app.handler",
        "RuntimeError",
        "at import",
    ),
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", sorted(INIT_CASES))
def test_init_errors(task_root: Path, case: str, impl: str) -> None:
    files, handler, error_type, message = INIT_CASES[case]
    write(task_root, files)
    run = run_runtime(task_root, [FakeEvent({})], handler, impl=impl)
    assert run.returncode == 1
    post = _only(run, "/init/error")
    assert post.path == "/2018-06-01/runtime/init/error"
    assert post.headers["lambda-runtime-function-error-type"] == error_type
    body = post.json()
    assert body["errorType"] == error_type
    assert body["errorMessage"] == message
    assert body["requestId"] == ""
    if case == "syntax":
        app = task_root / "app.py"
        assert body["stackTrace"] == [f'  File "{app}" Line 2\n    def handler(:\n']
    elif case == "raises":
        if impl == "rapidboot":  # user frames only (awslambdaric also keeps an importlib frame)
            assert body["stackTrace"] == [
                f'  File "{task_root / "app.py"}", line 2, in <module>\n'
                "    raise RuntimeError('at import')\n"
            ]
    else:
        assert body["stackTrace"] == []
    assert not any(r.path.endswith("/invocation/next") for r in run.api.requests)
    assert "LAMBDA_WARNING: Unhandled exception." in run.stdout
    assert f"[ERROR] {error_type}: {message}\rTraceback (most recent call last):" in run.stdout


def test_bytes_event_and_missing_content_type(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    events = [
        FakeEvent(b"\x00\xffraw", request_id="b1", content_type="application/octet-stream"),
        FakeEvent(b'{"not":"decoded"}', request_id="b2", content_type=None),
    ]
    run = run_runtime(task_root, events, "app.echo_len")
    assert [p.body for p in run.api.posts("/response")] == [b"5", b"17"]


def test_bytes_result_and_marshal_errors(task_root: Path) -> None:
    write(
        task_root,
        {
            "app.py": (
                "import decimal\n"
                "def handler(event, context):\n"
                "    kind = event['kind']\n"
                "    if kind == 'bytes': return b'\\x00raw'\n"
                "    if kind == 'set': return {1}\n"
                "    if kind == 'decimal': return {'d': decimal.Decimal('1.10'), 'n': float('nan')}\n"
            )
        },
    )
    events = [
        FakeEvent({"kind": "bytes"}, request_id="k1"),
        FakeEvent({"kind": "set"}, request_id="k2"),
        FakeEvent({"kind": "decimal"}, request_id="k3"),
        FakeEvent(b"{not json", request_id="k4"),
    ]
    run = run_runtime(task_root, events)
    responses = {p.path.split("/")[-2]: p for p in run.api.posts("/response")}
    errors = {p.path.split("/")[-2]: p.json() for p in run.api.posts("/error")}
    assert responses["k1"].body == b"\x00raw"
    assert responses["k1"].headers["content-type"] == "application/unknown"
    assert responses["k3"].body == b'{"d":1.10,"n":NaN}'  # compact: a deliberate difference
    assert errors["k2"]["errorType"] == "Runtime.MarshalError"
    assert (
        errors["k2"]["errorMessage"]
        == "Unable to marshal response: Object of type set is not JSON serializable"
    )
    assert errors["k4"]["errorType"] == "Runtime.UnmarshalError"
    assert errors["k4"]["errorMessage"].startswith("Unable to unmarshal input: Expecting property name")


def test_context_unmarshal_error(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    event = FakeEvent({}, request_id="c1", headers={"Lambda-Runtime-Client-Context": "{bad"})
    run = run_runtime(task_root, [event])
    body = _only(run, "/error").json()
    assert body["errorType"] == "Runtime.LambdaContextUnmarshalError"
    assert body["errorMessage"].startswith("Unable to parse Client Context JSON: Expecting property name")
    assert body["stackTrace"] == []


def test_one_megabyte_chunked_event(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    payload = {"data": "x" * (1024 * 1024)}
    run = run_runtime(task_root, [FakeEvent(payload, chunked=True), FakeEvent(payload)], "app.echo_len")
    assert [p.body for p in run.api.posts("/response")] == [b"1048588", b"1048588"]
    assert run.api.connections == 2  # keep-alive: one connection, plus the reconnect at the end


def test_nested_handler_path_and_handler_env(task_root: Path) -> None:
    write(task_root, {"src/pkg/mod.py": "def fn(event, context):\n    return 'nested'\n"})
    run = run_runtime(task_root, [FakeEvent({})], None, env={"_HANDLER": "src/pkg/mod.fn"})
    assert _only(run, "/response").body == b'"nested"'


def test_isolated_mode_and_user_module_named_runtime(task_root: Path) -> None:
    # Under -I (no site-packages at all) and with a user module that shares the package's name.
    write(
        task_root,
        {
            "runtime.py": "NAME = 'user'\n",
            "app.py": "import runtime\ndef handler(e, c):\n    return runtime.NAME\n",
        },
    )
    run = run_runtime(task_root, [FakeEvent({})], impl="rapidboot-isolated")
    assert _only(run, "/response").body == b'"user"', run.stdout + run.stderr


def test_sys_path_order(task_root: Path) -> None:
    opt = task_root / "opt"
    site = opt / "python" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    site.mkdir(parents=True)
    write(task_root, {"app.py": "import sys\ndef handler(e, c):\n    return sys.path[:3]\n"})
    run = run_runtime(task_root, [FakeEvent({})])
    assert json.loads(_only(run, "/response").body) == [str(task_root), str(site), str(opt / "python")]
    assert str(REPO) not in run.api.posts("/response")[0].body.decode()


def test_python_dash_m_runtime(task_root: Path) -> None:
    write(task_root, {"app.py": "def handler(e, c):\n    return 'via -m'\n"})
    with_m = run_runtime(task_root, [FakeEvent({})], impl="rapidboot-m", env={"PYTHONPATH": str(REPO)})
    assert _only(with_m, "/response").body == b'"via -m"'


def test_next_returns_500_exits(task_root: Path) -> None:
    write(task_root, {"app.py": APP})
    run = run_runtime(task_root, [], exhausted_status=500)
    assert run.returncode == 1
    assert "LAMBDA_RUNTIME Failed to get next invocation. Http Response code: 500" in run.stdout


def test_no_runtime_api_server(task_root: Path) -> None:
    import socket

    write(task_root, {"app.py": APP})
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    run = run_runtime(task_root, [], env={"AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}"})
    assert run.returncode == 1
    assert "LAMBDA_RUNTIME Failed to get next invocation. No Response from endpoint" in run.stdout


def test_log_level_and_unbuffered_print(task_root: Path) -> None:
    write(
        task_root,
        {
            "app.py": (
                "import logging\n"
                "logging.getLogger().info('at init')\n"
                "def handler(e, c):\n"
                "    print('partial', end='')\n"
                "    c.log('ctx-log')\n"
                "    logging.getLogger('x').debug('dbg')\n"
                "    return 1\n"
            )
        },
    )
    run = run_runtime(task_root, [FakeEvent({}, request_id="L1")], env={"AWS_LAMBDA_LOG_LEVEL": "TRACE"})
    assert "[INFO]\t" in run.stdout and "\t\tat init\n" in run.stdout  # empty request id before invoke
    assert "partialctx-log[DEBUG]\t" in run.stdout
    assert "\tL1\tdbg\n" in run.stdout
