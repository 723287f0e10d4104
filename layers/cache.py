"""Content-addressed merged trees, built once and reused by every later start.

Layout under the cache directory (the server passes `<state-dir>/layers`; the CLI defaults to
`$XDG_CACHE_HOME/rapidboot/layers`, else `~/.cache/rapidboot/layers`):

    trees/<key>/tree/            the merged tree (/opt, or a task root extracted from a code zip)
    trees/<key>/manifest.json    where each entry came from (`explain`)
    trees/<key>/size             its unzipped size in bytes, read on every reuse
    digests/<hash of the path>   a zip's SHA-256, remembered for one exact stat() of the file
    locks/<key>.lock             flock()ed while one process builds <key>
    staging/<key>.<random>/      a build in progress; renamed to trees/<key> when complete

The key hashes the inputs in order:
- a zip file by the SHA-256 of its bytes. Hashing 100 MB takes ~60 ms, so the digest is remembered against
  the file's (device, inode, size, mtime_ns, ctime_ns): a reuse costs one stat() per layer. ctime cannot be
  set by tools that preserve mtimes (cp -p, rsync -t, touch -d), so an edited file is always re-hashed;
- a directory by a walk of stat() calls, not its contents: relative paths, types, modes, sizes, symlink
  targets, mtime_ns and ctime_ns. Thousands of files take milliseconds, and any edit, even one that keeps
  size and mtime, changes ctime. The cost of not hashing contents is a spurious rebuild after a `touch`,
  a re-checkout or a copy of unchanged files, never a stale tree.

A tree is complete exactly when trees/<key> exists: it appears by one rename of a finished staging
directory, so readers need no lock. Builders of the same key serialise on the lock file and re-check after
acquiring it, so concurrent starts build once and all get the same tree.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rapidboot.layers.archive import Source
from rapidboot.layers.errors import LayerError
from rapidboot.layers.limits import Budget
from rapidboot.layers.manifest import Manifest
from rapidboot.layers.merge import build
from rapidboot.layers.tree import DIRECTORY_MODE

# Part of every key: bump it when the tree format or the merge semantics change.
FORMAT = b"rapidboot-layers-1"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "rapidboot" / "layers"


@dataclass(frozen=True, slots=True)
class CachedTree:
    key: str
    root: Path  # the merged tree
    unzipped_bytes: int
    reused: bool  # False when this call built it

    def manifest(self) -> Manifest:
        with open(self.root.parent / "manifest.json", encoding="utf-8") as file:
            return Manifest.from_json(json.load(file))


class LayerCache:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(os.path.abspath(directory))

    def tree(self, sources: Sequence[Source], budget: Budget) -> CachedTree:
        """The merged tree of `sources`, built now if no earlier call built it. A reused tree's unzipped
        size is charged to `budget` as a whole; a new one is charged as it is extracted."""
        key = self.key(sources)
        found = self._lookup(key)
        if found is None:
            with self._lock(key):
                found = self._lookup(key)
                if found is None:
                    return self._build(key, sources, budget)
        budget.charge_tree(found.unzipped_bytes, _describe(sources))
        return found

    def key(self, sources: Sequence[Source]) -> str:
        digest = hashlib.sha256(FORMAT)
        for source in sources:
            if source.data is not None:  # the same key as the zip file of these bytes
                known = source.digest or hashlib.sha256(source.data).hexdigest()
                digest.update(b"\0zip\0" + known.encode())
            elif source.path.is_dir():
                digest.update(b"\0dir\0" + directory_fingerprint(source.path).encode())
            elif source.path.is_file():
                digest.update(b"\0zip\0" + self.zip_digest(source.path).encode())
            else:
                raise LayerError(f"{source.label}: no such file or directory")
        return digest.hexdigest()[:40]

    def zip_digest(self, path: Path) -> str:
        """SHA-256 of the file's bytes, remembered for one exact stat() signature of the file."""
        try:
            info = os.stat(path)
        except OSError as error:
            raise LayerError(f"'{path}': cannot read it ({error.strerror})") from None
        signature = f"{info.st_dev} {info.st_ino} {info.st_size} {info.st_mtime_ns} {info.st_ctime_ns}"
        memo = self.directory / "digests" / hashlib.sha256(os.fsencode(os.path.abspath(path))).hexdigest()
        try:
            remembered_signature, remembered_digest = memo.read_text().split("\n")[:2]
            if remembered_signature == signature:
                return remembered_digest
        except (OSError, ValueError):
            pass
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as file:
                while chunk := file.read(1 << 20):
                    digest.update(chunk)
        except OSError as error:
            raise LayerError(f"'{path}': cannot read it ({error.strerror})") from None
        _write_atomically(memo, f"{signature}\n{digest.hexdigest()}\n")
        return digest.hexdigest()

    def remember_digest(self, path: Path, digest: str) -> None:
        """Record `digest` (hex SHA-256) as the zip file's, for its stat() signature now, so that the next
        `zip_digest` of it reads nothing: for a file whose bytes were just hashed in memory."""
        try:
            info = os.stat(path)
        except OSError as error:
            raise LayerError(f"'{path}': cannot read it ({error.strerror})") from None
        signature = f"{info.st_dev} {info.st_ino} {info.st_size} {info.st_mtime_ns} {info.st_ctime_ns}"
        memo = self.directory / "digests" / hashlib.sha256(os.fsencode(os.path.abspath(path))).hexdigest()
        _write_atomically(memo, f"{signature}\n{digest}\n")

    # -- internals -------------------------------------------------------------------------------------

    def _lookup(self, key: str) -> CachedTree | None:
        entry = self.directory / "trees" / key
        try:
            size = int((entry / "size").read_text())
        except (OSError, ValueError):
            return None
        return CachedTree(key, entry / "tree", size, reused=True)

    def _build(self, key: str, sources: Sequence[Source], budget: Budget) -> CachedTree:
        staging_root = self.directory / "staging"
        staging_root.mkdir(parents=True, exist_ok=True)
        for stale in staging_root.glob(f"{key}.*"):  # left by a builder that died; we hold the lock
            shutil.rmtree(stale, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=staging_root))
        try:
            tree = staging / "tree"
            tree.mkdir(mode=DIRECTORY_MODE)
            manifest = build(sources, tree, budget)
            (staging / "manifest.json").write_text(manifest.dumps(), encoding="utf-8")
            (staging / "size").write_text(str(manifest.unzipped_bytes))
            (self.directory / "trees").mkdir(exist_ok=True)
            os.rename(staging, self.directory / "trees" / key)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return CachedTree(key, self.directory / "trees" / key / "tree", manifest.unzipped_bytes, reused=False)

    def _lock(self, key: str) -> _FileLock:
        locks = self.directory / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        return _FileLock(locks / f"{key}.lock")


class _FileLock:
    """flock(): released by the kernel if the holder dies, so a crashed build never wedges the cache."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._descriptor = -1

    def __enter__(self) -> None:
        self._descriptor = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(self._descriptor, fcntl.LOCK_EX)

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._descriptor)  # closing releases the lock


def directory_fingerprint(root: Path) -> str:
    """A hash of the directory's metadata (see the module docstring for why not its contents)."""
    digest = hashlib.sha256()
    stack = [root]
    while stack:
        directory = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as error:
            raise LayerError(f"'{directory}': cannot list it ({error.strerror})") from None
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            relative = os.path.relpath(entry.path, root)
            target = os.readlink(entry.path) if stat.S_ISLNK(info.st_mode) else ""
            digest.update(
                f"{relative}\0{info.st_mode:o}\0{info.st_size}\0{info.st_mtime_ns}\0{info.st_ctime_ns}\0"
                f"{target}\n".encode("utf-8", "surrogateescape")
            )
            if entry.is_dir(follow_symlinks=False):
                stack.append(Path(entry.path))
    return digest.hexdigest()


def _describe(sources: Sequence[Source]) -> str:
    return ", ".join(source.label for source in sources)


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
