"""The orjson path for large payloads: the stdlib path's value or bytes, or it declines.

`_FastJSON` is exercised directly with the size floor lowered to 0, so that small generated values go
through every check; `decode_event`/`encode_response` are exercised end to end with large payloads.
"""

from __future__ import annotations

import collections
import decimal
import enum
import gc
import json
import math
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fake_runtime_api import FakeEvent
from hypothesis import given, settings
from hypothesis import strategies as st
from runtime_harness import run_runtime, write

from rapidboot.runtime import marshal
from rapidboot.runtime.marshal import decode_event, encode_response, to_json_bytes


@pytest.fixture(scope="module")
def fast() -> marshal._FastJSON:
    path = marshal._FastJSON(orjson)
    path.min_bytes = 0
    return path


@pytest.fixture
def fresh_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """marshal's lazily loaded orjson state, reset for the test and restored after it."""
    monkeypatch.setattr(marshal, "_fast", None)
    monkeypatch.setattr(marshal, "_fast_tried", False)
    yield


def stdlib_bytes(value: object) -> bytes:
    return to_json_bytes(value, compact=True)


# -- encode -------------------------------------------------------------------------------------------


class Color(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    HIGH = 3


class Name(str):
    pass


class Number(float):
    pass


Pair = collections.namedtuple("Pair", "a b")

floats = (
    st.floats()  # NaN, infinities, subnormals, huge
    | st.floats(min_value=1e-11, max_value=2e-4)  # where orjson's and repr's formats differ
    | st.floats(min_value=-2e-4, max_value=-1e-11)
    | st.sampled_from([1e16, 9999999999999998.0, 1e-4, 1e-5, 1e-7, -0.0, 0.0, 2.0**53, 5e-324])
)
odd_scalars = st.sampled_from(
    [
        Color.RED,
        Level.HIGH,
        Name("n"),
        Number(1.5),
        Pair(1, 2),
        uuid.UUID(int=7),
        decimal.Decimal("1.10"),
        orjson.Fragment(b"[1]"),
        b"raw",
        {1, 2},
        2**64,
        -(2**63) - 1,
        2**64 - 1,
        -(2**63),
        "\ud800",
        "G\x7f\xf0",
        "0.0000",
        "1e-7",
        "\x00\x1f\x7f\u2028",
    ]
)
scalars = st.none() | st.booleans() | st.integers() | floats | st.text() | odd_scalars
keys = st.text(max_size=5) | st.sampled_from([1, Name("k"), None])
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(keys, inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=1500, deadline=None)
@given(value=values)
def test_fast_encode_gives_the_stdlib_bytes_or_declines(value: object, fast: marshal._FastJSON) -> None:
    data = fast.encode(value)
    if data is None:
        return
    assert data == stdlib_bytes(value)


@pytest.mark.parametrize(
    "value",
    [
        {"items": [{"id": i, "price": i * 1.25, "ok": i % 2 == 0, "tags": ("a", "é")} for i in range(50)]},
        [0.0, -0.0, 0.5, 0.0001, 123456.789, 9007199254740993.0, 1e16, 1.5e300, 1e-10, 5e-324],
        ["type-5", "node-7,", {"k": None}, 18446744073709551615, -(2**63)],
        "x" * 100,
    ],
    ids=["records", "floats-outside-the-band", "lookalike-strings", "string"],
)
def test_fast_encode_takes_plain_json(value: object, fast: marshal._FastJSON) -> None:
    # The checks are not vacuous: ordinary trees go through, and come out as the stdlib writes them.
    assert fast.encode(value) == stdlib_bytes(value)


@pytest.mark.parametrize(
    "value",
    [
        [math.nan],
        {"a": -math.inf},
        [1e-5],  # orjson: 0.00001, repr: 1e-05
        [-7.5e-7],  # orjson: -7.5e-7, repr: -7.5e-07
        [Color.RED],  # orjson writes 1, the stdlib raises
        {"id": uuid.UUID(int=1)},  # orjson writes the string, the stdlib raises
        [orjson.Fragment(b"1")],
        [Level.HIGH],
        {"a": Name("x")},
        {Name("k"): 1},
        [Pair(1, 2)],
        [decimal.Decimal("1.5")],
        [2**64],
        ["\ud800"],
        {1: 2},
    ],
)
def test_fast_encode_declines_what_orjson_writes_differently(value: object, fast: marshal._FastJSON) -> None:
    assert fast.encode(value) is None


def test_float_self_check_covers_this_orjson() -> None:
    checks = marshal._EncodeChecks()
    assert checks.floats_match(orjson.dumps)
    # ... and would refuse an orjson that formats a float outside the band differently.
    assert not checks.floats_match(lambda values: orjson.dumps(values).replace(b"1e+16", b"1e16"))


def test_large_result_takes_orjson_and_small_one_does_not(fresh_state: None) -> None:
    marshal._fast_json(load=True)
    fast = marshal._fast
    assert fast is not None
    big = {"items": [{"id": i, "name": f"item-{i}", "price": i * 0.5} for i in range(20000)]}
    calls: list[int] = []
    real_same = marshal._EncodeChecks.same_as_stdlib

    def spy(self: marshal._EncodeChecks, obj: Any, data: bytes) -> bool:
        calls.append(len(data))
        return real_same(self, obj, data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(marshal._EncodeChecks, "same_as_stdlib", spy)
        assert encode_response(big) == (stdlib_bytes(big), "application/json")
        assert encode_response({"small": 1}) == (b'{"small":1}', "application/json")
    assert len(calls) == 1 and calls[0] >= marshal.ORJSON_MIN_BYTES


# -- decode -------------------------------------------------------------------------------------------

json_trees = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=4), children, max_size=5)
    ),
    max_leaves=30,
)
numbers = st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,25})?([eE][-+]?[0-9]{1,3})?", fullmatch=True)


