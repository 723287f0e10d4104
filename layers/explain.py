"""`explain`: for every entry of a merged tree, the layer it came from and the layers it overrode."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from rapidboot.layers.cache import LayerCache
from rapidboot.layers.limits import Budget, Limits
from rapidboot.layers.manifest import Manifest
from rapidboot.layers.merge import layer_sources

MAX_PATH_COLUMN = 60


def explain(layers: Sequence[Path], cache_dir: Path, limits: Limits | None = None) -> Manifest:
    """The manifest of the merged tree of `layers`, merging them into the cache if no earlier call did."""
    limits = limits if limits is not None else Limits()
    limits.check_layer_count(layers)
    manifest = LayerCache(cache_dir).tree(layer_sources(layers), Budget(limits)).manifest()
    # The cached manifest names the files it was first built from; the same bytes may live elsewhere now.
    renamed = tuple(replace(info, path=str(path)) for info, path in zip(manifest.layers, layers, strict=True))
    return replace(manifest, layers=renamed)


def render_json(manifest: Manifest) -> str:
    return json.dumps(manifest.to_json(), indent=2)


def render_text(manifest: Manifest) -> str:
    """A legend of the layers, then one line per file, symlink, or directory that replaced a file:

    layer 1  base.zip  (zip, 1,024 bytes unzipped)
    layer 2  tools/    (dir, 2,048 bytes unzipped)

    bin/tool                  layer 2  overrides layer 1
    lib/libz.so -> libz.so.1  layer 1
    """
    files = sum(1 for entry in manifest.entries if entry.kind != "dir")
    overridden = sum(1 for entry in manifest.entries if entry.overrode)
    lines = [
        f"{len(manifest.layers)} layers, {files:,} files and symlinks ({overridden:,} overriding an earlier "
        f"layer), {manifest.unzipped_bytes:,} bytes unzipped"
    ]
    name_width = max((len(layer.path) for layer in manifest.layers), default=0)
    for layer in manifest.layers:
        lines.append(
            f"  layer {layer.number}  {layer.path:<{name_width}}  "
            f"({layer.kind}, {layer.unzipped_bytes:,} bytes unzipped)"
        )
    lines.append("")
    shown = []
    for entry in manifest.entries:
        if entry.kind == "symlink":
            shown.append(f"{entry.path} -> {entry.link_target}")
        elif entry.kind == "dir":
            shown.append(entry.path + "/")
        else:
            shown.append(entry.path)
    width = min(max((len(name) for name in shown), default=0), MAX_PATH_COLUMN)
    for name, entry in zip(shown, manifest.entries, strict=True):
        line = f"{name:<{width}}  layer {entry.layer}"
        if entry.overrode:
            line += "  overrides " + ", ".join(f"layer {number}" for number in entry.overrode)
        lines.append(line)
    return "\n".join(lines) + "\n"
