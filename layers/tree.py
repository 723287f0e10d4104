"""Placing members into one directory tree, Lambda's way, without ever writing outside it.

Lambda unzips each layer into /opt in order; a path in several layers comes from the last one, same-name
folders merge. `TreeBuilder` does the same with every conflict resolved as "last wins":

- a file or symlink replaces whatever was at its path, a directory included (its whole subtree goes);
- a member *under* a path where an earlier layer left a file, or a symlink to a file or to nowhere,
  replaces that with a directory;
- a path that goes through a symlink to a directory inside the tree is followed, as unzip would, and
  refused if the symlink leads outside the tree;
- a symlink member must be relative and must resolve inside the tree when it is created; after the last
  layer every symlink is resolved again (a later layer can turn `a/..` into a different place), so the
  finished tree has no way out.

Files are created with O_EXCL | O_NOFOLLOW after the old entry is removed, so an existing file or hard link is
never written through. Every chunk is charged to the size budget before it is written.
"""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass, field

from rapidboot.layers.archive import Member, Source, members
from rapidboot.layers.errors import LayerError
from rapidboot.layers.limits import Budget
from rapidboot.layers.manifest import EntryKind, LayerInfo, Manifest, Origin

CHUNK = 1 << 20
DIRECTORY_MODE = 0o755


@dataclass(slots=True)
class _Record:
    kind: EntryKind
    layer: int
    overrode: list[int] = field(default_factory=list)
    link_target: str | None = None


class TreeBuilder:
    """Applies sources onto `root` in order. `move=True` renames a directory source's files into place
    instead of copying them (a staged tree on the same filesystem being published); no budget is charged."""

    def __init__(self, root: os.PathLike[str] | str, budget: Budget, *, move: bool = False) -> None:
        self.root = os.path.realpath(root)
        self.budget = budget
        self.move = move
        self._records: dict[str, _Record] = {}
        self._labels: dict[int, str] = {}
        self._layers: list[LayerInfo] = []

    def apply(self, source: Source, number: int) -> LayerInfo:
        self._labels[number] = source.label
        before = self.budget.used
        for member in members(source):
            try:
                self._place(member, source, number)
            except OSError as error:
                raise LayerError(
                    f"{source.label}: member {member.name!r}: cannot extract it ({error.strerror})"
                ) from None
        info = LayerInfo(number, str(source.path), source.kind, self.budget.used - before)
        self._layers.append(info)
        return info

    def finish(self) -> Manifest:
        """Checks every symlink once more, now that no later layer can change what it resolves to."""
        for path, record in self._records.items():
            if record.kind == "symlink" and not self._inside(os.path.realpath(os.path.join(self.root, path))):
                raise LayerError(
                    f"{self._labels[record.layer]}: symlink {path!r} -> {record.link_target!r} resolves "
                    "outside the tree once all layers are applied (through another symlink); refused"
                )
        entries = tuple(
            Origin(path, record.kind, record.layer, tuple(record.overrode), record.link_target)
            for path, record in sorted(self._records.items())
        )
        return Manifest(tuple(self._layers), entries)

    # -- placing one member ------------------------------------------------------------------------------

    def _place(self, member: Member, source: Source, number: int) -> None:
        if member.kind == "dir":
            self._directory(member.parts, member, source, number)
            return
        parent = self._directory(member.parts[:-1], member, source, number)
        destination = os.path.join(parent, member.parts[-1])
        relative = self._relative(destination)
        overrode = self._clear(destination, relative, number)
        if member.kind == "file":
            self._write(destination, member, source)
        else:
            self._link(destination, member, source)
        self._records[relative] = _Record(member.kind, number, overrode, member.link_target)

    def _directory(self, parts: tuple[str, ...], member: Member, source: Source, number: int) -> str:
        """The real path of directory `parts`, created as needed; last wins over files in the way."""
        current = self.root
        for part in parts:
            candidate = os.path.join(current, part)
            try:
                mode = os.lstat(candidate).st_mode
            except FileNotFoundError:
                self._mkdir(candidate)
                current = candidate
                continue
            if stat.S_ISDIR(mode):
                current = candidate
                continue
            if stat.S_ISLNK(mode):
                real = os.path.realpath(candidate)
                if not self._inside(real):
                    raise LayerError(
                        f"{source.label}: member {member.name!r} would be written through symlink "
                        f"{self._relative(candidate)!r} -> {os.readlink(candidate)!r}, which leads outside "
                        "the tree; refused"
                    )
                if os.path.isdir(real):
                    current = real
                    continue
            # A file, or a symlink to a file or to nowhere: this layer's directory replaces it.
            relative = self._relative(candidate)
            overrode = self._clear(candidate, relative, number)
            self._mkdir(candidate)
            self._records[relative] = _Record("dir", number, overrode)
            current = candidate
        return current

    def _clear(self, path: str, relative: str, number: int) -> list[int]:
        """Removes whatever is at `path` (not following a symlink) and returns the layers it came from."""
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return []
        overrode: list[int] = []
        previous = self._records.pop(relative, None)
        if previous is not None:
            overrode += [*previous.overrode, previous.layer]
        if stat.S_ISDIR(mode):
            prefix = relative + "/"
            for key in [key for key in self._records if key.startswith(prefix)]:
                overrode.append(self._records.pop(key).layer)
            shutil.rmtree(path)
        else:
            os.unlink(path)
        return sorted({layer for layer in overrode if layer != number})

    def _write(self, destination: str, member: Member, source: Source) -> None:
        if self.move and member.location is not None:
            os.rename(member.location, destination)
            return
        assert member.open is not None
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        descriptor = os.open(destination, flags, 0o600)
        with os.fdopen(descriptor, "wb", buffering=0) as out:
            stream = member.open()
            try:
                while chunk := stream.read(CHUNK):
                    self.budget.charge(len(chunk), source.label, member.name)
                    out.write(chunk)
            finally:
                stream.close()
            os.fchmod(descriptor, member.mode)  # exact bits, whatever the umask

    def _link(self, destination: str, member: Member, source: Source) -> None:
        target = member.link_target
        assert target is not None
        if os.path.isabs(target):
            raise LayerError(
                f"{source.label}: member {member.name!r} is a symlink to the absolute path {target!r}, "
                "outside the tree; refused"
            )
        if not self._inside(os.path.realpath(os.path.join(os.path.dirname(destination), target))):
            raise LayerError(
                f"{source.label}: member {member.name!r} is a symlink to {target!r}, which resolves outside "
                "the tree; refused"
            )
        if not self.move:
            self.budget.charge(len(os.fsencode(target)), source.label, member.name)
        os.symlink(target, destination)
        if self.move and member.location is not None:
            os.unlink(member.location)

    def _mkdir(self, path: str) -> None:
        os.mkdir(path)
        os.chmod(path, DIRECTORY_MODE)  # not subject to the umask: /opt must be readable by every user

    def _inside(self, real_path: str) -> bool:
        return real_path == self.root or real_path.startswith(self.root + os.sep)

    def _relative(self, path: str) -> str:
        return os.path.relpath(path, self.root)
