"""The layout maps (README.md's "Layout" table, rapid_server/README.md) name only files and folders that
exist: a module moved or split without its map is caught here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_NAME = re.compile(r"`([^`]+)`")


def named_paths(readme: Path, section: str | None = None) -> list[Path]:
    """The paths in the first column of the map's table. A name with a `/` is relative to the README's
    folder; a bare name (`output.py` after `rapid_server/data_plane/logs.py`) to the folder of the path
    before it in the same cell."""
    text = readme.read_text()
    if section is not None:
        text = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    paths: list[Path] = []
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        folder = readme.parent
        for name in _NAME.findall(line.split("|")[1]):
            path = (readme.parent if "/" in name else folder) / name
            paths.append(path)
            folder = path if name.endswith("/") else path.parent
    return paths


@pytest.mark.parametrize(
    ("readme", "section"), [(ROOT / "README.md", "Layout"), (ROOT / "rapid_server" / "README.md", None)]
)
def test_every_path_a_layout_map_names_exists(readme: Path, section: str | None) -> None:
    paths = named_paths(readme, section)
    assert len(paths) > 15, "the map's table was not found"
    missing = [str(path.relative_to(ROOT)) for path in paths if not path.exists()]
    assert missing == [], f"{readme.relative_to(ROOT)} names what is not there: {missing}"
