"""Event decoding and result encoding, with awslambdaric's semantics.

- The event is JSON-decoded only when `/next` said `Content-Type: application/json` exactly (a
  missing or other content type hands the handler the raw `bytes`, as awslambdaric does).
- Results: `bytes`/`bytearray` go out raw as `application/unknown`; anything else as JSON with
  non-ASCII kept (UTF-8), NaN/Infinity allowed, and `decimal.Decimal` written as an exact JSON
  number (awslambdaric uses simplejson's RawJSON for that; stdlib json cannot, see `_encode_decimals`).

Cold start: `import json` costs ~1.6 ms plus ~3-6 ms for `re` when nothing else has imported it
(measured with `python -X importtime`). The hot paths therefore drive json's own C accelerator,
`_json` (~0.5 ms), exactly as `json.loads`/`JSONEncoder.encode` do internally; `json` itself is
imported only on rare paths (decode errors, interpreters without `_json`), so every result and every
error message is the stdlib's.
"""

from __future__ import annotations  # ~0.1 ms; keeps `typing` out of the process

import sys

from .errors import MARSHAL_ERROR, UNMARSHAL_ERROR, FaultError

TYPE_CHECKING = False  # mypy treats this name as true; `typing` is never imported at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    Encoder = Callable[[Any], str]

_c_make_encoder: Any
_c_make_scanner: Any
try:
    from _json import encode_basestring as _c_encode_str
    from _json import encode_basestring_ascii as _c_encode_str_ascii
    from _json import make_encoder as _c_make_encoder
    from _json import make_scanner as _c_make_scanner
except ImportError:  # pragma: no cover - not CPython
    _c_make_encoder = None
    _c_make_scanner = None

JSON_CONTENT_TYPE = "application/json"
BINARY_CONTENT_TYPE = "application/unknown"

_JSON_WHITESPACE = " \t\n\r"


