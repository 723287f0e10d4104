"""The content-addressed cache and `prepare_function`: built once, reused, rebuilt on any change, no races."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
from layers_archives import Entry, write_zip

from rapidboot.layers import LayerCache, LayerError, Limits, prepare_function
from rapidboot.layers.archive import Source
from rapidboot.layers.limits import Budget
from rapidboot.layers.merge import layer_sources


def _tree(cache: Path, layers: list[Path]) -> tuple[Path, bool]:
    found = LayerCache(cache).tree(layer_sources(layers), Budget(Limits()))
    return found.root, found.reused


def test_a_merge_is_built_once_then_reused(tmp_path: Path) -> None:
    layer = write_zip(tmp_path / "a.zip", [Entry("python/a.py", "a")])
    first_root, first_reused = _tree(tmp_path / "cache", [layer])
    second_root, second_reused = _tree(tmp_path / "cache", [layer])
    assert (first_reused, second_reused) == (False, True)
    assert first_root == second_root
    assert (first_root / "python/a.py").read_text() == "a"


def test_order_and_content_change_the_key(tmp_path: Path) -> None:
    first = write_zip(tmp_path / "a.zip", [Entry("x", "a")])
    second = write_zip(tmp_path / "b.zip", [Entry("x", "b")])
    forward, _ = _tree(tmp_path / "cache", [first, second])
    backward, _ = _tree(tmp_path / "cache", [second, first])
    assert forward != backward
    assert (forward / "x").read_text() == "b" and (backward / "x").read_text() == "a"
    write_zip(tmp_path / "a.zip", [Entry("x", "A")])  # same path, new bytes
    changed, reused = _tree(tmp_path / "cache", [second, first])
    assert (changed, reused) != (backward, True)
    assert (changed / "x").read_text() == "A"


def test_a_directory_edit_that_keeps_size_and_mtime_is_still_seen(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    layer.mkdir()
    module = layer / "mod.py"
    module.write_text("one")
    before = module.stat()
    first, _ = _tree(tmp_path / "cache", [layer])
    module.write_text("two")
    os.utime(module, ns=(before.st_atime_ns, before.st_mtime_ns))  # as `cp -p` or `rsync -t` would
    second, reused = _tree(tmp_path / "cache", [layer])
    assert not reused and second != first
    assert (second / "mod.py").read_text() == "two"


def test_a_zip_rewritten_in_place_is_rehashed(tmp_path: Path) -> None:
    layer = write_zip(tmp_path / "a.zip", [Entry("x", "a")])
    before = layer.stat()
    first, _ = _tree(tmp_path / "cache", [layer])
    write_zip(layer, [Entry("x", "b")])
    os.utime(layer, ns=(before.st_atime_ns, before.st_mtime_ns))
    second, reused = _tree(tmp_path / "cache", [layer])
    assert not reused and second != first and (second / "x").read_text() == "b"


def test_a_failed_build_leaves_nothing_in_the_cache(tmp_path: Path) -> None:
    hostile = write_zip(tmp_path / "evil.zip", [Entry("ok", "x"), Entry("../evil", "x")])
    with pytest.raises(LayerError):
        _tree(tmp_path / "cache", [hostile])
    assert not (tmp_path / "cache/trees").exists() or os.listdir(tmp_path / "cache/trees") == []
    assert os.listdir(tmp_path / "cache/staging") == []


def test_a_staging_directory_left_by_a_dead_builder_is_cleaned_up(tmp_path: Path) -> None:
    layer = write_zip(tmp_path / "a.zip", [Entry("x", "a")])
    cache = LayerCache(tmp_path / "cache")
    key = cache.key(layer_sources([layer]))
    (tmp_path / "cache/staging" / f"{key}.dead" / "tree").mkdir(parents=True)
    _tree(tmp_path / "cache", [layer])
    assert os.listdir(tmp_path / "cache/staging") == []


def _merge_in_child(cache: str, layers: list[str], barrier: object, results: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    found = LayerCache(Path(cache)).tree(layer_sources([Path(p) for p in layers]), Budget(Limits()))
    results.put((str(found.root), found.reused))  # type: ignore[attr-defined]


def test_concurrent_merges_of_the_same_layers_build_once(tmp_path: Path) -> None:
    layers = [
        write_zip(
            tmp_path / f"{n}.zip", [Entry(f"python/pkg{n}/m{i}.py", os.urandom(2000)) for i in range(200)]
        )
        for n in range(3)
    ]
    context = multiprocessing.get_context("fork")
    processes = 4
    barrier = context.Barrier(processes)
    results = context.Queue()
    children = [
        context.Process(
            target=_merge_in_child, args=(str(tmp_path / "cache"), [str(p) for p in layers], barrier, results)
        )
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert len({root for root, _ in outcomes}) == 1
    assert sorted(reused for _, reused in outcomes) == [False, True, True, True]
    root = Path(outcomes[0][0])
    assert len(list(root.rglob("*.py"))) == 600
    assert os.listdir(tmp_path / "cache/staging") == []


def test_prepare_function_uses_a_code_directory_in_place(tmp_path: Path) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(e, c): return 1\n")
    layer = write_zip(
        tmp_path / "l.zip", [Entry("python/lib.py", "x"), Entry("bootstrap", "#!/bin/sh", 0o755)]
    )
    prepared = prepare_function(code, [layer], tmp_path / "cache")
    assert prepared.task_root == code
    assert prepared.opt_dir is not None and (prepared.opt_dir / "python/lib.py").read_text() == "x"
    assert prepared.unzipped_bytes == len("def handler(e, c): return 1\n") + 1 + len("#!/bin/sh")
    assert prepared.bootstrap_candidates() == (code / "bootstrap", prepared.opt_dir / "bootstrap")
    assert not prepared.reused
    assert prepare_function(code, [layer], tmp_path / "cache").reused


def test_prepare_function_extracts_a_code_zip_into_the_cache(tmp_path: Path) -> None:
    code = write_zip(
        tmp_path / "function.zip", [Entry("app.py", "x"), Entry("bootstrap", "#!/bin/sh", 0o755)]
    )
    prepared = prepare_function(code, [], tmp_path / "cache")
    assert prepared.opt_dir is None
    assert (prepared.task_root / "app.py").read_text() == "x"
    assert os.access(prepared.task_root / "bootstrap", os.X_OK)
    assert prepared.task_root.is_relative_to(tmp_path / "cache")
    hostile = write_zip(tmp_path / "evil.zip", [Entry("/etc/x", "x")])
    with pytest.raises(LayerError, match=r"code '.*evil\.zip': member '/etc/x' is an absolute path"):
        prepare_function(hostile, [], tmp_path / "cache")
    with pytest.raises(LayerError, match=r"code '.*nothing': no such file or directory"):
        prepare_function(tmp_path / "nothing", [], tmp_path / "cache")


def test_a_reused_tree_is_still_counted_against_the_limit(tmp_path: Path) -> None:
    layer = write_zip(tmp_path / "l.zip", [Entry("big", b"x" * 800)])
    prepare_function(write_zip(tmp_path / "small.zip", [Entry("a", "a")]), [layer], tmp_path / "cache")
    bigger_code = write_zip(tmp_path / "code.zip", [Entry("a", b"a" * 300)])
    with pytest.raises(LayerError, match=r"layer 1 '.*l\.zip': code and layers unzip to 1,100 bytes"):
        prepare_function(bigger_code, [layer], tmp_path / "cache", Limits(max_unzipped_bytes=1000))


def test_the_same_inputs_make_the_same_key_whatever_their_labels(tmp_path: Path) -> None:
    layer = write_zip(tmp_path / "a.zip", [Entry("x", "a")])
    cache = LayerCache(tmp_path / "cache")
    assert cache.key([Source(layer, "code 'a.zip'")]) == cache.key(layer_sources([layer]))
