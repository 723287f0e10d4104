"""Handler loading in-process: each init error type with awslambdaric's exact message."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from rapidboot.runtime.errors import ErrorReport, FaultError
from rapidboot.runtime.handler import load_handler


@pytest.fixture
def code_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        del sys.modules[name]


def fault(name: str) -> FaultError:
    with pytest.raises(FaultError) as info:
        load_handler(name)
    return info.value


def test_loads_function_and_nested_path(code_dir: Path) -> None:
    (code_dir / "hmod_a.py").write_text("def handler(e, c):\n    return 'a'\n")
    (code_dir / "pkg_h" / "sub").mkdir(parents=True)
    (code_dir / "pkg_h" / "sub" / "mod.py").write_text("def fn(e, c):\n    return 'nested'\n")
    assert load_handler("hmod_a.handler")(None, None) == "a"
    assert load_handler("pkg_h/sub/mod.fn")(None, None) == "nested"


def test_malformed() -> None:
    error = fault("nodot")
    assert (error.error_type, error.message) == (
        "Runtime.MalformedHandlerName",
        "Bad handler 'nodot': not enough values to unpack (expected 2, got 1)",
    )


def test_builtin_conflict() -> None:
    error = fault("sys.path.handler")
    assert (error.error_type, error.message) == (
        "Runtime.BuiltInModuleConflict",
        "Cannot use built-in module sys.path as a handler module",
    )


def test_import_error(code_dir: Path) -> None:
    error = fault("hmod_missing.handler")
    assert (error.error_type, error.message) == (
        "Runtime.ImportModuleError",
        "Unable to import module 'hmod_missing': No module named 'hmod_missing'",
    )


def test_syntax_error(code_dir: Path) -> None:
    (code_dir / "hmod_syntax.py").write_text("def f(:\n")
    error = fault("hmod_syntax.handler")
    assert error.error_type == "Runtime.UserCodeSyntaxError"
    assert error.message == "Syntax error in module 'hmod_syntax': invalid syntax (hmod_syntax.py, line 1)"
    assert error.stack_trace == [f'  File "{code_dir / "hmod_syntax.py"}" Line 1\n    def f(:\n']


def test_handler_not_found(code_dir: Path) -> None:
    (code_dir / "hmod_b.py").write_text("x = 1\n")
    error = fault("hmod_b.handler")
    assert (error.error_type, error.message) == (
        "Runtime.HandlerNotFound",
        "Handler 'handler' missing on module 'hmod_b'",
    )


def test_exception_at_import_keeps_user_frames_only(code_dir: Path) -> None:
    (code_dir / "hmod_c.py").write_text("def boom():\n    raise ValueError('bad config')\nboom()\n")
    with pytest.raises(ValueError) as info:
        load_handler("hmod_c.handler")
    report = ErrorReport.from_exception(info.value)
    path = code_dir / "hmod_c.py"
    # the test function leads this traceback (the process tests check stripping), so compare the tail
    assert report.stack_trace[-2:] == [
        f'  File "{path}", line 3, in <module>\n    boom()\n',
        f"  File \"{path}\", line 2, in boom\n    raise ValueError('bad config')\n",
    ]
    assert (report.error_type, report.message) == ("ValueError", "bad config")
