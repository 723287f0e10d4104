"""Hot reload (`serve --watch`, rapid_server/reload.py): what is a change, one reload per burst, a broken
definition keeps the last good configuration, and functions added, changed and removed in a running
ServerState with the concurrency limits kept consistent. The watcher is real (watchfiles on tmp_path);
no environment is started here (tests/e2e/test_e2e_reload.py runs code through a real server)."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Iterator
from pathlib import Path

import pytest

from rapidboot.rapid_server.config import (
    ConfigError,
    Definition,
    DefinitionSource,
    FunctionConfig,
    ServerConfig,
    load_toml,
    validate_function,
)
from rapidboot.rapid_server.data_plane.concurrency import ConcurrencyLimiter
from rapidboot.rapid_server.data_plane.limits import LimitsFactory
from rapidboot.rapid_server.data_plane.logs import LogSink
from rapidboot.rapid_server.reload import Reloader, Targets, forget_bytecode, ignored
from rapidboot.rapid_server.server_state import ServerState

DEADLINE_S = 20.0  # a bound, not an expectation


def run(coroutine: Awaitable[None]) -> None:
    async def bounded() -> None:
        async with asyncio.timeout(DEADLINE_S):
            await coroutine

    asyncio.run(bounded())


@pytest.fixture
def limits(tmp_path: Path) -> Iterator[LimitsFactory]:
    factory = LimitsFactory(None, tmp_path / "scratch")
    yield factory
    factory.close()


def function(tmp_path: Path, name: str, **settings: object) -> FunctionConfig:
    code = tmp_path / name
    code.mkdir(exist_ok=True)
    (code / "app.py").write_text("def handler(event, context):\n    return 1\n")
    return validate_function(name, name, code, "app.handler", **settings)  # type: ignore[arg-type]


def state_of(tmp_path: Path, limits: LimitsFactory, *functions: FunctionConfig, **server: int) -> ServerState:
    config = ServerConfig({f.name: f for f in functions}, state_dir=tmp_path / "state", **server)  # type: ignore[arg-type]
    return ServerState(config, LogSink(io.BytesIO()), _raise, limits)


def _raise(exc: BaseException) -> None:
    raise exc


class Notices:
    """The reloader's lines; a test waits for the next one on a condition, never a sleep."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._arrived = asyncio.Event()

    def __call__(self, line: str) -> None:
        self.lines.append(line)
        self._arrived.set()

    async def next(self, seen: int) -> str:
        while len(self.lines) <= seen:
            self._arrived.clear()
            await self._arrived.wait()
        return self.lines[seen]


# --- What is a change ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "relative",
    [
        "__pycache__/app.cpython-312.pyc",
        "pkg/__pycache__/mod.cpython-312.pyc",
        "app.pyc",
        ".app.py.swp",
        ".app.py.swo",
        "4913",
        "app.py~",
        ".#app.py",
        "#app.py#",
        "app.py___jb_tmp___",
        ".git/index",
        "vendor/.git/HEAD",
    ],
)
def test_bytecode_version_control_and_editor_files_are_not_changes(relative: str) -> None:
    assert ignored(relative)


@pytest.mark.parametrize("relative", ["app.py", "pkg/mod.py", "data/config.json", "lib/libx.so", "bootstrap"])
def test_code_files_are_changes(relative: str) -> None:
    assert not ignored(relative)


def test_targets_accept_code_layers_and_the_definition_and_nothing_else(tmp_path: Path) -> None:
    root = str(tmp_path)
    targets = Targets(
        definition=f"{root}/template.yaml",
        roots={"A": (f"{root}/src", f"{root}/layer.zip"), "B": (f"{root}/src",)},
        state_dir=f"{root}/src/.rapidboot",
    )
    assert targets.accepts(f"{root}/template.yaml")
    assert targets.accepts(f"{root}/src/app.py")
    assert targets.accepts(f"{root}/layer.zip")
    assert not targets.accepts(f"{root}/README.md")  # beside the template, watched only for the template
    assert not targets.accepts(f"{root}/src/.rapidboot/layers/trees/k/tree/x.py")  # our own writes
    assert not targets.accepts(f"{root}/src/__pycache__/app.cpython-312.pyc")
    assert not targets.accepts(f"{root}/srcother/app.py")  # a sibling with the same prefix
    assert targets.functions_of([f"{root}/src/app.py", f"{root}/layer.zip"]) == {
        "A": [f"{root}/src/app.py", f"{root}/layer.zip"],
        "B": [f"{root}/src/app.py"],
    }


def test_a_changed_module_loses_its_bytecode_and_no_other(tmp_path: Path) -> None:
    cache = tmp_path / "__pycache__"
    cache.mkdir()
    for name in ("app.cpython-311.pyc", "app.cpython-312.pyc", "other.cpython-312.pyc"):
        (cache / name).write_bytes(b"")
    forget_bytecode([str(tmp_path / "app.py"), str(tmp_path / "data.json")])
    assert sorted(p.name for p in cache.iterdir()) == ["other.cpython-312.pyc"]


# --- One reload per burst, through a real watcher -------------------------------------------------------