def meant_for_orjson(body: bytes, value: object) -> bool:
    """What the fast decoder must take rather than decline (else the tests above would pass with a decoder
    that always declines): everything but a run of 19 digits (maybe an integer past 64 bits) and a value
    holding NaN or an infinity (orjson refuses `NaN`, and reads `1e400` as an error, not as inf)."""
    return re.search(rb"[0-9]{19}", body) is None and _all_finite(value)


def _all_finite(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_all_finite(item) for item in value)
    if isinstance(value, dict):
        return all(_all_finite(item) for item in value.values())
    return True


def stdlib_decoded(body: bytes) -> str:
    try:
        return repr(json.loads(body))
    except Exception as exc:
        return f"error: {exc}"


@settings(max_examples=800, deadline=None)
@given(value=json_trees, indent=st.sampled_from([None, 1]), ascii_only=st.booleans())
def test_fast_decode_gives_the_stdlib_value_or_declines(
    value: object, indent: int | None, ascii_only: bool, fast: marshal._FastJSON
) -> None:
    body = json.dumps(value, indent=indent, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    decoded = fast.decode(body)
    if decoded is not marshal._DECLINED:
        assert repr(decoded) == stdlib_decoded(body)
    elif meant_for_orjson(body, value):
        raise AssertionError(f"declined a body orjson reads as the stdlib does: {body[:200]!r}")


@settings(max_examples=800, deadline=None)
@given(number=numbers, duplicate=st.booleans())
def test_fast_decode_numbers_and_duplicate_keys(
    number: str, duplicate: bool, fast: marshal._FastJSON
) -> None:
    body = (f'{{"n": 1, "n": {number}}}' if duplicate else f"[{number}]").encode()
    decoded = fast.decode(body)
    if decoded is not marshal._DECLINED:
        assert repr(decoded) == stdlib_decoded(body)
    elif meant_for_orjson(body, json.loads(body)):
        raise AssertionError(f"declined a number orjson reads as the stdlib does: {number}")


@pytest.mark.parametrize(
    "body",
    [
        b"[18446744073709551616]",  # orjson: 1.8446744073709552e+19
        b"[-9223372036854775809]",
        b"[NaN]",
        b"[1e400]",
        b"\xef\xbb\xbf[1]",
        b'["\\ud800"]',
        b"[1,]",
    ],
)
def test_fast_decode_declines_what_orjson_reads_differently(body: bytes, fast: marshal._FastJSON) -> None:
    assert fast.decode(body) is marshal._DECLINED


def test_large_event_takes_orjson_and_keeps_json_semantics(fresh_state: None) -> None:
    records = [{"id": i, "name": f"item-{i}", "price": i * 1.25, "tags": ["a", "é"]} for i in range(8000)]
    body = json.dumps({"items": records, "big": 2**70, "nan": math.nan}).encode()
    assert len(body) >= marshal.ORJSON_IMPORT_BYTES
    # orjson declines this one (NaN, a 22-digit int): the stdlib decodes it, and orjson is loaded.
    assert repr(decode_event(body, "application/json")) == repr(json.loads(body))
    assert marshal._fast is not None
    plain = json.dumps({"items": records}).encode()
    assert decode_event(plain, "application/json") == {"items": records}
    with pytest.raises(marshal.FaultError, match="Unable to unmarshal input: Expecting"):
        decode_event(plain[:-1] + b"x", "application/json")


def test_large_event_is_moved_to_the_oldest_generation() -> None:
    body = json.dumps({"items": [[i, {"k": [i]}] for i in range(40000)]}).encode()
    assert len(body) >= marshal.GC_PAUSE_BYTES
    gc.collect()
    value = decode_event(body, "application/json")
    sample = value["items"][123]
    assert gc.isenabled()
    assert gc.get_count()[0] < 100  # the young generation does not hold the ~80,000 new containers
    assert any(obj is sample for obj in gc.get_objects(generation=2))
    # A caller's own gc.freeze() is left as it was.
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        decode_event(body, "application/json")
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()


# -- laziness and optional install ------------------------------------------------------------------


def test_without_orjson_everything_still_works(fresh_state: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "orjson", None)  # `import orjson` raises ImportError
    records = [{"id": i, "price": i * 1.25} for i in range(20000)]
    body = json.dumps({"items": records}).encode()
    assert len(body) >= marshal.ORJSON_IMPORT_BYTES
    value = decode_event(body, "application/json")
    assert value == {"items": records}
    assert encode_response(value) == (stdlib_bytes(value), "application/json")
    assert marshal._fast is None and marshal._fast_tried


SMALL_THEN_LARGE = """
import sys

def handler(event, context):
    return {"orjson_loaded": "orjson" in sys.modules, "size": len(str(event))}
"""


def test_cold_path_never_imports_orjson(task_root: Path) -> None:
    write(task_root, {"app.py": SMALL_THEN_LARGE})
    large = {"items": [{"id": i, "name": f"item-{i}"} for i in range(20000)]}
    events = [
        FakeEvent({"hello": "world"}, request_id="small-1"),
        FakeEvent({"hello": "again"}, request_id="small-2"),
        FakeEvent(large, request_id="large"),
    ]
    assert len(events[2].body) >= marshal.ORJSON_IMPORT_BYTES
    run = run_runtime(task_root, events)
    posts = {p.path.split("/")[-2]: p.json() for p in run.api.posts("/response")}
    assert posts["small-1"]["orjson_loaded"] is False, run.stderr
    assert posts["small-2"]["orjson_loaded"] is False
    assert posts["large"]["orjson_loaded"] is True  # the large event paid for the import


def test_bootstrap_import_time_has_no_orjson() -> None:
    # `-X importtime` of the runtime's first-response path (what bootstrap imports before /next).
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "import rapidboot.runtime.main, rapidboot.runtime.loop, rapidboot.runtime.marshal",
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "rapidboot.runtime.marshal" in imported
    assert not {"orjson", "_pickle", "re", "json"} & imported
