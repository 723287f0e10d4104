"""Reading one layer or code package, a zip file or a directory, as a stream of checked members.

Every member name is checked here, before anything is written: no absolute paths, no `..`, no NUL. What a
name *resolves* to once earlier members and layers exist (symlinks) is checked where it is placed, in
`layers/tree.py`. Member types follow the zip's Unix mode (`external_attr >> 16`, as Info-ZIP writes it):
regular files keep their permission bits (the executable bit of `bin/` tools and `bootstrap`), S_IFLNK
members are symlinks whose content is the target, and anything else (devices, FIFOs) is refused.
"""

from __future__ import annotations

import io
import os
import stat
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal, Protocol

from rapidboot.layers.errors import LayerError

Kind = Literal["file", "dir", "symlink"]

# PATH_MAX on Linux; a longer "symlink" member is not a symlink, and reading it unbounded would be a bomb.
MAX_LINK_TARGET = 4096
DEFAULT_FILE_MODE = 0o644  # zips made on Windows carry no Unix mode
DEFAULT_DIR_MODE = 0o755
# What zipfile raises for a damaged member: bad CRC, truncated data, unsupported or encrypted compression.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)


class ByteStream(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Member:
    """One entry to place: `parts` is the checked relative path, `name` the path as the source spells it."""

    name: str
    parts: tuple[str, ...]
    kind: Kind
    mode: int
    link_target: str | None = None
    open: Callable[[], ByteStream] | None = None
    # Directory sources only: where the entry is, so a staged tree can be moved into place by rename.
    location: str | None = None


@dataclass(frozen=True, slots=True)
class Source:
    """A layer or code package: `label` is how messages name it (`layer 2 'b.zip'`)."""

    path: Path
    label: str
    # A zip already in memory (a CreateFunction's decoded ZipFile): read from here, not from `path`,
    # which may not be written yet; `digest` is its SHA-256 (hex), the cache key the file will have.
    data: bytes | None = None
    digest: str | None = None

    @property
    def kind(self) -> Literal["zip", "dir"]:
        return "zip" if self.data is not None or not self.path.is_dir() else "dir"


def safe_parts(name: str, label: str) -> tuple[str, ...]:
    """The checked components of a member name; raises on absolute paths, `..` and NUL.

    Backslashes count as separators, as Info-ZIP's unzip treats them in archives made on Windows; `.` and
    empty components are dropped. An empty result means the archive's root itself."""
    if "\0" in name:
        raise LayerError(f"{label}: member {name!r} has a NUL byte in its name; refused")
    normalized = name.replace("\\", "/")
    parts = tuple(part for part in normalized.split("/") if part not in ("", "."))
    # A drive letter is judged after `.` components are dropped: `./c:` is as absolute as `c:`.
    first = parts[0] if parts else ""
    drive_letter = len(first) >= 2 and first[1] == ":" and first[0].isalpha()
    if normalized.startswith("/") or drive_letter:
        raise LayerError(f"{label}: member {name!r} is an absolute path; refused")
    if ".." in parts:
        raise LayerError(f"{label}: member {name!r} has '..' in its path; refused")
    return parts


def members(source: Source) -> Iterator[Member]:
    """The members of a zip file or a directory, in the order they are to be applied."""
    if source.data is not None:
        return _zip_members(source)
    if source.path.is_dir():
        return _directory_members(source)
    if not source.path.exists():
        raise LayerError(f"{source.label}: no such file or directory")
    return _zip_members(source)


def _zip_members(source: Source) -> Iterator[Member]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(source.data) if source.data is not None else source.path)
    except zipfile.BadZipFile as error:
        raise LayerError(f"{source.label}: not a zip file or a directory ({error})") from None
    except (OSError, EOFError, ValueError) as error:
        raise LayerError(f"{source.label}: cannot read it as a zip file ({error})") from None
    with archive:
        for info in archive.infolist():
            parts = safe_parts(info.filename, source.label)
            mode = info.external_attr >> 16
            file_type = stat.S_IFMT(mode)
            if info.is_dir() or file_type == stat.S_IFDIR:
                if parts:
                    yield Member(info.filename, parts, "dir", DEFAULT_DIR_MODE)
                continue
            if not parts:
                raise LayerError(f"{source.label}: member {info.filename!r} has an empty path; refused")
            if file_type == stat.S_IFLNK:
                target = _read_link_target(archive, info, source.label)
                yield Member(info.filename, parts, "symlink", 0o777, link_target=target)
            elif file_type in (0, stat.S_IFREG):  # 0: only permission bits, or no Unix mode at all
                permissions = stat.S_IMODE(mode) & 0o777 if mode & 0o777 else DEFAULT_FILE_MODE
                yield Member(
                    info.filename, parts, "file", permissions, open=_opener(archive, info, source.label)
                )
            else:
                raise LayerError(
                    f"{source.label}: member {info.filename!r} is not a regular file, directory or symlink "
                    f"(mode {mode:#o}); refused"
                )


