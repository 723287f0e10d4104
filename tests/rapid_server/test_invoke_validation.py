"""The Invoke API's checks of a function name, a qualifier and a payload, against the service's own words
(botocore's model for the patterns and lengths; reference section 2)."""

from __future__ import annotations

import gc
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


def large(records: int, tail: bytes = b"") -> bytes:
    """A payload past GC_PAUSE_BYTES, of many small records (the case the pause is for)."""
    body = orjson.dumps({"items": [{"id": i, "tags": ["a", "b"]} for i in range(records)]})
    assert len(body) >= invoke_api.GC_PAUSE_BYTES
    return body[:-1] + tail + b"}" if tail else body


def test_a_large_payload_is_checked_with_the_collector_paused_and_it_is_running_again_after() -> None:
    valid = large(20_000)
    assert invoke_api._validated_payload(valid) == valid  # passed through as sent
    assert gc.isenabled()
    with pytest.raises(ServiceError) as caught:
        invoke_api._validated_payload(large(20_000, tail=b",}"))  # a trailing comma at the end
    assert caught.value.code == errors.INVALID_REQUEST_CONTENT
    with pytest.raises(orjson.JSONDecodeError) as orjson_says:
        orjson.loads(large(20_000, tail=b",}"))
    assert caught.value.message.endswith(str(orjson_says.value))  # the same words as a small payload's
    assert gc.isenabled(), "running again after a refusal too"

    gc.disable()  # a collector someone else paused is left paused
    try:
        invoke_api._validated_payload(valid)
        assert not gc.isenabled()
    finally:
        gc.enable()


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
