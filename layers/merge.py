"""Merging layers into one tree, all or nothing: `build` into a fresh directory, `merge` into a destination.

`merge --into DIR` never leaves a half-built tree: every layer is validated and extracted into a staging
directory on DIR's filesystem first, and DIR is touched only once all of them succeeded.

- DIR missing: the staged tree (beside DIR) is renamed to DIR, one atomic step.
- DIR exists, empty or not: the layers are applied on top of what it holds, as Lambda extracts layers into
  /opt and as `unzip -o -d /opt` would (last wins, same-name folders merge). Why this and not a refusal: in a
  container build /opt often already holds something (an extension copied in by an earlier `COPY`, files
  of the base image), and the user asked for these layers to be added to it; deleting existing content is
  never a default. The staged tree lives inside DIR (so the same filesystem even when DIR is a mount point),
  and its entries are moved into place by rename. A symlink already in DIR that would take an entry outside
  DIR stops the merge at that entry.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from rapidboot.layers.archive import Source
from rapidboot.layers.errors import LayerError
from rapidboot.layers.limits import Budget, Limits
from rapidboot.layers.manifest import Manifest
from rapidboot.layers.tree import DIRECTORY_MODE, TreeBuilder


def layer_sources(layers: Sequence[Path]) -> list[Source]:
    return [Source(Path(path), f"layer {number} '{path}'") for number, path in enumerate(layers, start=1)]


def build(sources: Sequence[Source], root: Path, budget: Budget) -> Manifest:
    """Applies `sources` in order into the existing, empty directory `root` (numbered from 1)."""
    builder = TreeBuilder(root, budget)
    for number, source in enumerate(sources, start=1):
        builder.apply(source, number)
    return builder.finish()


def merge(layers: Sequence[Path], into: Path, limits: Limits | None = None) -> Manifest:
    """`python -m rapidboot.layers merge --into DIR LAYER...`: what /opt would hold on Lambda, written to
    `into`."""
    limits = limits if limits is not None else Limits()
    limits.check_layer_count(layers)
    sources = layer_sources(layers)
    into = Path(os.path.abspath(into))
    budget = Budget(limits)
    if into.is_dir():
        return _merge_onto(sources, into, budget)
    if into.exists() or into.is_symlink():
        raise LayerError(f"--into {into}: exists and is not a directory")
    if not into.parent.is_dir():
        raise LayerError(f"--into {into}: its parent directory does not exist")
    staging = Path(tempfile.mkdtemp(prefix=f".{into.name}.layers-", dir=into.parent))
    try:
        manifest = build(sources, staging, budget)
        os.chmod(staging, DIRECTORY_MODE)
        os.rename(staging, into)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _merge_onto(sources: Sequence[Source], into: Path, budget: Budget) -> Manifest:
    staging = Path(tempfile.mkdtemp(prefix=".layers-staging-", dir=into))
    try:
        manifest = build(sources, staging, budget)
        publisher = TreeBuilder(into, budget, move=True)
        publisher.apply(Source(staging, f"--into {into}"), 1)
        publisher.finish()
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
