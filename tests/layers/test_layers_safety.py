"""Hostile archives: escapes by name and by symlink, bombs, corrupt files, odd member types, the limits.

Every refusal must name the archive and the member (or the limit), write nothing outside the target, and
leave no half-built tree behind.
"""

from __future__ import annotations

import os
import stat
import zipfile
from pathlib import Path
from typing import get_args

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from layers_archives import Entry, write_bomb, write_zip

from rapidboot.layers import LayerError, Limits, merge, prepare_function
from rapidboot.layers.archive import Kind, safe_parts


def _refused(tmp_path: Path, layers: list[Path], match: str, limits: Limits | None = None) -> None:
    """Merging must raise `match` and leave tmp_path exactly as it was (no opt/, no staging, no escapes)."""
    before = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))
    with pytest.raises(LayerError, match=match):
        merge(layers, tmp_path / "work" / "opt", limits)
    after = sorted(str(path.relative_to(tmp_path)) for path in tmp_path.rglob("*"))
    assert after == before


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "work").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("/etc/evil", "is an absolute path"),
        ("../evil", "has '..' in its path"),
        ("python/../../evil", "has '..' in its path"),
        ("..\\evil", "has '..' in its path"),
        ("C:\\evil", "is an absolute path"),
    ],
)
def test_members_escaping_by_name_are_refused(work: Path, name: str, why: str) -> None:
    hostile = write_zip(work / "evil.zip", [Entry("fine.py", "ok"), Entry(name, "pwned")])
    _refused(work, [hostile], rf"layer 1 '.*evil\.zip': member '{_escape(name)}' {why}")


def _escape(name: str) -> str:
    import re

    return re.escape(repr(name)[1:-1])


@pytest.mark.parametrize("target", ["/etc/passwd", "../outside", "a/../../outside", "..", "x/../../.."])
def test_symlinks_pointing_outside_are_refused(work: Path, target: str) -> None:
    hostile = write_zip(work / "evil.zip", [Entry("a/", kind="dir"), Entry("link", target, kind="symlink")])
    _refused(work, [hostile], r"layer 1 '.*evil\.zip': member 'link' is a symlink to .*(outside|absolute)")


def test_a_symlink_in_a_directory_layer_pointing_outside_is_refused(work: Path) -> None:
    layer = work / "dirlayer"
    layer.mkdir()
    (layer / "escape").symlink_to(work)
    _refused(work, [layer], r"layer 1 '.*dirlayer': member 'escape' is a symlink to the absolute path")


def test_a_symlink_that_a_later_layer_turns_outside_is_refused(work: Path) -> None:
    """d1/x -> ../link_a/../.. stays inside while link_a -> d1/d2; layer 2 makes link_a -> . so that
    d1/x resolves to the tree's parent. Caught by the check after the last layer."""
    first = write_zip(
        work / "1.zip",
        [
            Entry("d1/d2/", kind="dir"),
            Entry("link_a", "d1/d2", kind="symlink"),
            Entry("d1/x", "../link_a/../..", kind="symlink"),
        ],
    )
    second = write_zip(work / "2.zip", [Entry("link_a", ".", kind="symlink")])
    merge([first], work / "one")  # alone, layer 1 is fine
    _refused(
        work,
        [first, second],
        r"layer 1 '.*1\.zip': symlink 'd1/x' -> '\.\./link_a/\.\./\.\.' resolves outside",
    )


