"""Event decoding and result encoding, with awslambdaric's semantics.

- The event is JSON-decoded only when `/next` said `Content-Type: application/json` exactly (a
  missing or other content type hands the handler the raw `bytes`, as awslambdaric does).
- Results: `bytes`/`bytearray` go out raw as `application/unknown`; anything else as JSON with
  non-ASCII kept (UTF-8), NaN/Infinity allowed, and `decimal.Decimal` written as an exact JSON
  number (awslambdaric uses simplejson's RawJSON for that; stdlib json cannot, see `_encode_decimals`).

Deliberate difference from awslambdaric: handler results are written *compact*, `{"a":1,"b":[1,2]}`,
where awslambdaric writes `{"a": 1, "b": [1, 2]}`. JSON whitespace is insignificant (RFC 8259 section
2), and orjson (below) can only write compact output: with the same separators on both paths a result
has one byte-exact encoding whichever path wrote it. Error bodies, X-Ray causes and JSON log records
keep awslambdaric's spacing (they never take the orjson path).

Cold start: `import json` costs ~1.6 ms plus ~3-6 ms for `re` when nothing else has imported it
(measured with `python -X importtime`). The hot paths therefore drive json's own C accelerator,
`_json` (~0.5 ms), exactly as `json.loads`/`JSONEncoder.encode` do internally; `json` itself is
imported only on rare paths (decode errors, interpreters without `_json`), so every result and every
error message is the stdlib's.

Large payloads take orjson when it is installed (see `_FastJSON`): it is imported at the first event or
result of `ORJSON_IMPORT_BYTES` or more, never on the cold-start path, and used only where it provably
gives the stdlib path's value (decode) or bytes (encode); everything else falls back to the stdlib.
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
    if len(body) >= ORJSON_MIN_BYTES:
        fast = _fast_json(load=len(body) >= ORJSON_IMPORT_BYTES)
        if fast is not None:
            value = fast.decode(body)
            if value is not _DECLINED:
                return value
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
# 6 MB in 71 vs 93 ms; below ~256 KB the difference is noise. Decoding runs no user code and creates
# no cycles, so nothing is lost by collecting afterwards.
#
# Pausing alone only defers the work: the first young collection after the decode walks all ~90,000
# new containers (15-22 ms for 3 MB, measured with gc.callbacks), in the middle of the invoke. The
# event is an acyclic tree that lives for one invoke and is freed by reference counting, so a young
# collection can only waste time on it: the decoded objects are put straight into the oldest
# generation (gc.freeze() then gc.unfreeze(), both O(1) list splices, the documented way to move
# objects there), which only a full collection walks. The few hundred other young objects move
# with them, as survivors of a collection would; a caller's own gc.freeze() is left alone.
GC_PAUSE_BYTES = 256 * 1024


def _loads_gc_paused(body: bytes) -> Any:
    return _gc_paused(_loads_utf8, body)


def _gc_paused(function: Callable[[Any], Any], argument: Any) -> Any:
    """`function(argument)` with the cyclic collector paused, then its objects made old (see above).

    Only for functions that run no user code and create no cycles.
    """
    import gc  # built in

    if not gc.isenabled():
        return function(argument)
    gc.disable()
    try:
        value = function(argument)
        if not gc.get_freeze_count():
            gc.freeze()
            gc.unfreeze()
        return value
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
    fast = _fast_json(load=False)
    if fast is not None:
        body = fast.encode(result)
        if body is not None:
            return body, JSON_CONTENT_TYPE
    try:
        body = to_json_bytes(result, compact=True)
    except Exception as exc:
        raise FaultError(MARSHAL_ERROR, f"Unable to marshal response: {_simplejson_text(exc)}") from None
    if fast is None and len(body) >= ORJSON_IMPORT_BYTES:
        _fast_json(load=True)  # this result paid the stdlib's price; the next large ones will not
    return body, JSON_CONTENT_TYPE


_BAD_KEY = "keys must be str, int, float, bool or None, not "


def _simplejson_text(exc: Exception) -> str:
    # json's C encoder names a bad key's type by its qualified C name ("decimal.Decimal"),
    # simplejson (awslambdaric) by its bare class name ("Decimal").
    text = str(exc)
    if isinstance(exc, TypeError) and text.startswith(_BAD_KEY):
        return _BAD_KEY + text[len(_BAD_KEY) :].rpartition(".")[2]
    return text


def to_json_bytes(obj: Any, compact: bool = False) -> bytes:
    """UTF-8 JSON; `compact` drops the spaces after `,` and `:` (handler results, see the docstring)."""
    text = to_json(obj, compact=compact)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates cannot be UTF-8; \u escapes keep the JSON valid and lossless.
        return to_json(obj, ascii_only=True, compact=compact).encode("ascii")


def to_json(obj: Any, ascii_only: bool = False, compact: bool = False) -> str:
    try:
        return _make_encoder(_reject_default, ascii_only, compact)(obj)
    except _DecimalFound:
        return _encode_decimals(obj, ascii_only, compact)


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


def _encode_decimals(obj: Any, ascii_only: bool, compact: bool) -> str:
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

    text = _make_encoder(placeholder, ascii_only, compact)(obj)
    pieces = text.split(f'"\\u0000{nonce}:')
    out = [pieces[0]]
    for piece in pieces[1:]:
        index, _, rest = piece.partition('"')
        out.append(digits[int(index)])
        out.append(rest)
    return "".join(out)


def json_encoder(default: Callable[[Any], Any]) -> Encoder:
    """A str encoder like `json.JSONEncoder(ensure_ascii=False, default=default).encode`."""
    return _make_encoder(default, False, False)


def _make_encoder(default: Callable[[Any], Any], ascii_only: bool, compact: bool) -> Encoder:
    if _c_make_encoder is not None:
        # The same call `JSONEncoder.iterencode(o, _one_shot=True)` makes; a fresh `markers` dict
        # per call gives json's "Circular reference detected" check.
        encode = _c_make_encoder(
            {},
            default,
            _c_encode_str_ascii if ascii_only else _c_encode_str,
            None,
            ":" if compact else ": ",
            "," if compact else ", ",
            False,
            False,
            True,
        )
        return lambda obj: "".join(encode(obj, 0))
    import json  # pragma: no cover - not CPython

    separators = (",", ":") if compact else (", ", ": ")
    return json.JSONEncoder(
        ensure_ascii=ascii_only, allow_nan=True, default=default, separators=separators
    ).encode


# -- orjson, for large payloads ---------------------------------------------------------------------
#
# Measured on benchmarks/coldstart.py's 3 MB event (records of ints, floats, short strings), collector
# paused for both: decode 26 ms stdlib vs 21 ms orjson; encode 42 ms stdlib vs 3 ms orjson + ~9 ms of
# the checks in `_EncodeChecks`. `import orjson` costs 14-28 ms (it loads dataclasses, inspect, uuid,
# enum, re and json), so the first event or stdlib-encoded result of ORJSON_IMPORT_BYTES imports it
# (a 256 KB result costs the stdlib ~4 ms to encode: a handful of such payloads repay the import) and a
# process that never sees one never loads it; a function that imported orjson itself gets it for free.
ORJSON_IMPORT_BYTES = 256 * 1024
# Below this the stdlib is fast enough that the checks' fixed costs are not worth paying.
ORJSON_MIN_BYTES = 16 * 1024

_DECLINED: Any = object()
_fast: _FastJSON | None = None
_fast_tried = False


def _fast_json(load: bool) -> _FastJSON | None:
    """The orjson path when orjson is loaded, or installed and `load` is set; else None."""
    global _fast, _fast_tried
    if _fast is not None or _fast_tried:
        return _fast
    if not load and "orjson" not in sys.modules:
        return None
    _fast_tried = True
    try:
        import orjson
    except ImportError:  # optional: the stdlib path does everything, only slower
        return None
    _fast = _FastJSON(orjson)
    return _fast


# A run of 19 digits is the shortest that can be an integer outside orjson's 64-bit range.
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19


class _FastJSON:
    """orjson, used only where it provably gives what the stdlib path gives.

    Decode: for any JSON text both accept, `orjson.loads` builds the value `json.loads` builds (same
    float rounding, duplicate keys last-wins at the first key's position, `-0` an int), except that
    orjson turns integers beyond 64 bits into floats: a body with a run of 19 or more digits is left
    to the stdlib. Whatever orjson refuses (NaN/Infinity literals, a BOM, lone surrogate escapes,
    invalid JSON) goes to the stdlib too, which decodes it or names the error.

    Encode: see `_EncodeChecks`; any doubt means the stdlib path writes the result.
    """

    def __init__(self, orjson: Any) -> None:
        self._loads: Callable[[bytes], Any] = orjson.loads
        self._dumps: Callable[..., bytes] = orjson.dumps
        # No `default`: subclasses, dataclasses and datetimes raise instead of being written natively.
        self._option = (
            getattr(orjson, "OPT_PASSTHROUGH_SUBCLASS", 0)
            | getattr(orjson, "OPT_PASSTHROUGH_DATACLASS", 0)
            | getattr(orjson, "OPT_PASSTHROUGH_DATETIME", 0)
        )
        self.min_bytes = ORJSON_MIN_BYTES  # smaller results are left to the stdlib
        self._checks: _EncodeChecks | None = None
        self._checks_built = False

    def decode(self, body: bytes) -> Any:
        """The decoded event, or `_DECLINED`."""
        if body.translate(_DIGITS_AS_ZERO).find(_LONG_DIGIT_RUN) >= 0:
            return _DECLINED
        try:
            if len(body) >= GC_PAUSE_BYTES:
                return _gc_paused(self._loads, body)
            return self._loads(body)
        except Exception:
            return _DECLINED

    def encode(self, obj: Any) -> bytes | None:
        """The stdlib path's compact UTF-8 bytes for `obj`, or None to let the stdlib path write them."""
        try:
            data = self._dumps(obj, option=self._option)
        except Exception:  # Decimal, an int beyond 64 bits, a lone surrogate, a cycle, ...
            return None
        if len(data) < self.min_bytes:
            return None
        if not self._checks_built:
            self._checks_built = True
            checks = _EncodeChecks()
            self._checks = checks if checks.floats_match(self._dumps) else None
        if self._checks is None or not self._checks.same_as_stdlib(obj, data):
            return None
        return data


class _NotExactType(Exception):
    pass


class _Chunks(list):  # type: ignore[type-arg]
    """A file for the pickler that keeps what is written (whole frames, so no opcode is split)."""

    write = list.append


class _EncodeChecks:
    """Proof that orjson's bytes for a result are the stdlib path's (compact) bytes.

    orjson and the stdlib write the same bytes for trees of exact dict (str keys), list, tuple, str,
    int, float, bool and None, but for three cases, each detected here:

    - Other types. orjson raises for most of them, but writes Enum members, UUIDs and
      `orjson.Fragment` natively where the stdlib raises. One pass of the C pickler in fast mode (no
      memo) visits every object and calls `reducer_override` for anything that is not an exact
      builtin: the check declines. (orjson has already refused the builtins JSON lacks: bytes, sets.)
    - NaN and infinities: orjson writes `null`, the stdlib `NaN`/`Infinity`. The pickle stream holds
      each float as `G` + 8 big-endian IEEE bytes, and a non-finite one starts `G\\x7f` or `G\\xff`
      followed by a byte >= 0xF0.
    - Floats in [1e-9, 1e-4): orjson writes `0.00001` and `1e-7` where `repr` writes `1e-05` and
      `1e-07`. They are found in orjson's output: `0.0000`, or `e-` and one digit after a digit.
      Every other float is formatted as `repr` formats it, checked once per process by
      `floats_match` on probes of every decimal exponent (a different orjson release is checked too).

    False alarms (a string containing `0.0000`, a negative int whose pickled bytes look like a NaN)
    only cost the stdlib path.
    """

    def __init__(self) -> None:
        import re  # loaded by orjson's own import
        from _pickle import Pickler  # ~2.5 ms, once

        class ExactTypesPickler(Pickler):
            def reducer_override(self, obj: object) -> Any:
                raise _NotExactType

        self._pickler = ExactTypesPickler
        self._non_finite = re.compile(rb"G[\x7f\xff][\xf0-\xff]").search
        self._one_digit_exponent = re.compile(rb"e-[1-9](?![0-9])").finditer

    def same_as_stdlib(self, obj: Any, data: bytes) -> bool:
        chunks = _Chunks()
        pickler = self._pickler(chunks, 4)
        pickler.fast = True
        try:
            pickler.dump(obj)
        except Exception:  # _NotExactType, or a nesting too deep for the pickler
            return False
        non_finite = self._non_finite
        for chunk in chunks:
            if non_finite(chunk) is not None:
                return False
        return not self.has_small_float(data)

    def has_small_float(self, data: bytes) -> bool:
        """True if orjson's `data` may hold a float that `repr` writes differently (see the class)."""
        if b"0.0000" in data:
            return True
        for lookalikes, match in enumerate(self._one_digit_exponent(data)):
            start = match.start()
            if start and 0x30 <= data[start - 1] <= 0x39:
                return True
            if lookalikes >= 100:  # many strings like "type-5": not worth telling apart
                return True
        return False

    def floats_match(self, dumps: Callable[[Any], bytes]) -> bool:
        """Every probe float is either written as `repr` writes it or caught by `has_small_float`."""
        probes = [0.0, -0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 2.0**53, 0.1]
        for exponent in range(-324, 309):
            for digits in ("1", "12", "1234567890123456", "12345678901234567"):
                value = float(f"{digits[0]}.{digits[1:] or '0'}e{exponent}")
                if value != 0.0 and value != float("inf"):
                    probes.append(value)
                    probes.append(-value)
        written = dumps(probes)[1:-1].split(b",")
        if len(written) != len(probes):
            return False
        for value, text in zip(probes, written, strict=True):
            if text != repr(value).encode("ascii") and not self.has_small_float(text):
                return False
        return True
