"""The Invoke API's checks of a function name, a qualifier and a payload, against the service's own words
(botocore's model for the patterns and lengths; reference section 2)."""

from __future__ import annotations

import gc
import json
import re
from types import SimpleNamespace
from typing import cast

import orjson
import pytest
from botocore.loaders import Loader
from hypothesis import given
from hypothesis import strategies as st

from rapidboot.rapid_server import errors
from rapidboot.rapid_server.data_plane.function import Function
from rapidboot.rapid_server.errors import ServiceError
from rapidboot.rapid_server.invoke import invoke_api
from rapidboot.rapid_server.server_state import ServerState

MODEL = Loader().load_service_model("lambda", "service-2", api_version="2015-03-31")
SHAPES = MODEL["shapes"]
INVOKE_INPUT = SHAPES[MODEL["operations"]["Invoke"]["input"]["shape"]]["members"]
NAME_SHAPE = SHAPES[INVOKE_INPUT["FunctionName"]["shape"]]
QUALIFIER_SHAPE = SHAPES[INVOKE_INPUT["Qualifier"]["shape"]]


def test_patterns_and_lengths_are_the_models() -> None:
    model = (NAME_SHAPE["pattern"], NAME_SHAPE["max"], QUALIFIER_SHAPE["pattern"], QUALIFIER_SHAPE["max"])
    ours = (
        invoke_api.FUNCTION_NAME_PATTERN,
        invoke_api.FUNCTION_NAME_MAX,
        invoke_api.QUALIFIER_PATTERN,
        invoke_api.QUALIFIER_MAX,
    )
    assert ours == model


NAME_ALPHABET = st.sampled_from([*"arnwslmbdfuctio-_.:$LATEST0123456789ez ä/", "us-east-1:", "123456789012:"])


@given(st.lists(NAME_ALPHABET, max_size=12).map("".join))
def test_the_named_pattern_accepts_exactly_what_the_models_accepts(name: str) -> None:
    model = re.fullmatch(NAME_SHAPE["pattern"], name, re.ASCII) is not None
    assert (invoke_api._FUNCTION_NAME.fullmatch(name) is not None) == model


PATTERN = NAME_SHAPE["pattern"]


@pytest.mark.parametrize(
    ("name", "qualifier", "message"),
    [
        (
            "my function",
            None,
            "1 validation error detected: Value 'my function' at 'functionName' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {PATTERN}",
        ),
        (
            "f" * 65,
            None,
            f"1 validation error detected: Value '{'f' * 65}' at 'functionName' failed to satisfy "
            "constraint: Member must have length less than or equal to 64",
        ),
        (
            "arn:aws:lambda:us-east-1:123456789012:function:" + "f" * 210,
            None,
            "1 validation error detected: Value 'arn:aws:lambda:us-east-1:123456789012:function:"
            + "f" * 210
            + "' at 'functionName' failed to satisfy constraint: Member must have length less than or equal "
            "to 256",
        ),
        (
            "",
            None,
            "1 validation error detected: Value '' at 'functionName' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1",
        ),
        (
            "my/function",
            None,
            "1 validation error detected: Value 'my/function' at 'functionName' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {PATTERN}",
        ),
        (
            "fine",
            "bad!",
            "1 validation error detected: Value 'bad!' at 'qualifier' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {QUALIFIER_SHAPE['pattern']}",
        ),
        (
            "fine",
            "",
            "1 validation error detected: Value '' at 'qualifier' failed to satisfy constraint: "
            "Member must have length greater than or equal to 1",
        ),
        (
            "bad name",
            "q" * 129,
            "2 validation errors detected: Value 'bad name' at 'functionName' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {PATTERN}; Value '{'q' * 129}' at 'qualifier' "
            "failed to satisfy constraint: Member must have length less than or equal to 128",
        ),
    ],
)
def test_names_and_qualifiers_outside_the_model_are_a_validation_exception(
    name: str, qualifier: str | None, message: str
) -> None:
    with pytest.raises(ServiceError) as caught:
        invoke_api._resolve(state(), name, qualifier)
    assert (caught.value.status, caught.value.code, caught.value.message) == (400, errors.VALIDATION, message)