class _ScannerContext:
    """The attributes `_json.make_scanner` reads, set as `json.JSONDecoder()` sets them."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}.__getitem__


_scan_once = _c_make_scanner(_ScannerContext()) if _c_make_scanner is not None else None


def decode_event(body: bytes, content_type: str | None) -> Any:
    if content_type != JSON_CONTENT_TYPE:
        return body
    if _scan_once is not None:
        try:
            if len(body) < GC_PAUSE_BYTES:
                return _loads_utf8(body)
            return _loads_gc_paused(body)
        except Exception:
            pass
    import json

    try:
        return json.loads(body)
    except Exception as exc:
        raise FaultError(UNMARSHAL_ERROR, f"Unable to unmarshal input: {exc}") from None


# A large event is decoded with the cyclic garbage collector paused. Decoding a 3 MB event of small
# records creates ~200,000 containers, and each 700 allocations trigger a collection over the young
# ones, with full collections as they age: measured here (tests/runtime/test_runtime_marshal.py has
# the equivalence tests, this is the timing), 3 MB of records decodes in 26 ms paused vs 41 ms not,
# 6 MB in 71 vs 93 ms, the deferred collection included; below ~256 KB the difference is noise.
# Decoding runs no user code and creates no cycles, so nothing is lost by collecting afterwards.
#
# orjson was measured for this too and left out: with its import (~18-28 ms here: it loads
# dataclasses, uuid, enum) it decodes 3 MB in 37 ms, 1.1x faster than the stdlib unpaused and slower
# than the stdlib paused; and its encoder cannot produce our (awslambdaric's) bytes: fixed compact
# separators, NaN/Infinity written as `null`, Enum/UUID/dataclass/datetime encoded natively where
# json raises, so each use would need a verification pass costing more than it saves.
GC_PAUSE_BYTES = 256 * 1024


def _loads_gc_paused(body: bytes) -> Any:
    import gc  # built in

    if not gc.isenabled():
        return _loads_utf8(body)
    gc.disable()
    try:
        return _loads_utf8(body)
    finally:
        gc.enable()


def _loads_utf8(body: bytes) -> Any:
    """`json.loads` for the common case (UTF-8, no BOM); raises on anything else."""
    assert _scan_once is not None
    text = body.decode("utf-8")
    end = len(text)
    index = 0
    while index < end and text[index] in _JSON_WHITESPACE:
        index += 1
    value, index = _scan_once(text, index)
    while index < end and text[index] in _JSON_WHITESPACE:
        index += 1
    if index != end:
        raise ValueError("extra data")
    return value


def encode_response(result: Any) -> tuple[bytes, str]:
    if isinstance(result, bytes):
        return result, BINARY_CONTENT_TYPE
    if isinstance(result, bytearray):
        return bytes(result), BINARY_CONTENT_TYPE
    try:
        return to_json_bytes(result), JSON_CONTENT_TYPE
    except Exception as exc:
        raise FaultError(MARSHAL_ERROR, f"Unable to marshal response: {_simplejson_text(exc)}") from None


_BAD_KEY = "keys must be str, int, float, bool or None, not "


def _simplejson_text(exc: Exception) -> str:
    # json's C encoder names a bad key's type by its qualified C name ("decimal.Decimal"),
    # simplejson (awslambdaric) by its bare class name ("Decimal").
    text = str(exc)
    if isinstance(exc, TypeError) and text.startswith(_BAD_KEY):
        return _BAD_KEY + text[len(_BAD_KEY) :].rpartition(".")[2]
    return text


def to_json_bytes(obj: Any) -> bytes:
    text = to_json(obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8; \u escapes keep the JSON valid and lossless.
        return to_json(obj, ascii_only=True).encode("ascii")


def to_json(obj: Any, ascii_only: bool = False) -> str:
    try:
        return _make_encoder(_reject_default, ascii_only)(obj)
    except _DecimalFound:
        return _encode_decimals(obj, ascii_only)


class _DecimalFound(Exception):
    pass


def _is_decimal(obj: object) -> bool:
    # No Decimal can exist unless `decimal` was imported, so this never imports it (~4 ms).
    decimal = sys.modules.get("decimal")
    return decimal is not None and isinstance(obj, decimal.Decimal)


def _reject_default(obj: object) -> Any:
    if _is_decimal(obj):
        raise _DecimalFound
    # Same text as json's and simplejson's JSONEncoder.default.
    raise TypeError(f"Object of type {obj.__class__.__name__} is not JSON serializable")


def _encode_decimals(obj: Any, ascii_only: bool) -> str:
    """Encode with each Decimal written as its exact digits (`str(d)`), NaN ones as `NaN`.

    The encoder writes each Decimal as a placeholder string `"\\u0000<nonce>:<n>"` which is then
    replaced by the digits. A user string can produce that text only by containing the per-call
    random nonce, and a NUL in a user string comes out as `\\u0000` too but is never followed by
    the nonce.
    """
    import os

    nonce = os.urandom(8).hex()
    digits: list[str] = []

    def placeholder(value: object) -> Any:
        if not _is_decimal(value):
            return _reject_default(value)
        if value.is_nan():  # type: ignore[attr-defined]
            return float("nan")  # as awslambdaric: "NaN", never simplejson's invalid "-NaN"/"sNaN"
        digits.append(str(value))
        return f"\x00{nonce}:{len(digits) - 1}"

    text = _make_encoder(placeholder, ascii_only)(obj)
    pieces = text.split(f'"\\u0000{nonce}:')
    out = [pieces[0]]
    for piece in pieces[1:]:
        index, _, rest = piece.partition('"')
        out.append(digits[int(index)])
        out.append(rest)
    return "".join(out)


def json_encoder(default: Callable[[Any], Any]) -> Encoder:
    """A str encoder like `json.JSONEncoder(ensure_ascii=False, default=default).encode`."""
    return _make_encoder(default, False)


def _make_encoder(default: Callable[[Any], Any], ascii_only: bool) -> Encoder:
    if _c_make_encoder is not None:
        # The same call `JSONEncoder.iterencode(o, _one_shot=True)` makes; a fresh `markers` dict
        # per call gives json's "Circular reference detected" check.
        encode = _c_make_encoder(
            {},
            default,
            _c_encode_str_ascii if ascii_only else _c_encode_str,
            None,
            ": ",
            ", ",
            False,
            False,
            True,
        )
        return lambda obj: "".join(encode(obj, 0))
    import json  # pragma: no cover - not CPython

    return json.JSONEncoder(ensure_ascii=ascii_only, allow_nan=True, default=default).encode
