"""Lambda layers and deployment packages: merged safely into what /opt and the task root hold on Lambda.

Standard library only: this package also runs inside container builds (`python -m layers merge --into /opt
a.zip b.zip`), where nothing else is installed.
"""

from layers.cache import CachedTree, LayerCache, default_cache_dir
from layers.errors import LayerError
from layers.function import PreparedFunction, prepare_function
from layers.limits import LAMBDA_MAX_LAYERS, LAMBDA_MAX_UNZIPPED_BYTES, Limits
from layers.manifest import LayerInfo, Manifest, Origin
from layers.merge import merge

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