OURS = "arn:aws:lambda:eu-west-1:111122223333:function:"
HELLO = cast(Function, SimpleNamespace(arn=OURS + "hello"))


def state() -> ServerState:
    config = SimpleNamespace(region="eu-west-1", account_id="111122223333")
    return cast(ServerState, SimpleNamespace(config=config, functions={"hello": HELLO}))


@pytest.mark.parametrize(
    "name",
    ["hello", "hello:$LATEST", OURS + "hello", OURS + "hello:$LATEST", "111122223333:function:hello"],
)
def test_our_names_and_arns_resolve(name: str) -> None:
    # $LATEST runs, invoked by the ARN as given: unqualified, or qualified with $LATEST
    invoked = OURS + ("hello:$LATEST" if name.endswith(":$LATEST") else "hello")
    assert invoke_api._resolve(state(), name, None) == (HELLO, "$LATEST", invoked)


@pytest.mark.parametrize(
    ("name", "arn"),
    [
        ("arn:aws:lambda:us-east-1:111122223333:function:hello", "arn:aws:lambda:us-east-1:111122223333:"),
        ("arn:aws:lambda:eu-west-1:999999999999:function:hello", "arn:aws:lambda:eu-west-1:999999999999:"),
        ("999999999999:function:hello", "arn:aws:lambda:eu-west-1:999999999999:"),
        ("arn:aws-cn:lambda:eu-west-1:111122223333:function:hello", "arn:aws:lambda:eu-west-1:111122223333:"),
    ],
)
def test_an_arn_of_another_region_or_account_is_not_found(name: str, arn: str) -> None:
    with pytest.raises(ServiceError) as caught:
        invoke_api._resolve(state(), name, None)
    assert (caught.value.status, caught.value.code) == (404, errors.RESOURCE_NOT_FOUND)
    assert caught.value.message == f"Function not found: {arn}function:hello"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"\xff\xfe", "Invalid UTF-8: invalid start byte 0xff at byte offset 0"),
        (b'{"k": "caf\xc3"}', "Invalid UTF-8: invalid continuation byte 0xc3 at byte offset 10"),
        (b'{"k": "\xed\xa0\x80"}', "Invalid UTF-8: invalid continuation byte 0xed at byte offset 7"),
        (b'{"k": 1,}', None),  # valid UTF-8: orjson's own words, which name line and column
    ],
)
def test_a_payload_that_is_not_json_says_what_is_wrong(body: bytes, problem: str | None) -> None:
    with pytest.raises(ServiceError) as caught:
        invoke_api._validated_payload(body)
    assert (caught.value.status, caught.value.code) == (400, errors.INVALID_REQUEST_CONTENT)
    prefix = "Could not parse request body into json: Could not parse payload into json: "
    assert caught.value.message.startswith(prefix)
    if problem is not None:
        assert caught.value.message == prefix + problem
    else:
        with pytest.raises(orjson.JSONDecodeError) as orjson_says:
            orjson.loads(body)
        assert caught.value.message == prefix + str(orjson_says.value)


def large(records: int, tail: bytes = b"", head: bytes = b"") -> bytes:
    """A payload past LARGE_PAYLOAD_BYTES, of many small records; `tail` goes before its last brace."""
    body = orjson.dumps({"items": [{"id": i, "tags": ["a", "b"]} for i in range(records)]})
    assert len(body) >= invoke_api.LARGE_PAYLOAD_BYTES
    return head + (body[:-1] + tail + b"}" if tail else body)


def refusal(body: bytes) -> str:
    with pytest.raises(ServiceError) as caught:
        invoke_api._validated_payload(body)
    assert (caught.value.status, caught.value.code) == (400, errors.INVALID_REQUEST_CONTENT)
    return caught.value.message


