"""`serve --watch`: hot reload of functions' code and layers, and of the template or rapidboot.toml.

What is watched: every function's code and layers (a directory recursively; a zip through its directory,
so an editor's save-by-rename is seen) and the definition file (through its directory, not recursively: a
project's root holds .venv, node_modules and build output nobody should put watches on).

What a change does (ServerState.apply, Function.refresh): the functions whose code or layers changed end
their idle environments and replace their provisioned ones at once; an invoke in flight finishes on the
old code; the next invoke starts a new environment on the new code (a changed layer is merged again: the
layer cache keys by content). A changed definition file is read again; functions are added, changed or
removed. One that does not read (or that the account cannot hold) keeps the last good configuration
running, and its error is printed as the reader gives it, with its file and line.

One batch of changes is one reload and one line: watchfiles' `awatch` (Rust's `notify`: inotify here,
FSEvents on macOS) yields a batch once no change has come for `STEP_MS`, or `DEBOUNCE_MS` after its first
change, so an editor saving 20 files, or a `git checkout`, reloads once.

Imported only with --watch: `import watchfiles` costs ~6 ms in a process that has the server imported
(anyio, watchfiles.main/run/filters; `python -X importtime`; 36 ms in a bare interpreter), so it is imported
when the reloader starts, never otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .config import ConfigError, Definition, DefinitionSource, FunctionConfig
from .server_state import Changes, ServerState

if TYPE_CHECKING:
    from watchfiles import Change

# A batch ends STEP_MS after its last change: an editor's save of many files, a formatter or a checkout
# writes them within a few ms of each other. Longer only delays every reload; that is all it costs.
STEP_MS = 50
DEBOUNCE_MS = 1600  # a batch that keeps growing is reloaded after this long anyway
LISTED_FILES = 5  # changed files named in a reload line; the rest are counted

# Never a reason to reload: bytecode the runtime writes beside the code, version control, editors' swap,
# backup and lock files (vim's `.swp`/`.swo` and its `4913` probe, `file~`, emacs `.#file` and `#file#`,
# JetBrains' safe-write copies, kate's `.kate-swp`, gedit's `.goutputstream-*`) and macOS' `.DS_Store`.
IGNORED_DIRECTORIES = frozenset({"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache"})
_IGNORED_NAMES = re.compile(
    r"(\.py[co]|\.sw[a-p]|~|___jb_(tmp|old)___|\.kate-swp)$|^(\.#|#.*#$|4913$|\.goutputstream-|\.DS_Store$)"
)


def ignored(relative: str) -> bool:
    """True for a path (relative to a watched root) that no reload should follow."""
    parts = relative.split(os.sep)
    return any(part in IGNORED_DIRECTORIES for part in parts) or _IGNORED_NAMES.search(parts[-1]) is not None


@dataclass(frozen=True, slots=True)
class Targets:
    """What one set of watches covers: absolute paths, as the watcher reports them."""

    definition: str | None  # the template or rapidboot.toml
    roots: Mapping[str, tuple[str, ...]]  # each function's code and layers (directories or zips)
    state_dir: str  # our own writes (layer cache, Event queue): never a change

    @classmethod
    def of(cls, state: ServerState, source: DefinitionSource) -> Targets:
        definition = os.path.abspath(source.path) if source.path is not None else None
        roots = {
            name: tuple(os.path.abspath(path) for path in (function.config.code, *function.config.layers))
            for name, function in state.functions.items()
        }
        return cls(definition, roots, os.path.abspath(state.config.state_dir))

    def watches(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """(directories watched recursively, directories watched alone). Paths that no longer exist are
        left out: their function is served as it was until the definition file changes."""
        directories = sorted({root for roots in self.roots.values() for root in roots if os.path.isdir(root)})
        recursive = [
            d for d in directories if not any(_inside(d, other) for other in directories if other != d)
        ]
        files = [root for roots in self.roots.values() for root in roots if os.path.isfile(root)]
        if self.definition is not None:
            files.append(self.definition)
        alone = {
            os.path.dirname(path)
            for path in files
            if not any(_inside(path, directory) for directory in recursive)
        }
        return tuple(recursive), tuple(sorted(d for d in alone if os.path.isdir(d)))

    def accepts(self, path: str) -> bool:
        """The watch filter: a change to the definition file or inside a function's code or layers."""
        if path == self.definition:
            return True
        if _inside(path, self.state_dir):
            return False
        for roots in self.roots.values():
            for root in roots:
                if _inside(path, root):
                    return not ignored(path[len(root) + 1 :])
                if path == root:  # a zip; a directory's own entry changes with every file made in it
                    return not os.path.isdir(path)
        return False

    def functions_of(self, paths: Iterable[str]) -> dict[str, list[str]]:
        """The functions whose code or layers hold one of `paths`, with those paths."""
        touched: dict[str, list[str]] = {}
        for path in paths:
            for name, roots in self.roots.items():
                if any(path == root or _inside(path, root) for root in roots):
                    touched.setdefault(name, []).append(path)
        return touched


def _inside(path: str, directory: str) -> bool:
    return path.startswith(directory + os.sep)


