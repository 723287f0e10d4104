"""Event decoding and result encoding, checked against awslambdaric's (simplejson) encoder."""

from __future__ import annotations

import decimal
import json
import math
import os
import re

import pytest
import simplejson
from hypothesis import given, settings
from hypothesis import strategies as st

from rapidboot.runtime.errors import FaultError
from rapidboot.runtime.marshal import decode_event, encode_response, to_json


def test_decode_only_exact_json_content_type() -> None:
    assert decode_event(b'{"a": [1, 2.5, null, true]}', "application/json") == {"a": [1, 2.5, None, True]}
    assert decode_event(b'{"a": 1}', None) == b'{"a": 1}'
    assert decode_event(b'{"a": 1}', "application/json; charset=utf-8") == b'{"a": 1}'
    assert decode_event(b"\xff", "application/octet-stream") == b"\xff"


@pytest.mark.parametrize(
    "body",
    [
        b" \n{}\t ",
        b'"\xc3\xa9"',
        b"\xef\xbb\xbf{}",
        '{"a":1}'.encode("utf-16"),
        b"NaN",
        b"-Infinity",
        b"[1e400]",
    ],
)
def test_decode_matches_json_loads(body: bytes) -> None:
    result = decode_event(body, "application/json")
    expected = json.loads(body)
    assert repr(result) == repr(expected)


@pytest.mark.parametrize("body", [b"", b"{", b"[1] x", b"\xff", b"{'a': 1}", b"tru"])
def test_decode_errors_use_json_messages(body: bytes) -> None:
    with pytest.raises(FaultError) as info:
        decode_event(body, "application/json")
    try:
        json.loads(body)
    except Exception as exc:
        expected = f"Unable to unmarshal input: {exc}"
    assert info.value.error_type == "Runtime.UnmarshalError"
    assert info.value.message == expected


def test_encode_basic_and_bytes() -> None:
    # Results are compact (a deliberate difference: awslambdaric writes `{"é": "ü", "n": null}`).
    assert encode_response({"é": "ü", "n": None}) == ('{"é":"ü","n":null}'.encode(), "application/json")
    assert encode_response(b"\x00") == (b"\x00", "application/unknown")
    assert encode_response(bytearray(b"ab")) == (b"ab", "application/unknown")
    assert encode_response([math.nan, math.inf, -math.inf]) == (
        b"[NaN,Infinity,-Infinity]",
        "application/json",
    )
    assert encode_response("\ud800") == (b'"\\ud800"', "application/json")  # lone surrogate: escaped
    assert encode_response({"d": decimal.Decimal("1.10"), "s": "a, b: c"}) == (
        b'{"d":1.10,"s":"a, b: c"}',
        "application/json",
    )


def test_error_bodies_keep_awslambdaric_spacing() -> None:
    # Only handler results are compact; error bodies, X-Ray causes and log records are not.
    assert (
        to_json({"errorMessage": "x", "stackTrace": [1, 2]}) == '{"errorMessage": "x", "stackTrace": [1, 2]}'
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({1, 2}, "Object of type set is not JSON serializable"),
        (object(), "Object of type object is not JSON serializable"),
        ({(1, 2): 1}, "keys must be str, int, float, bool or None, not tuple"),
        ({decimal.Decimal(1): 1}, "keys must be str, int, float, bool or None, not Decimal"),
    ],
)
def test_marshal_errors(value: object, message: str) -> None:
    with pytest.raises(FaultError) as info:
        encode_response(value)
    assert info.value.error_type == "Runtime.MarshalError"
    assert info.value.message == f"Unable to marshal response: {message}"


def test_circular_reference() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(FaultError, match="Circular reference detected"):
        encode_response(loop)
    with pytest.raises(FaultError, match="Circular reference detected"):
        encode_response([decimal.Decimal(1), loop])


def test_decimal_digits_preserved() -> None:
    value = {"a": decimal.Decimal("1.10"), "b": [decimal.Decimal("-0"), decimal.Decimal("1E+400")]}
    assert to_json(value) == '{"a": 1.10, "b": [-0, 1E+400]}'
    assert to_json([decimal.Decimal("NaN"), decimal.Decimal("-sNaN"), decimal.Decimal("-Infinity")]) == (
        "[NaN, NaN, -Infinity]"
    )
    # a user string that looks like the placeholder stays a string
    assert to_json(["\x00abc:0", decimal.Decimal("2.50")]) == '["\\u0000abc:0", 2.50]'