@pytest.mark.parametrize(
    ("what", "body", "valid"),
    [
        ("records", large(20_000), True),
        (
            "an integer beyond 64 bits, which only orjson holds",
            large(20_000, tail=b',"n":123456789012345678901234567890'),
            True,
        ),
        ("a trailing comma", large(20_000, tail=b",}"), False),
        ("a byte order mark, which only simdjson accepts", large(20_000, head=b"\xef\xbb\xbf"), False),
        ("bytes that are not UTF-8", large(20_000, tail=b',"k":"\xff"'), False),
    ],
)
def test_a_large_payload_gets_the_same_verdict_and_words_as_a_small_one(
    what: str, body: bytes, valid: bool
) -> None:
    """Past LARGE_PAYLOAD_BYTES, simdjson checks a payload and orjson decides what it refuses: the verdict
    and the message are those orjson gives, and the collector runs again afterwards."""
    if valid:
        assert invoke_api._validated_payload(body) == body, what  # passed through as sent
    else:
        with pytest.raises(orjson.JSONDecodeError) as orjson_says:
            orjson.loads(body)
        prefix = "Could not parse request body into json: Could not parse payload into json: "
        message = refusal(body)
        assert message.startswith(prefix), what
        if b"\xff" not in body:  # else our own words, naming the byte (_json_problem)
            assert message == prefix + str(orjson_says.value), what
    assert gc.isenabled()


def test_orjson_runs_with_the_collector_paused_and_leaves_a_paused_one_paused() -> None:
    body = large(20_000, tail=b',"n":123456789012345678901234567890')  # simdjson refuses: orjson decides
    seen: list[bool] = []
    real_loads = orjson.loads

    def watched(data: bytes) -> object:
        seen.append(gc.isenabled())
        return real_loads(data)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(invoke_api.orjson, "loads", watched)
        invoke_api._validated_payload(body)
        assert seen == [False] and gc.isenabled()
        gc.disable()
        try:
            invoke_api._validated_payload(body)
            assert not gc.isenabled()
        finally:
            gc.enable()


_ALPHABET = b' \t\r\n\x0b{}[]:,"\\0123456789-+.eEtrufalsn\xff\xc3\xa9\xed\xa0\x80uU'
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats() | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    value=_JSON,
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(_ALPHABET), st.booleans()), max_size=3),
)
def test_simdjson_accepts_nothing_orjson_refuses(value: object, edits: list[tuple[int, int, bool]]) -> None:
    """The large-payload path (simdjson first, orjson for what it refuses) and orjson alone agree on every
    document and every mutation of one: the path's verdict is orjson's. (Checked once over 200,000 mutated
    documents; this runs a sample each time.)"""
    data = bytearray(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    for position, byte, insert in edits:
        at = position % (len(data) + 1)
        if insert or at == len(data):
            data[at:at] = bytes([byte])
        else:
            data[at] = byte
    body = bytes(data)
    try:
        orjson.loads(body)
        orjson_accepts = True
    except orjson.JSONDecodeError:
        orjson_accepts = False
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(invoke_api, "LARGE_PAYLOAD_BYTES", 0)
        try:
            invoke_api._validated_payload(body)
            accepted = True
        except ServiceError:
            accepted = False
    assert accepted == (orjson_accepts or not body.strip()), body


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/2015-03-31/functions/my/function/invocations", "my/function"),
        ("/2015-03-31/functions//invocations", ""),
        (
            "/2015-03-31/functions/arn:aws:lambda:us-east-1:123456789012:function:f/invocations/",
            "arn:aws:lambda:us-east-1:123456789012:function:f",
        ),
    ],
)
def test_the_route_takes_any_name_for_its_validation_to_judge(path: str, name: str) -> None:
    match = invoke_api._INVOKE.match(path)
    assert match is not None and match["name"] == name