def test_a_member_written_through_an_existing_symlink_leading_outside_is_refused(tmp_path: Path) -> None:
    """The destination already holds `escape -> <outside>` (its owner's business); our member
    `escape/pwned` must not land outside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    opt = tmp_path / "opt"
    opt.mkdir()
    (opt / "escape").symlink_to(outside)
    hostile = write_zip(tmp_path / "evil.zip", [Entry("escape/pwned", "x")])
    with pytest.raises(
        LayerError, match=r"--into .*opt: member 'escape' would be written through symlink 'escape'"
    ):
        merge([hostile], opt)
    assert os.listdir(outside) == []
    assert sorted(os.listdir(opt)) == ["escape"]


def test_a_member_through_a_symlink_of_an_earlier_layer_cannot_escape(work: Path) -> None:
    """Layer 1's `up -> .` is legal; layer 2 cannot use it plus `..` to climb out: the name check refuses
    `..` outright, and a path through `up` stays in the tree."""
    first = write_zip(work / "1.zip", [Entry("up", ".", kind="symlink")])
    second = write_zip(work / "2.zip", [Entry("up/up/file", "x")])
    merge([first, second], work / "work" / "opt")
    assert (work / "work/opt/file").read_text() == "x"
    third = write_zip(work / "3.zip", [Entry("up/../file", "x")])
    _refused(work, [first, third], r"member 'up/\.\./file' has '\.\.'")


@pytest.mark.parametrize("file_type", [stat.S_IFCHR, stat.S_IFBLK, stat.S_IFIFO, stat.S_IFSOCK])
def test_device_and_fifo_members_are_refused(work: Path, file_type: int) -> None:
    hostile = write_zip(
        work / "dev.zip", [Entry("dev/x", kind="raw", external_attr=(file_type | 0o666) << 16)]
    )
    _refused(
        work, [hostile], r"layer 1 '.*dev\.zip': member 'dev/x' is not a regular file, directory or symlink"
    )


def test_an_over_long_symlink_target_is_refused(work: Path) -> None:
    hostile = write_zip(work / "long.zip", [Entry("link", "a/" * 3000, kind="symlink")])
    _refused(work, [hostile], r"member 'link' is a symlink with an empty, over-long or NUL target")


def test_a_zip_bomb_stops_at_the_limit_while_extracting(work: Path) -> None:
    """4 GB of zeros in 4 MB, with a wrong CRC: an extractor that checked sizes only afterwards would
    write 4 GB and then fail on the CRC; ours stops at the limit, having written at most one chunk more."""
    bomb = write_bomb(work / "bomb.zip", "zeros.bin", 4_000_000_000)
    small = write_zip(work / "small.zip", [Entry("a", b"x" * 1000)])
    _refused(
        work,
        [small, bomb],
        r"layer 2 '.*bomb\.zip': code and layers unzip to more than 8,000,000 bytes, the limit .*"
        r"stopped at member 'zeros\.bin' after 8,389,608 bytes",
        Limits(max_unzipped_bytes=8_000_000),
    )


def test_the_size_limit_counts_every_layer_and_names_the_one_that_crosses_it(work: Path) -> None:
    first = write_zip(work / "first.zip", [Entry("a", b"a" * 600)])
    second = write_zip(work / "second.zip", [Entry("b", b"b" * 600)])
    merge([first, second], work / "fits", Limits(max_unzipped_bytes=1200))
    _refused(
        work,
        [first, second],
        r"layer 2 '.*second\.zip': .*more than 1,000 bytes",
        Limits(max_unzipped_bytes=1000),
    )


def test_the_size_limit_is_the_services_by_default(work: Path) -> None:
    assert Limits().max_unzipped_bytes == 262_144_000
    assert Limits().max_layers == 5


def test_a_sixth_layer_is_refused_naming_it(work: Path) -> None:
    layers = [write_zip(work / f"{number}.zip", [Entry(f"f{number}", "x")]) for number in range(1, 7)]
    _refused(work, layers, r"6 layers given, over the limit of 5 layers per function.*layer 6: '.*6\.zip'")
    merge(layers, work / "work" / "opt", Limits.unlimited())


def test_code_and_layers_share_the_size_limit(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_bytes(b"c" * 600)
    layer = write_zip(tmp_path / "layer.zip", [Entry("python/lib.py", b"l" * 600)])
    with pytest.raises(LayerError, match=r"layer 1 '.*layer\.zip': .*more than 1,000 bytes"):
        prepare_function(code, [layer], tmp_path / "cache", Limits(max_unzipped_bytes=1000))
    big_code = tmp_path / "big"
    big_code.mkdir()
    (big_code / "app.py").write_bytes(b"c" * 1001)
    with pytest.raises(
        LayerError, match=r"code '.*big': code and layers unzip to 1,001 bytes, over the limit"
    ):
        prepare_function(big_code, [], tmp_path / "cache", Limits(max_unzipped_bytes=1000))


def test_not_a_zip_truncated_and_missing_files_are_named(work: Path) -> None:
    text = work / "notes.txt"
    text.write_text("hello")
    _refused(work, [text], r"layer 1 '.*notes\.txt': not a zip file or a directory")
    good = write_zip(work / "good.zip", [Entry("a", b"a" * 10_000)])
    truncated = work / "truncated.zip"
    truncated.write_bytes(good.read_bytes()[:-30])
    _refused(work, [truncated], r"layer 1 '.*truncated\.zip': not a zip file")
    _refused(work, [work / "missing.zip"], r"layer 1 '.*missing\.zip': no such file or directory")


def test_a_corrupt_member_is_named(work: Path) -> None:
    archive = write_zip(work / "crc.zip", [Entry("data.bin", os.urandom(5000))], zipfile.ZIP_STORED)
    raw = bytearray(archive.read_bytes())
    raw[200] ^= 0xFF  # inside the stored data: the CRC no longer matches
    archive.write_bytes(bytes(raw))
    _refused(work, [archive], r"layer 1 '.*crc\.zip': member 'data\.bin' is corrupt \(Bad CRC-32")


# -- properties ------------------------------------------------------------------------------------------

NAME_PARTS = st.sampled_from(["a", "b", "..", ".", "", "/", "\\", "c:", "\0", "x y"])


@example("./c:")  # found by hypothesis: a drive letter behind a `.` component was let through
@example(".\\c:x")
@given(st.lists(NAME_PARTS, max_size=8).map("".join))
def test_any_member_name_is_either_refused_or_safe(name: str) -> None:
    try:
        parts = safe_parts(name, "layer 1 'p.zip'")
    except LayerError as error:
        assert "layer 1 'p.zip': member" in str(error)
        return
    for part in parts:
        assert part not in ("", ".", "..")
        assert "/" not in part and "\\" not in part and "\0" not in part
    assert not (parts and len(parts[0]) == 2 and parts[0][1] == ":")


MEMBERS = st.lists(
    st.tuples(
        st.sampled_from(["a", "b", "a/b", "b/a", "a/b/c", "up", "up/a", "d/"]),
        st.sampled_from(list(get_args(Kind))),
        st.sampled_from([".", "..", "a", "b", "../a", "a/..", "a/../..", "up", "../..", "b/c"]),
    ),
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(MEMBERS, min_size=1, max_size=3))
def test_any_layer_stack_merges_inside_the_tree_or_is_refused(
    tmp_path_factory: pytest.TempPathFactory, stack: list[list[tuple[str, Kind, str]]]
) -> None:
    base = tmp_path_factory.mktemp("stack")
    layers = []
    for number, entries in enumerate(stack):
        layers.append(
            write_zip(
                base / f"{number}.zip",
                [
                    Entry(name, target if kind == "symlink" else "data", kind=kind)
                    for name, kind, target in entries
                ],
            )
        )
    opt = base / "work" / "opt"
    opt.parent.mkdir()
    try:
        merge(layers, opt)
    except LayerError:
        assert sorted(os.listdir(opt.parent)) == []
        return
    root = os.path.realpath(opt)
    for path in opt.rglob("*"):
        resolved = os.path.realpath(path)
        assert resolved == root or resolved.startswith(root + os.sep), path
    assert sorted(os.listdir(opt.parent)) == ["opt"]