@pytest.fixture(scope="module")
def ric_encoder() -> simplejson.JSONEncoder:
    ric = pytest.importorskip("awslambdaric.lambda_runtime_marshaller")
    os.environ["AWS_EXECUTION_ENV"] = "AWS_Lambda_python3.12"  # awslambdaric's ensure_ascii=False switch
    try:
        return ric.Encoder()
    finally:
        del os.environ["AWS_EXECUTION_ENV"]


finite_decimals = st.decimals(allow_nan=False, allow_infinity=False)
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text() | finite_decimals | st.decimals()
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)


_STRING_OR_SPACE = re.compile(r'("(?:[^"\\]|\\.)*")|[ \t\n\r]+')


def _without_spaces(ric_text: str) -> bytes:
    """awslambdaric's JSON text with the whitespace between tokens dropped, every token kept as is."""
    return _STRING_OR_SPACE.sub(lambda match: match.group(1) or "", ric_text).encode()


@settings(max_examples=300, deadline=None)
@given(value=json_values)
def test_same_text_as_awslambdaric(value: object, ric_encoder: simplejson.JSONEncoder) -> None:
    try:
        expected = ric_encoder.encode(value)
    except Exception as exc:
        with pytest.raises(FaultError, match="Unable to marshal response"):
            encode_response(value)
        assert isinstance(exc, (ValueError, TypeError))
        return
    assert to_json(value) == expected
    # Handler results: the same tokens (digits of floats and Decimals, escapes, NaN), no spaces.
    assert encode_response(value)[0] == _without_spaces(expected)


@settings(max_examples=300, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text() | finite_decimals,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
        max_leaves=20,
    )
)
def test_decimals_round_trip_like_simplejson(value: object) -> None:
    ours = to_json(value)
    theirs = simplejson.dumps(value, use_decimal=True, ensure_ascii=False)
    parsed = simplejson.loads(ours, use_decimal=True)
    assert parsed == simplejson.loads(theirs, use_decimal=True)
    # the raw digits, not just the value: 1.10 stays 1.10
    assert ours == theirs


# -- large events: decoded with the garbage collector paused -----------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, ensure_ascii=st.booleans(), indent=st.sampled_from([None, 2]))
def test_paused_decode_matches_json_loads(value: object, ensure_ascii: bool, indent: int | None) -> None:
    import gc
    from unittest import mock

    from rapidboot.runtime import marshal

    body = json.dumps(value, ensure_ascii=ensure_ascii, indent=indent).encode("utf-8", "surrogatepass")
    try:
        expected = repr(json.loads(body))
    except Exception as exc:  # lone surrogates: not UTF-8, so json.loads refuses too
        expected = f"Unable to unmarshal input: {exc}"
    with mock.patch.object(marshal, "GC_PAUSE_BYTES", 0):
        try:
            result = repr(decode_event(body, "application/json"))
        except FaultError as fault:
            result = fault.message
    assert result == expected
    assert gc.isenabled()


def test_large_event_decoded_with_gc_paused_then_restored() -> None:
    import gc
    from unittest import mock

    from rapidboot.runtime import marshal

    records = [
        {"id": i, "name": f"item-{i}", "price": i * 1.25, "tags": ["a", "ć"], "n": None} for i in range(30000)
    ]
    body = json.dumps({"items": records}).encode()
    assert len(body) > marshal.GC_PAUSE_BYTES
    collections: list[str] = []

    def spy(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(phase)

    def count_collections() -> int:
        collections.clear()
        gc.callbacks.append(spy)
        try:
            assert decode_event(body, "application/json") == {"items": records}
        finally:
            gc.callbacks.remove(spy)
        return len(collections)

    gc.collect()
    paused = count_collections()  # at most the one deferred collection, after the decode
    with mock.patch.object(marshal, "GC_PAUSE_BYTES", len(body) + 1):
        gc.collect()
        unpaused = count_collections()
    assert paused <= 1 < unpaused
    assert gc.isenabled()
    gc.disable()
    try:
        decode_event(body, "application/json")
        assert not gc.isenabled()  # a caller's choice is kept
    finally:
        gc.enable()
    with pytest.raises(FaultError, match="Unable to unmarshal input: Expecting"):
        decode_event(body[:-1] + b"x", "application/json")
    assert gc.isenabled()
