"""What a merged tree holds and where each entry came from: the data behind `explain`, stored as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

EntryKind = Literal["file", "symlink", "dir"]


@dataclass(frozen=True, slots=True)
class LayerInfo:
    """One input, numbered from 1 in the order it was applied."""

    number: int
    path: str
    kind: Literal["zip", "dir"]
    unzipped_bytes: int


@dataclass(frozen=True, slots=True)
class Origin:
    """An entry of the merged tree: the layer it came from and the layers it overrode (by number, oldest
    first). Directories appear only where one replaced a file or symlink of an earlier layer."""

    path: str
    kind: EntryKind
    layer: int
    overrode: tuple[int, ...] = ()
    link_target: str | None = None


@dataclass(frozen=True, slots=True)
class Manifest:
    layers: tuple[LayerInfo, ...]
    entries: tuple[Origin, ...]

    @property
    def unzipped_bytes(self) -> int:
        return sum(layer.unzipped_bytes for layer in self.layers)

    def to_json(self) -> dict[str, Any]:
        return {
            "unzipped_bytes": self.unzipped_bytes,
            "layers": [
                {
                    "number": info.number,
                    "path": info.path,
                    "kind": info.kind,
                    "unzipped_bytes": info.unzipped_bytes,
                }
                for info in self.layers
            ],
            "entries": [
                {
                    "path": e.path,
                    "kind": e.kind,
                    "layer": e.layer,
                    "overrode": list(e.overrode),
                    **({"link_target": e.link_target} if e.link_target is not None else {}),
                }
                for e in self.entries
            ],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        return cls(
            layers=tuple(
                LayerInfo(info["number"], info["path"], info["kind"], info["unzipped_bytes"])
                for info in data["layers"]
            ),
            entries=tuple(
                Origin(e["path"], e["kind"], e["layer"], tuple(e["overrode"]), e.get("link_target"))
                for e in data["entries"]
            ),
        )

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1)