class Reloader:
    """Watches a running server's definitions; one `reload` per batch of changes."""

    def __init__(self, state: ServerState, source: DefinitionSource, notice: Callable[[str], None]):
        self._state = state
        self._source = source
        self._notice = notice
        self._task: asyncio.Task[None] | None = None
        self._batches: asyncio.Queue[set[str]] = asyncio.Queue()

    async def start(self) -> None:
        """Watching when this returns: a change made after it is seen."""
        targets = Targets.of(self._state, self._source)
        watch = self._watch(targets)
        # One turn of the loop runs each feeder into `awatch`, which puts its watches in place (RustNotify
        # is built synchronously) before its first await.
        await asyncio.sleep(0)
        self._task = asyncio.get_running_loop().create_task(self._run(targets, watch))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def reload(self, paths: set[str], targets: Targets) -> bool:
        """One reload for one batch of changed paths. True when the definition file changed (and with it,
        perhaps, what must be watched)."""
        touched = targets.functions_of(paths)
        definition_changed = targets.definition in paths
        definition = None
        if definition_changed:
            try:
                definition = await asyncio.to_thread(self._source.read)
            except ConfigError as exc:
                self._notice(f"rapidboot: {exc}; still serving the last good configuration")
        functions: Mapping[str, FunctionConfig]
        if definition is not None:
            functions = {**self._state.api_functions(), **definition.functions}  # the definition's win
        else:
            functions = {name: function.config for name, function in self._state.functions.items()}
        touched = {name: files for name, files in touched.items() if name in functions}
        if definition is None and not touched:
            return definition_changed
        forget_bytecode(file for files in touched.values() for file in files)
        try:
            changes = await self._state.apply(functions, touched, definition.template if definition else None)
        except ConfigError as exc:
            self._notice(f"rapidboot: {exc}; still serving the last good configuration")
            return definition_changed
        self._notice(self._line(definition, changes, touched))
        return definition_changed

    # Internals -------------------------------------------------------------------------------------------

    def _watch(self, targets: Targets) -> _Watch:
        recursive, alone = targets.watches()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        feeders = [
            loop.create_task(self._feed(paths, is_recursive, targets, stop))
            for paths, is_recursive in ((recursive, True), (alone, False))
            if paths
        ]
        return _Watch(stop, feeders)

    async def _feed(
        self, paths: tuple[str, ...], recursive: bool, targets: Targets, stop: asyncio.Event
    ) -> None:
        from watchfiles import Change, awatch  # lazy: see the module's docstring

        def accept(change: Change, path: str) -> bool:
            return targets.accepts(path)

        try:
            async for changes in awatch(
                *paths,
                watch_filter=accept,
                debounce=DEBOUNCE_MS,
                step=STEP_MS,
                stop_event=stop,
                recursive=recursive,
                raise_interrupt=None,  # the default warns; the server handles SIGINT itself
            ):
                seen: dict[str, set[Change]] = {}
                for change, path in changes:
                    seen.setdefault(path, set()).add(change)
                # An editor's (or `sed -i`'s) temporary file, made and gone within the batch, changed nothing.
                batch = {
                    path
                    for path, kinds in seen.items()
                    if not ({Change.added, Change.deleted} <= kinds and not os.path.lexists(path))
                }
                if batch:
                    self._batches.put_nowait(batch)
        except OSError as exc:  # a watched directory went away as the watch started
            self._notice(f"rapidboot: cannot watch {', '.join(paths)}: {exc}")

    async def _run(self, targets: Targets, watch: _Watch) -> None:
        try:
            while True:
                batch = await self._batches.get()
                while not self._batches.empty():  # the other watcher's share of the same burst
                    batch |= self._batches.get_nowait()
                if not await self.reload(batch, targets):
                    continue
                new_targets = Targets.of(self._state, self._source)
                if new_targets != targets:  # functions or their paths changed: watch what is there now
                    await watch.close()
                    targets, watch = new_targets, self._watch(new_targets)
        finally:
            await watch.close()

    def _line(self, definition: Definition | None, changes: Changes, touched: Mapping[str, list[str]]) -> str:
        files = sorted({self._display(file) for paths in touched.values() for file in paths})
        listed = ", ".join(files[:LISTED_FILES]) + (
            f" and {len(files) - LISTED_FILES} more" if len(files) > LISTED_FILES else ""
        )
        if definition is None:
            names = ", ".join(sorted(touched))
            return f"rapidboot: reloaded {names}: {listed}"
        assert self._source.path is not None
        parts = [
            f"{what} {', '.join(names)}"
            for what, names in (
                ("added", changes.added),
                ("changed", changes.changed),
                ("removed", changes.removed),
            )
            if names
        ]
        summary = "; ".join(parts) or "no function changed"
        return f"rapidboot: reloaded {self._display(str(self._source.path))}: {summary}" + (
            f" ({listed})" if files else ""
        )

    def _display(self, path: str) -> str:
        """A changed file as the user knows it: relative to the definition file's directory, or the
        working directory, when under one."""
        absolute = os.path.abspath(path)
        bases = [os.path.dirname(os.path.abspath(self._source.path))] if self._source.path else []
        for base in (*bases, os.getcwd()):
            if _inside(absolute, base):
                return os.path.relpath(absolute, base)
        return absolute


@dataclass(slots=True)
class _Watch:
    stop: asyncio.Event  # each watcher thread sees it within STEP_MS and ends
    feeders: list[asyncio.Task[None]]

    async def close(self) -> None:
        self.stop.set()
        await asyncio.gather(*self.feeders, return_exceptions=True)


def forget_bytecode(paths: Iterable[str]) -> None:
    """Remove the cached bytecode of changed modules. Python trusts a `__pycache__` entry whose recorded
    source mtime (whole seconds) and size match: an edit of the same size within the second the module was
    last compiled would otherwise run the old code in the next environment."""
    for path in paths:
        if not path.endswith(".py"):
            continue
        directory, name = os.path.split(path)
        cache = Path(directory, "__pycache__")
        for compiled in cache.glob(f"{name[:-3]}.*.pyc") if cache.is_dir() else ():
            with contextlib.suppress(OSError):
                compiled.unlink()
