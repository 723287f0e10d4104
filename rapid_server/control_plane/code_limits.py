"""The service's code-size limits, with the errors it names them by (Lambda quotas, "Function configuration,
deployment, and execution"):

- 50 MB zipped, uploaded through the API: the request is too large, 413 `RequestEntityTooLargeException`
  ("Request must be smaller than 69905067 bytes for the CreateFunction operation": the zip in base64).
- 250 MB unzipped, the function's code and all its layers together: 400 `InvalidParameterValueException`
  ("Unzipped size must be smaller than 262144000 bytes"), found while extracting (layers/limits.py).
- 75 GB of code stored by the account, functions and layers: 400 `CodeStorageExceededException`.

Each is checked before anything is stored or changed.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from typing import TYPE_CHECKING

from rapidboot.layers import LAMBDA_MAX_UNZIPPED_BYTES

from .. import errors
from ..errors import ServiceError

if TYPE_CHECKING:
    from .functions import ControlPlane

CODE_STORAGE_EXCEEDED = "CodeStorageExceededException"
MAX_ZIPPED_BYTES = 52_428_800  # "50 MB (zipped, when uploaded through the Lambda API)"
MAX_REQUEST_BYTES = 69_905_067  # that zip in base64: what the service's 413 message states
TOTAL_CODE_SIZE = 80_530_636_800  # "75 GB" of code storage per account (AccountLimit.TotalCodeSize)


def too_large(operation: str, detail: str = "") -> ServiceError:
    return ServiceError(
        413,
        errors.REQUEST_TOO_LARGE,
        f"Request must be smaller than {MAX_REQUEST_BYTES} bytes for the {operation} operation{detail}",
    )


def zip_bytes(value: object, field: str, operation: str) -> bytes:
    """A base64 ZipFile, decoded, within the 50 MB a request may carry."""
    if not isinstance(value, str) or not value:
        raise ServiceError(
            400, errors.INVALID_PARAMETER_VALUE, f"{field}: required, the base64 of a zip file"
        )
    if len(value) > MAX_ZIPPED_BYTES * 4 // 3 + 4:
        raise too_large(operation, f" ({field}: more than {MAX_ZIPPED_BYTES:,} bytes zipped, 50 MB)")
    try:
        # Strict in C: b64decode(validate=True) checks the alphabet with a regex first, ~3 ms a 1 MB zip.
        zipped = binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError):
        raise ServiceError(400, errors.INVALID_PARAMETER_VALUE, f"{field}: not valid base64") from None
    if len(zipped) > MAX_ZIPPED_BYTES:
        raise too_large(
            operation, f" ({field}: {len(zipped):,} bytes zipped, over {MAX_ZIPPED_BYTES:,}, 50 MB)"
        )
    return zipped


def stored_code_size(control: ControlPlane) -> int:
    """AccountUsage.TotalCodeSize: the zips of the functions created through the API and of the layer
    versions (a configured function's code is the user's own directory, not storage of ours)."""
    functions = sum(record.code_size for record in control.store.all() if record.code_sha256)
    return functions + control.layers.store.total_code_size()


def check_storage(control: ControlPlane, new_bytes: int) -> None:
    used = stored_code_size(control)
    if used + new_bytes > TOTAL_CODE_SIZE:
        raise ServiceError(
            400,
            CODE_STORAGE_EXCEEDED,
            f"Code storage limit exceeded: {used:,} bytes stored plus {new_bytes:,} is over the "
            f"{TOTAL_CODE_SIZE:,} bytes of AccountLimit.TotalCodeSize",
        )


def refusal(message: str, names: Mapping[str, str]) -> ServiceError:
    """A LayerError from extracting code and layers, as the service's error; `names` maps each label in the
    message (`code '/path'`, `layer 2 '/path'`) to what the caller called it (Code.ZipFile, an ARN)."""
    for label, name in names.items():
        message = message.replace(label, name)
    if ("more than" in message and "limit" in message) or "over the limit" in message:
        message = f"Unzipped size must be smaller than {LAMBDA_MAX_UNZIPPED_BYTES} bytes: {message}"
    return ServiceError(400, errors.INVALID_PARAMETER_VALUE, message)
