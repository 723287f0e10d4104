"""`python -m rapidboot.layers`: the commands, their output, and bad input as one line and exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from layers_archives import Entry, write_zip

ROOT = Path(__file__).resolve().parents[2]


def run(*arguments: str, isolated: bool = False) -> subprocess.CompletedProcess[str]:
    """`isolated`: `python -S`, no site-packages at all: the package must run on the standard library."""
    flags = ["-S"] if isolated else []
    return subprocess.run(
        [sys.executable, *flags, "-m", "rapidboot.layers", *arguments],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_merge_works_with_the_standard_library_only(tmp_path: Path) -> None:
    first = write_zip(
        tmp_path / "a.zip", [Entry("bin/tool", "#!/bin/sh\n", 0o755), Entry("python/a.py", "a")]
    )
    second = write_zip(tmp_path / "b.zip", [Entry("python/a.py", "b")])
    result = run("merge", "--into", str(tmp_path / "opt"), str(first), str(second), isolated=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"merged 2 layers into {tmp_path / 'opt'}: 2 files and symlinks")
    assert (tmp_path / "opt/python/a.py").read_text() == "b"
    assert (tmp_path / "opt/bin/tool").stat().st_mode & 0o777 == 0o755


def test_explain_says_where_each_file_comes_from(tmp_path: Path) -> None:
    first = write_zip(
        tmp_path / "a.zip", [Entry("python/a.py", "a"), Entry("lib/l.so", "l.so.1", kind="symlink")]
    )
    second = write_zip(tmp_path / "b.zip", [Entry("python/a.py", "b")])
    arguments = ["explain", "--cache-dir", str(tmp_path / "cache"), str(first), str(second)]
    text = run(*arguments)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "2 layers, 2 files and symlinks (1 overriding an earlier layer), 8 bytes unzipped"
    assert lines[1].startswith(f"  layer 1  {first}")
    assert "lib/l.so -> l.so.1  layer 1" in lines
    assert "python/a.py         layer 2  overrides layer 1" in lines
    as_json = json.loads(run(*arguments, "--json").stdout)
    assert as_json["entries"][1] == {"path": "python/a.py", "kind": "file", "layer": 2, "overrode": [1]}
    moved = tmp_path / "moved.zip"
    first.rename(moved)  # same bytes, same cached tree: explain names the file as given now
    again = run("explain", "--json", "--cache-dir", str(tmp_path / "cache"), str(moved), str(second))
    assert [layer["path"] for layer in json.loads(again.stdout)["layers"]] == [str(moved), str(second)]


def test_bad_input_is_one_line_and_exit_status_2(tmp_path: Path) -> None:
    hostile = write_zip(tmp_path / "evil.zip", [Entry("../../etc/cron.d/x", "x")])
    not_zip = tmp_path / "notes.txt"
    not_zip.write_text("hello")
    for arguments in (
        ["merge", "--into", str(tmp_path / "opt"), str(hostile)],
        ["merge", "--into", str(tmp_path / "opt"), str(not_zip)],
        ["merge", "--into", str(tmp_path / "opt"), str(tmp_path / "missing.zip")],
        [
            "merge",
            "--into",
            str(tmp_path / "opt"),
            "--max-bytes",
            "1",
            str(write_zip(tmp_path / "a.zip", [Entry("a", "ab")])),
        ],
        ["explain", "--cache-dir", str(tmp_path / "cache"), *[str(not_zip)] * 6],
    ):
        result = run(*arguments)
        assert result.returncode == 2, arguments
        assert result.stderr.startswith("layers: ") and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "opt").exists()
