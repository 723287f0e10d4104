"""A function's code and layers made ready to run: its task root and its /opt, checked against the limits.

What the server calls for every function (and may call again for every new environment: with everything
cached it costs a stat() per zip and a stat() walk per directory layer, milliseconds).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rapidboot.layers.archive import Source
from rapidboot.layers.cache import LayerCache
from rapidboot.layers.errors import LayerError
from rapidboot.layers.limits import Budget, Limits
from rapidboot.layers.merge import layer_sources


@dataclass(frozen=True, slots=True)
class PreparedFunction:
    task_root: Path  # LAMBDA_TASK_ROOT, the working directory
    opt_dir: Path | None  # the merged layers (what /opt holds on Lambda); None without layers
    unzipped_bytes: int  # code plus layers, as counted against the limit
    reused: bool  # True when nothing had to be extracted

    def bootstrap_candidates(self) -> tuple[Path, ...]:
        """Where a custom runtime's (`provided.*`) `bootstrap` is looked up, in order: the task root, then
        the layers. The first that exists is run; none, or a non-executable one, fails init with
        Runtime.InvalidEntrypoint."""
        candidates = [self.task_root / "bootstrap"]
        if self.opt_dir is not None:
            candidates.append(self.opt_dir / "bootstrap")
        return tuple(candidates)


def prepare_function(
    code: Path,
    layers: Sequence[Path],
    cache_dir: Path,
    limits: Limits | None = None,
    zipped: bytes | None = None,
    zipped_digest: str | None = None,
) -> PreparedFunction:
    """`code` is a directory (used in place, so edits show up in the next environment) or a zip file
    (extracted into the cache, like a layer). `layers` are zips or directories, merged in order.
    `zipped`: the bytes of the zip `code` names, already in memory (and `zipped_digest` their SHA-256, hex):
    extracted from memory, while the file may still be being written; cached under the file's key."""
    limits = limits if limits is not None else Limits()
    limits.check_layer_count(layers)
    budget = Budget(limits)
    cache = LayerCache(cache_dir)
    code = Path(code)
    reused = True
    if zipped is not None:
        source = Source(code, f"code '{code}'", data=zipped, digest=zipped_digest)
        extracted = cache.tree([source], budget)
        task_root, reused = extracted.root, extracted.reused
    elif code.is_dir():
        task_root = Path(os.path.abspath(code))
        budget.charge_tree(directory_size(task_root), f"code '{code}'")
    elif code.exists():
        extracted = cache.tree([Source(code, f"code '{code}'")], budget)
        task_root, reused = extracted.root, extracted.reused
    else:
        raise LayerError(f"code '{code}': no such file or directory")
    opt_dir = None
    if layers:
        merged = cache.tree(layer_sources(layers), budget)
        opt_dir, reused = merged.root, reused and merged.reused
    return PreparedFunction(task_root, opt_dir, budget.used, reused)


def directory_size(root: Path) -> int:
    """Bytes of the regular files under `root` (symlinks not followed), as a zip of it would unzip to."""
    total = 0
    stack = [str(root)]
    while stack:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError as error:
            raise LayerError(f"'{root}': cannot list it ({error.strerror})") from None
        for entry in entries:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                stack.append(entry.path)
            elif stat.S_ISREG(info.st_mode):
                total += info.st_size
    return total
