"""Merging as Lambda fills /opt: order, last wins, modes, symlinks, conflicts, and the --into destination."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from layers_archives import Entry, tree_listing, write_zip

from rapidboot.layers import LayerError, Limits, merge


def test_later_layers_win_and_same_name_folders_merge(tmp_path: Path) -> None:
    first = write_zip(
        tmp_path / "a.zip",
        [Entry("python/shared.py", "a"), Entry("python/only_a.py", "a"), Entry("bin/tool", "#!a", 0o755)],
    )
    second = write_zip(tmp_path / "b.zip", [Entry("python/shared.py", "b"), Entry("python/only_b.py", "b")])
    manifest = merge([first, second], tmp_path / "opt")
    opt = tmp_path / "opt"
    assert (opt / "python/shared.py").read_text() == "b"
    assert (opt / "python/only_a.py").read_text() == "a"
    assert (opt / "python/only_b.py").read_text() == "b"
    origins = {entry.path: (entry.layer, entry.overrode) for entry in manifest.entries}
    assert origins["python/shared.py"] == (2, (1,))
    assert origins["python/only_a.py"] == (1, ())
    assert origins["bin/tool"] == (1, ())
    assert [layer.unzipped_bytes for layer in manifest.layers] == [5, 2]


def test_modes_and_symlinks_are_preserved_from_zips_and_directories(tmp_path: Path) -> None:
    zipped = write_zip(
        tmp_path / "a.zip",
        [
            Entry("bootstrap", "#!/bin/sh\n", 0o755),
            Entry("bin/tool", "#!/bin/sh\n", 0o750),
            Entry("lib/libz.so.1", "elf", 0o644),
            Entry("lib/libz.so", "libz.so.1", kind="symlink"),
            Entry("etc/", kind="dir"),
        ],
    )
    directory = tmp_path / "b"
    (directory / "bin").mkdir(parents=True)
    (directory / "bin/other").write_text("#!/bin/sh\n")
    (directory / "bin/other").chmod(0o700)
    (directory / "lib").mkdir()
    (directory / "lib/libb.so").symlink_to("../lib/libz.so.1")
    merge([zipped, directory], tmp_path / "opt")
    assert tree_listing(tmp_path / "opt") == {
        "bin": ("dir", 0o755),
        "bin/other": ("file", 0o700),
        "bin/tool": ("file", 0o750),
        "bootstrap": ("file", 0o755),
        "etc": ("dir", 0o755),
        "lib": ("dir", 0o755),
        "lib/libb.so": ("symlink", "../lib/libz.so.1"),
        "lib/libz.so": ("symlink", "libz.so.1"),
        "lib/libz.so.1": ("file", 0o644),
    }
    assert (tmp_path / "opt/lib/libb.so").read_text() == "elf"


def test_a_zip_without_unix_modes_gets_the_usual_defaults(tmp_path: Path) -> None:
    windows = write_zip(tmp_path / "w.zip", [Entry("a\\b.py", "x", kind="raw", external_attr=0x20)])
    merge([windows], tmp_path / "opt")
    assert tree_listing(tmp_path / "opt") == {"a": ("dir", 0o755), "a/b.py": ("file", 0o644)}


def test_a_file_replaces_a_directory_of_an_earlier_layer_and_vice_versa(tmp_path: Path) -> None:
    first = write_zip(tmp_path / "1.zip", [Entry("thing/inner.py", "1"), Entry("other", "file from 1")])
    second = write_zip(tmp_path / "2.zip", [Entry("thing", "file from 2"), Entry("other/inner.py", "2")])
    manifest = merge([first, second], tmp_path / "opt")
    assert tree_listing(tmp_path / "opt") == {
        "other": ("dir", 0o755),
        "other/inner.py": ("file", 0o644),
        "thing": ("file", 0o644),
    }
    assert (tmp_path / "opt/thing").read_text() == "file from 2"
    origins = {entry.path: (entry.kind, entry.layer, entry.overrode) for entry in manifest.entries}
    assert origins == {
        "other": ("dir", 2, (1,)),
        "other/inner.py": ("file", 2, ()),
        "thing": ("file", 2, (1,)),
    }


def test_duplicate_members_in_one_zip_last_wins(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "d.zip", [Entry("x", "first"), Entry("x", "second", 0o755)])
    manifest = merge([archive], tmp_path / "opt")
    assert (tmp_path / "opt/x").read_text() == "second"
    assert tree_listing(tmp_path / "opt") == {"x": ("file", 0o755)}
    assert [(entry.path, entry.overrode) for entry in manifest.entries] == [("x", ())]


def test_a_path_through_a_symlink_to_a_directory_inside_is_followed_like_unzip(tmp_path: Path) -> None:
    first = write_zip(tmp_path / "1.zip", [Entry("lib64/a.so", "a"), Entry("lib", "lib64", kind="symlink")])
    second = write_zip(tmp_path / "2.zip", [Entry("lib/b.so", "b")])
    manifest = merge([first, second], tmp_path / "opt")
    assert (tmp_path / "opt/lib64/b.so").read_text() == "b"
    assert (tmp_path / "opt/lib").is_symlink()
    assert {entry.path for entry in manifest.entries} == {"lib", "lib64/a.so", "lib64/b.so"}


def test_a_symlink_to_a_file_in_the_way_of_a_directory_is_replaced(tmp_path: Path) -> None:
    first = write_zip(tmp_path / "1.zip", [Entry("real", "r"), Entry("link", "real", kind="symlink")])
    second = write_zip(tmp_path / "2.zip", [Entry("link/inside", "i")])
    merge([first, second], tmp_path / "opt")
    assert (tmp_path / "opt/real").read_text() == "r"
    assert not (tmp_path / "opt/link").is_symlink()
    assert (tmp_path / "opt/link/inside").read_text() == "i"


def test_into_an_existing_directory_applies_the_layers_on_top(tmp_path: Path) -> None:
    opt = tmp_path / "opt"
    (opt / "extensions").mkdir(parents=True)
    (opt / "extensions/ext").write_text("kept")
    (opt / "python").mkdir()
    (opt / "python/mod.py").write_text("old")
    layer = write_zip(tmp_path / "a.zip", [Entry("python/mod.py", "new"), Entry("bin/tool", "t", 0o755)])
    merge([layer], opt)
    assert (opt / "extensions/ext").read_text() == "kept"
    assert (opt / "python/mod.py").read_text() == "new"
    assert sorted(os.listdir(opt)) == ["bin", "extensions", "python"]  # no staging directory left


def test_a_failed_merge_into_an_existing_directory_changes_nothing(tmp_path: Path) -> None:
    opt = tmp_path / "opt"
    opt.mkdir()
    (opt / "mod.py").write_text("old")
    good = write_zip(tmp_path / "good.zip", [Entry("mod.py", "new"), Entry("added.py", "x")])
    bad = write_zip(tmp_path / "bad.zip", [Entry("fine.py", "x"), Entry("../escape.py", "x")])
    with pytest.raises(LayerError, match=r"layer 2 '.*bad\.zip': member '\.\./escape\.py'"):
        merge([good, bad], opt)
    assert os.listdir(opt) == ["mod.py"]  # nothing added, no staging directory left
    assert (opt / "mod.py").read_text() == "old"
    assert not (tmp_path / "escape.py").exists()


def test_a_failed_merge_into_a_new_directory_leaves_nothing(tmp_path: Path) -> None:
    good = write_zip(tmp_path / "good.zip", [Entry("a/b/c.py", "x" * 1000)])
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"this is not a zip")
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(LayerError, match=r"layer 2 '.*bad\.zip': not a zip file"):
        merge([good, bad], tmp_path / "opt")
    assert sorted(os.listdir(tmp_path)) == before


def test_into_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "opt").write_text("")
    layer = write_zip(tmp_path / "a.zip", [Entry("x", "x")])
    with pytest.raises(LayerError, match="exists and is not a directory"):
        merge([layer], tmp_path / "opt")


def test_directory_layers_merge_like_zips(tmp_path: Path) -> None:
    first = tmp_path / "one"
    (first / "python/pkg").mkdir(parents=True)
    (first / "python/pkg/__init__.py").write_text("one")
    second = write_zip(tmp_path / "two.zip", [Entry("python/pkg/__init__.py", "two")])
    manifest = merge([first, second], tmp_path / "opt", Limits())
    assert (tmp_path / "opt/python/pkg/__init__.py").read_text() == "two"
    assert [layer.kind for layer in manifest.layers] == ["dir", "zip"]
