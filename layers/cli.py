"""`python -m rapidboot.layers` (and `rapidboot layers`): merge layers into a directory, or explain a merge.

Bad input never ends in a traceback: a LayerError prints `layers: <message>` and exits 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rapidboot.layers.cache import default_cache_dir
from rapidboot.layers.errors import LayerError
from rapidboot.layers.explain import explain, render_json, render_text
from rapidboot.layers.limits import LAMBDA_MAX_LAYERS, LAMBDA_MAX_UNZIPPED_BYTES, Limits
from rapidboot.layers.merge import merge

EXIT_BAD_INPUT = 2


def build_parser(prog: str = "python -m rapidboot.layers") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Merge Lambda layers (zip files or directories) the way Lambda fills /opt."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    merge_parser = commands.add_parser(
        "merge",
        help="merge layers into a directory, in order (the last layer wins)",
        description="Merge layers into DIR in the given order; a path in several layers comes from the last. "
        "If DIR already holds files, the layers are applied on top of them, as Lambda extracts into /opt. "
        "Nothing in DIR changes unless every layer extracted cleanly.",
    )
    merge_parser.add_argument("--into", required=True, type=Path, metavar="DIR", help="the destination")
    _add_inputs(merge_parser)

    explain_parser = commands.add_parser(
        "explain",
        help="show which layer each file comes from and which layers it overrode",
        description="Merge the layers into the cache (or reuse an earlier merge) and list, for every file, "
        "the layer it came from and the layers it overrode.",
    )
    explain_parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    explain_parser.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help=f"where merged trees are kept (default {default_cache_dir()})",
    )
    _add_inputs(explain_parser)
    return parser


def _add_inputs(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-layers", type=int, default=LAMBDA_MAX_LAYERS, help=f"default {LAMBDA_MAX_LAYERS}, as Lambda"
    )
    parser.add_argument(
        "--max-bytes",
        type=int,
        default=LAMBDA_MAX_UNZIPPED_BYTES,
        help=f"unzipped size limit, default {LAMBDA_MAX_UNZIPPED_BYTES:,} (250 MB), as Lambda",
    )
    parser.add_argument(
        "--no-limits", action="store_true", help="no layer count or size limit (container images have none)"
    )
    parser.add_argument("layers", nargs="+", type=Path, metavar="LAYER", help="a zip file or a directory")


def main(argv: Sequence[str] | None = None, prog: str = "python -m rapidboot.layers") -> int:
    arguments = build_parser(prog).parse_args(argv)
    limits = Limits.unlimited() if arguments.no_limits else Limits(arguments.max_layers, arguments.max_bytes)
    try:
        if arguments.command == "merge":
            manifest = merge(arguments.layers, arguments.into, limits)
            files = sum(1 for entry in manifest.entries if entry.kind != "dir")
            print(
                f"merged {len(manifest.layers)} layers into {arguments.into}: {files:,} files and symlinks, "
                f"{manifest.unzipped_bytes:,} bytes unzipped"
            )
        else:
            manifest = explain(arguments.layers, arguments.cache_dir or default_cache_dir(), limits)
            sys.stdout.write(render_json(manifest) + "\n" if arguments.json else render_text(manifest))
    except LayerError as error:
        print(f"layers: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as error:  # the destination or the cache: not the input's fault, still no traceback
        print(f"layers: {error}", file=sys.stderr)
        return 1
    return 0
