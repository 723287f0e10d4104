"""Building layer zips for tests, hostile ones included: crafted names, modes and compressed streams."""

from __future__ import annotations

import stat
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class Entry:
    name: str
    data: bytes | str = b""
    mode: int = 0o644
    kind: Literal["file", "dir", "symlink", "raw"] = "file"
    external_attr: int | None = None  # "raw": exactly this, whatever it means


def write_zip(path: Path, entries: list[Entry], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """Names are written exactly as given (zipfile keeps `..`, leading `/` and duplicates in ZipInfo)."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for entry in entries:
            info = zipfile.ZipInfo(entry.name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = compression
            info.create_system = 3  # Unix, so external_attr's high half is a st_mode
            if entry.kind == "dir":
                info.external_attr = ((stat.S_IFDIR | entry.mode) << 16) | 0x10
            elif entry.kind == "symlink":
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            elif entry.kind == "raw":
                assert entry.external_attr is not None
                info.external_attr = entry.external_attr
            else:
                info.external_attr = (stat.S_IFREG | entry.mode) << 16
            with warnings.catch_warnings():  # zipfile warns on duplicate names; these are on purpose
                warnings.simplefilter("ignore")
                archive.writestr(info, entry.data)
    return path


def write_bomb(path: Path, name: str, declared_size: int) -> Path:
    """A real deflate bomb: `declared_size` zero bytes (honestly declared, < 4 GiB, no zip64) in about
    declared_size / 1000 bytes, built in milliseconds by repeating one byte-aligned deflate block. The CRC
    is deliberately wrong: an extractor that only checks sizes after the fact ends in a CRC error after
    writing gigabytes, never in a size-limit error."""
    block_size = 1 << 20
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(block_size)) + compressor.flush(zlib.Z_FULL_FLUSH)
    blocks = declared_size // block_size
    data = block * blocks + compressor.flush(zlib.Z_FINISH)
    declared = blocks * block_size
    encoded = name.encode()
    crc = 0xDEADBEEF
    local = struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x5821, crc, len(data), declared, len(encoded), 0
    )
    central = struct.pack(
        "<IHHHHHHIIIHHHHHII",
        0x02014B50,
        (3 << 8) | 20,
        20,
        0,
        8,
        0,
        0x5821,
        crc,
        len(data),
        declared,
        len(encoded),
        0,
        0,
        0,
        0,
        (stat.S_IFREG | 0o644) << 16,
        0,
    )
    central_offset = len(local) + len(encoded) + len(data)
    central_size = len(central) + len(encoded)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, central_size, central_offset, 0)
    path.write_bytes(local + encoded + data + central + encoded + end)
    return path


def tree_listing(root: Path) -> dict[str, tuple[str, int | str]]:
    """{relative path: (kind, mode or symlink target or content)} of everything under root."""
    listing: dict[str, tuple[str, int | str]] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_symlink():
            listing[relative] = ("symlink", str(path.readlink()))
        elif path.is_dir():
            listing[relative] = ("dir", stat.S_IMODE(path.lstat().st_mode))
        else:
            listing[relative] = ("file", stat.S_IMODE(path.lstat().st_mode))
    return listing
