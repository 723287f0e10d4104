"""Lambda layers and deployment packages: merged safely into what /opt and the task root hold on Lambda.

Standard library only: this package also runs inside container builds (`python -m rapidboot.layers merge
--into /opt a.zip b.zip`), where nothing else is installed.
"""

from rapidboot.layers.cache import CachedTree, LayerCache, default_cache_dir
from rapidboot.layers.errors import LayerError
from rapidboot.layers.function import PreparedFunction, prepare_function
from rapidboot.layers.limits import LAMBDA_MAX_LAYERS, LAMBDA_MAX_UNZIPPED_BYTES, Limits
from rapidboot.layers.manifest import LayerInfo, Manifest, Origin
from rapidboot.layers.merge import merge

__all__ = [
    "LAMBDA_MAX_LAYERS",
    "LAMBDA_MAX_UNZIPPED_BYTES",
    "CachedTree",
    "LayerCache",
    "LayerError",
    "LayerInfo",
    "Limits",
    "Manifest",
    "Origin",
    "PreparedFunction",
    "default_cache_dir",
    "merge",
    "prepare_function",
]
