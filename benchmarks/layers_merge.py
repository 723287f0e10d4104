"""Layer merging: 5 layers totalling 100 MB, first time and cached, against a plain `unzip` of each in turn.

Each sample is one full cycle a user waits for:
- `unzip`: `unzip -q -o LAYER -d DIR` for the 5 layers in sequence (the peer; no checks, no cache);
- first merge, `merge --into`: `rapidboot.layers.merge` into a new directory (the container-build path);
- first merge, cache: `LayerCache.tree` into an empty cache (hash the zips, extract, publish);
- cached: `prepare_function(code, layers, cache)` with everything cached: the time a new execution
  environment waits for its task root and /opt.
The first three are interleaved (A B C A B C ...) so machine noise hits all alike; medians are reported.

    python benchmarks/layers_merge.py [--samples 5] [--total-mb 100]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rapidboot.benchmarks.stats import percentile
from rapidboot.layers import LayerCache, Limits, merge, prepare_function
from rapidboot.layers.limits import Budget
from rapidboot.layers.merge import layer_sources

Tick = Callable[[str], None]

LAYERS = 5


def make_layers(directory: Path, total_mb: int) -> list[Path]:
    """Like real Python layers: many small modules (compressible text) and a few shared libraries
    (incompressible); 10 % of the module paths recur in every layer, so later layers override them."""
    generator = random.Random(5)
    per_layer = total_mb * 1_000_000 // LAYERS
    words = [f"name_{n}" for n in range(500)]
    layers = []
    for number in range(1, LAYERS + 1):
        path = directory / f"layer{number}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            written = 0
            module = 0
            while written < per_layer // 2:
                text = " ".join(generator.choices(words, k=4000)).encode()
                shared = module % 10 == 0
                name = f"python/pkg{'shared' if shared else number}/mod{module}.py"
                archive.writestr(name, text)
                written += len(text)
                module += 1
            for library in range(4):
                info = zipfile.ZipInfo(f"lib/lib{number}_{library}.so", date_time=(2024, 1, 1, 0, 0, 0))
                info.external_attr = 0o100755 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, generator.randbytes(per_layer // 8))
                written += per_layer // 8
        layers.append(path)
    return layers


def unzipped_bytes(layers: list[Path]) -> int:
    return sum(info.file_size for layer in layers for info in zipfile.ZipFile(layer).infolist())


def time_unzip(layers: list[Path], scratch: Path) -> float:
    target = scratch / "unzip"
    start = time.perf_counter()
    for layer in layers:
        subprocess.run(["unzip", "-q", "-o", str(layer), "-d", str(target)], check=True)
    elapsed = time.perf_counter() - start
    shutil.rmtree(target)
    return elapsed


def time_merge_into(layers: list[Path], scratch: Path) -> float:
    target = scratch / "opt"
    start = time.perf_counter()
    merge(layers, target, Limits())
    elapsed = time.perf_counter() - start
    shutil.rmtree(target)
    return elapsed


def time_first_cached(layers: list[Path], scratch: Path) -> float:
    cache = scratch / "cache"
    start = time.perf_counter()
    LayerCache(cache).tree(layer_sources(layers), Budget(Limits()))
    elapsed = time.perf_counter() - start
    shutil.rmtree(cache)
    return elapsed


@dataclass(slots=True)
class LayerTimes:
    """Seconds per sample: the first merges (interleaved) and the cached preparation."""

    first: dict[
        str, list[float]
    ]  # "unzip" (the peer; empty without unzip), "merge --into", "first merge ..."
    cached: list[float]
    unzipped_bytes: int
    members: int


def layer_times(
    scratch: Path, total_mb: int, samples: int, cached_samples: int = 200, tick: Tick = lambda _: None
) -> LayerTimes:
    layers = make_layers(scratch, total_mb)
    has_unzip = shutil.which("unzip") is not None
    first: dict[str, list[float]] = {"unzip": [], "merge --into": [], "first merge into the cache": []}
    for _ in range(samples):
        if has_unzip:
            tick("unzip")
            first["unzip"].append(time_unzip(layers, scratch))
        tick("merge --into")
        first["merge --into"].append(time_merge_into(layers, scratch))
        tick("first merge into the cache")
        first["first merge into the cache"].append(time_first_cached(layers, scratch))

    code = scratch / "code"
    code.mkdir()
    (code / "app.py").write_text("def handler(event, context):\n    return event\n")
    cache = scratch / "warm-cache"
    tick("cached")
    prepare_function(code, layers, cache)  # the one build
    waits = []
    for _ in range(cached_samples):
        start = time.perf_counter()
        prepared = prepare_function(code, layers, cache)
        waits.append(time.perf_counter() - start)
        assert prepared.reused
    members = sum(len(zipfile.ZipFile(layer).infolist()) for layer in layers)
    return LayerTimes(first, waits, unzipped_bytes(layers), members)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=5)
    parser.add_argument("--total-mb", type=int, default=100)
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="layers-bench-") as temporary:
        times = layer_times(Path(temporary), arguments.total_mb, arguments.samples)
    size = times.unzipped_bytes
    print(f"{LAYERS} layers: {times.members} members, {size / 1e6:.1f} MB unzipped")
    baseline = statistics.median(times.first["unzip"]) if times.first["unzip"] else None
    print(f"medians of {arguments.samples} samples (interleaved):")
    for name, values in times.first.items():
        if not values:
            print(f"  {name:<28} (unzip not installed)")
            continue
        median = statistics.median(values)
        ratio = f"  x{median / baseline:.2f} unzip" if baseline else ""
        print(f"  {name:<28} {median * 1000:8.1f} ms  ({size / median / 1e6:.0f} MB/s){ratio}")
    waits = times.cached
    print(
        f"  {'cached (environment waits)':<28} {statistics.median(waits) * 1000:8.3f} ms  "
        f"(median of {len(waits)}; p99 {percentile(waits, 0.99) * 1000:.3f} ms)"
    )
    print(f"  cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
