"""Lambda's deployment limits: at most 5 layers, 250 MB unzipped for code and layers together.

The byte limit is enforced while extracting (`Budget.charge` runs before every chunk is written), so a zip
bomb stops at the limit instead of filling the disk first; zip headers are never trusted for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rapidboot.layers.errors import LayerError

# Lambda quotas (docs: gettingstarted-limits): "Deployment package (.zip file archive) size: 250 MB
# (unzipped)", which counts the function code and all its layers; "Layers: five layers per function".
LAMBDA_MAX_LAYERS = 5
LAMBDA_MAX_UNZIPPED_BYTES = 262_144_000


@dataclass(frozen=True, slots=True)
class Limits:
    """`None` switches a limit off. The defaults are the service's."""

    max_layers: int | None = LAMBDA_MAX_LAYERS
    max_unzipped_bytes: int | None = LAMBDA_MAX_UNZIPPED_BYTES

    @classmethod
    def unlimited(cls) -> Limits:
        """Container images have no layer limits: their /opt is whatever the image copies in."""
        return cls(max_layers=None, max_unzipped_bytes=None)

    def check_layer_count(self, layers: Sequence[Path]) -> None:
        if self.max_layers is not None and len(layers) > self.max_layers:
            extra = ", ".join(f"'{path}'" for path in layers[self.max_layers :])
            raise LayerError(
                f"{len(layers)} layers given, over the limit of {self.max_layers} layers per function; "
                f"one too many from layer {self.max_layers + 1}: {extra}"
            )


class Budget:
    """Unzipped bytes written so far for one function (its code and all its layers, overridden files
    included, as the service counts each layer's own unzipped size)."""

    __slots__ = ("limit", "used")

    def __init__(self, limits: Limits, used: int = 0) -> None:
        self.limit = limits.max_unzipped_bytes
        self.used = used

    def charge(self, nbytes: int, source: str, member: str) -> None:
        """Account for `nbytes` about to be written; raises before the write that would pass the limit."""
        self.used += nbytes
        if self.limit is not None and self.used > self.limit:
            raise LayerError(
                f"{source}: code and layers unzip to more than {self.limit:,} bytes, the limit for unzipped "
                f"code and layers (250 MB on Lambda); stopped at member '{member}' after {self.used:,} bytes"
            )

    def charge_tree(self, nbytes: int, source: str) -> None:
        """Account for an already extracted (cached) tree or an in-place code directory."""
        self.used += nbytes
        if self.limit is not None and self.used > self.limit:
            raise LayerError(
                f"{source}: code and layers unzip to {self.used:,} bytes, over the limit of {self.limit:,} "
                f"bytes for unzipped code and layers (250 MB on Lambda); this part is {nbytes:,} bytes"
            )