def test_a_burst_of_20_files_is_one_reload(tmp_path: Path, limits: LimitsFactory) -> None:
    state = state_of(tmp_path, limits, function(tmp_path, "fn"))
    source = DefinitionSource(None, lambda: Definition({"fn": state.functions["fn"].config}))
    notices = Notices()
    code = tmp_path / "fn"
    contents = [(code / f"module{i:02}.py", f"VALUE = {i}\n") for i in range(20)]

    async def scenario() -> None:
        reloader = Reloader(state, source, notices)
        await reloader.start()
        for path, text in contents:  # as an editor's "save all" does: one write after another
            path.write_text(text)
        first = await notices.next(0)
        (code / "app.py").write_text("def handler(event, context):\n    return 2\n")  # a later, separate save
        second = await notices.next(1)
        await reloader.stop()
        listed = ", ".join(str(path) for path, _ in contents[:5])
        assert first == f"rapidboot: reloaded fn: {listed} and 15 more", notices.lines
        assert second == f"rapidboot: reloaded fn: {code / 'app.py'}", notices.lines
        assert len(notices.lines) == 2, notices.lines

    run(scenario())


# --- A broken definition keeps the last good one ---------------------------------------------------------

TOML = """\
[functions.first]
code = "first"
handler = "app.handler"
"""


def test_a_broken_edit_keeps_the_last_good_configuration_and_a_fix_applies(
    tmp_path: Path, limits: LimitsFactory
) -> None:
    function(tmp_path, "first")
    function(tmp_path, "second")
    toml = tmp_path / "rapidboot.toml"
    toml.write_text(TOML)
    source = DefinitionSource(toml, lambda: Definition(load_toml(toml)))
    state = state_of(tmp_path, limits, *source.read().functions.values())
    notices = Notices()

    async def scenario() -> None:
        reloader = Reloader(state, source, notices)
        await reloader.start()
        toml.write_text(TOML + "[functions.second\n")
        broken = await notices.next(0)
        assert broken.startswith(f"rapidboot: {toml}: not valid TOML: "), broken
        assert broken.endswith("; still serving the last good configuration"), broken
        assert list(state.functions) == ["first"]
        toml.write_text(TOML + '[functions.second]\ncode = "second"\nhandler = "app.handler"\nmemory = 256\n')
        fixed = await notices.next(1)
        await reloader.stop()
        assert fixed == "rapidboot: reloaded rapidboot.toml: added second", fixed
        assert state.functions["second"].config.memory_mb == 256

    run(scenario())


# --- Functions added, changed, removed ------------------------------------------------------------------


def test_apply_adds_changes_and_removes_functions(tmp_path: Path, limits: LimitsFactory) -> None:
    keep, change, remove = (function(tmp_path, name) for name in ("keep", "change", "remove"))
    state = state_of(tmp_path, limits, keep, change, remove)
    kept = state.functions["keep"]
    changed = state.functions["change"]
    removed = state.functions["remove"]
    new = function(tmp_path, "new", reserved_concurrency=5)
    bigger = validate_function("change", "change", change.code, "app.handler", memory=1024)

    async def scenario() -> None:
        changes = await state.apply({"keep": keep, "change": bigger, "new": new}, refreshed=())
        assert (changes.added, changes.changed, changes.removed) == (("new",), ("change",), ("remove",))
        assert state.functions["keep"] is kept  # untouched: its environments live on
        assert state.functions["change"] is changed  # the same pool, refreshed in place
        assert changed.config.memory_mb == 1024
        assert list(state.functions) == ["keep", "change", "new"]
        state.limiter.acquire("new")  # the new function's reservation is in force
        state.limiter.release("new")
        await state.stop_functions()

    run(scenario())
    assert removed not in state.functions.values()


def test_a_reload_over_the_account_limit_is_refused_and_changes_nothing(
    tmp_path: Path, limits: LimitsFactory
) -> None:
    first = function(tmp_path, "first", reserved_concurrency=6)
    state = state_of(tmp_path, limits, first, max_concurrency=10)
    greedy = function(tmp_path, "greedy", reserved_concurrency=5)

    async def scenario() -> None:
        with pytest.raises(ConfigError, match=r"reserved_concurrency adds up to 11"):
            await state.apply({"first": first, "greedy": greedy})
        assert list(state.functions) == ["first"]
        assert state.config.functions == {"first": first}
        for _ in range(6):  # first's reservation is as it was
            state.limiter.acquire("first")
        with pytest.raises(Exception, match="Rate Exceeded"):
            state.limiter.acquire("first")
        await state.stop_functions()

    run(scenario())


def test_limiter_keeps_in_flight_units_consistent_across_a_reconfigure() -> None:
    limiter = ConcurrencyLimiter(10, {"a": None, "b": 4})
    limiter.acquire("a")
    limiter.acquire("a")
    limiter.acquire("b")
    # a gains a reservation, b loses its own and then is removed while its invoke runs
    limiter.reconfigure({"a": 3, "c": None})
    limiter.acquire("a")  # a: 3 of 3
    with pytest.raises(Exception, match="Rate Exceeded"):
        limiter.acquire("a")
    for _ in range(6):  # 10 - 3 reserved = 7 shared, 1 held by b's invoke in flight
        limiter.acquire("c")
    with pytest.raises(Exception, match="Rate Exceeded"):
        limiter.acquire("c")
    limiter.release("b")  # b's last invoke ends: its unit goes back to the shared pool
    limiter.acquire("c")
    for name, count in (("a", 3), ("c", 7)):
        for _ in range(count):
            limiter.release(name)
    assert limiter.total_in_use == 0
    assert limiter.in_use("b") == 0