def _opener(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> Callable[[], ByteStream]:
    def open_member() -> ByteStream:
        return _open_member(archive, info, label)

    return open_member


def _read_link_target(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> str:
    with _open_member(archive, info, label) as stream:
        raw = stream.read(MAX_LINK_TARGET + 1)
    if not raw or len(raw) > MAX_LINK_TARGET or b"\0" in raw:
        raise LayerError(
            f"{label}: member {info.filename!r} is a symlink with an empty, over-long or NUL target; refused"
        )
    return os.fsdecode(raw)


def _open_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> _GuardedReader:
    try:
        return _GuardedReader(archive.open(info), label, info.filename)
    except _READ_ERRORS as error:
        raise LayerError(f"{label}: member {info.filename!r} cannot be read ({error})") from None


class _GuardedReader:
    """A member stream whose decompression and CRC errors become LayerErrors naming archive and member."""

    def __init__(self, stream: IO[bytes], label: str, name: str) -> None:
        self._stream = stream
        self._label = label
        self._name = name

    def read(self, size: int = -1) -> bytes:
        try:
            return self._stream.read(size)
        except _READ_ERRORS as error:
            raise LayerError(f"{self._label}: member {self._name!r} is corrupt ({error})") from None

    def close(self) -> None:
        self._stream.close()

    def __enter__(self) -> _GuardedReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _directory_members(source: Source) -> Iterator[Member]:
    """Depth-first, names sorted, so a directory layer applies in the same order every time."""
    stack: list[tuple[Path, tuple[str, ...]]] = [(source.path, ())]
    while stack:
        directory, prefix = stack.pop()
        try:
            entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
        except OSError as error:
            raise LayerError(f"{source.label}: cannot list {directory} ({error.strerror})") from None
        subdirectories: list[tuple[Path, tuple[str, ...]]] = []
        for entry in entries:
            parts = (*prefix, entry.name)
            name = "/".join(parts)
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                target = os.readlink(entry.path)
                yield Member(name, parts, "symlink", 0o777, link_target=target, location=entry.path)
            elif stat.S_ISDIR(info.st_mode):
                yield Member(name, parts, "dir", DEFAULT_DIR_MODE)
                subdirectories.append((Path(entry.path), parts))
            elif stat.S_ISREG(info.st_mode):
                yield Member(
                    name,
                    parts,
                    "file",
                    stat.S_IMODE(info.st_mode) & 0o777,
                    open=_file_opener(entry.path),
                    location=entry.path,
                )
            else:
                raise LayerError(
                    f"{source.label}: {name!r} is not a regular file, directory or symlink; refused"
                )
        stack.extend(reversed(subdirectories))


def _file_opener(path: str) -> Callable[[], ByteStream]:
    def open_file() -> ByteStream:
        return open(path, "rb")  # the caller closes it

    return open_file
