"""The Extensions API state and the Telemetry API's subscriptions, without a runtime: requests are
validated as the service validates them, and a subscriber that does not keep up costs bounded memory."""

from __future__ import annotations

import asyncio
import json

import orjson
import pytest

from rapidboot.rapid_server import errors
from rapidboot.rapid_server.extensions.agents import MAX_EXTENSIONS, Agent, Agents
from rapidboot.rapid_server.extensions.telemetry import (
    PortClaims,
    Subscription,
    SubscriptionError,
    parse_request,
)
from rapidboot.rapid_server.http import Response


def subscribe_body(**changes: object) -> bytes:
    body: dict[str, object] = {
        "schemaVersion": "2022-07-01",
        "types": ["platform", "function"],
        "destination": {"protocol": "HTTP", "URI": "http://sandbox.localdomain:4243/telemetry"},
    }
    body.update(changes)
    return json.dumps(body).encode()


def test_a_subscription_takes_the_service_s_defaults_and_resolves_the_sandbox_name() -> None:
    request = parse_request(subscribe_body())
    assert (request.max_items, request.max_bytes, request.timeout_ms) == (10000, 262144, 1000)
    assert request.destination.host == "127.0.0.1"
    assert request.destination.port == 4243 and request.destination.path == "/telemetry"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"destination": {"protocol": "TCP", "port": 4243}}, "TCP is not supported"),
        ({"types": ["platform", "metrics"]}, "types"),
        ({"types": []}, "types"),
        ({"schemaVersion": "2020-01-01"}, "schemaVersion"),
        ({"buffering": {"maxItems": 999}}, "buffering.maxItems"),
        ({"buffering": {"maxBytes": 2_000_000}}, "buffering.maxBytes"),
        ({"buffering": {"timeoutMs": 24}}, "buffering.timeoutMs"),
        ({"buffering": {"timeoutMs": True}}, "buffering.timeoutMs"),
        ({"destination": {"protocol": "HTTP", "URI": "http://example.com:80/"}}, "sandbox.localdomain"),
        ({"destination": {"protocol": "HTTP"}}, "URI"),
    ],
)
def test_a_bad_subscription_is_refused_naming_the_problem(changes: dict[str, object], named: str) -> None:
    with pytest.raises(SubscriptionError, match=named.replace(".", r"\.")):
        parse_request(subscribe_body(**changes))


def test_a_body_that_is_not_json_is_refused() -> None:
    with pytest.raises(SubscriptionError, match="not JSON"):
        parse_request(b"{")


def test_the_logs_api_takes_its_own_schema_versions() -> None:
    assert parse_request(subscribe_body(schemaVersion="2021-03-18"), logs_api=True).max_items == 10000
    with pytest.raises(SubscriptionError):
        parse_request(subscribe_body(schemaVersion="2021-03-18"))


def test_a_port_is_claimed_by_one_environment_at_a_time() -> None:
    ports = PortClaims()
    assert ports.claim(4243, "a") is None
    assert ports.claim(4243, "a") is None  # its own again
    assert ports.claim(4243, "b") == "a"
    assert ports.held_by_others("b") == [4243]
    ports.release("a")
    assert ports.claim(4243, "b") is None


# --- Registration ---------------------------------------------------------------------------------------


def refusal(result: Agent | Response) -> tuple[int, str]:
    assert isinstance(result, Response)
    return result.status, orjson.loads(result.body)["errorType"]


def test_registration_is_validated_and_a_refusal_registers_nothing() -> None:
    agents = Agents(frozenset({"probe"}))
    assert refusal(agents.register(None, b"{}")) == (403, errors.EXTENSION_INVALID_NAME)
    assert refusal(agents.register("probe", b'{"events": ["START"]}')) == (
        403,
        errors.EXTENSION_INVALID_EVENT_TYPE,
    )
    # An internal extension (no executable of its name) cannot take SHUTDOWN.
    assert refusal(agents.register("agent", b'{"events": ["SHUTDOWN"]}')) == (
        403,
        errors.EXTENSION_INVALID_EVENT_TYPE,
    )
    assert agents.agents == []
    probe = agents.register("probe", b'{"events": ["INVOKE", "SHUTDOWN"]}')
    assert isinstance(probe, Agent) and probe.external
    assert refusal(agents.register("probe", b"{}")) == (403, errors.EXTENSION_INVALID_NAME)
    agents.registration_open = False
    assert refusal(agents.register("late", b"{}")) == (403, errors.EXTENSION_REGISTRATION_CLOSED)


def test_at_most_ten_extensions_register() -> None:
    agents = Agents(frozenset())
    for index in range(MAX_EXTENSIONS):
        assert isinstance(agents.register(f"agent-{index}", b'{"events": ["INVOKE"]}'), Agent)
    assert refusal(agents.register("one-more", b"{}")) == (403, errors.EXTENSION_TOO_MANY)


def test_unknown_or_missing_identifiers_are_refused() -> None:
    agents = Agents(frozenset())
    assert refusal(agents.find(None)) == (403, errors.EXTENSION_MISSING_ID)
    assert refusal(agents.find("nope")) == (403, errors.EXTENSION_INVALID_ID)


def test_a_registered_extension_is_waited_for_until_it_asks_for_an_event() -> None:
    agents = Agents(frozenset())
    agent = agents.register("agent", b'{"events": ["INVOKE"]}')
    assert isinstance(agent, Agent)
    assert agents.waited_for == [agent]
    assert agents.send("SHUTDOWN", b"{}") == 0  # not subscribed to it


# --- Delivery -------------------------------------------------------------------------------------------


def test_a_stuck_subscriber_costs_one_buffer_and_then_hears_what_it_lost() -> None:
    """The subscriber holds its first POST; what comes meanwhile fills one buffer, the rest is counted and
    announced by platform.logsDropped at the head of the next batch."""
    asyncio.run(_stuck_subscriber())


async def _stuck_subscriber() -> None:
    bodies: list[bytes] = []
    release = asyncio.Event()
    received = asyncio.Event()

    async def subscriber(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:  # the subscription closed its connection
                return
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            bodies.append(await reader.readexactly(length))
            received.set()
            await release.wait()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    server = await asyncio.start_server(subscriber, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    request = parse_request(
        subscribe_body(
            buffering={"maxItems": 1000, "timeoutMs": 25},
            destination={"protocol": "HTTP", "URI": f"http://sandbox.localdomain:{port}/"},
        )
    )
    subscription = Subscription("probe", request, lambda exc: None, logs_api=False)
    event = orjson.dumps({"time": "t", "type": "function", "record": "x"})
    for _ in range(1000):
        subscription.offer(event)  # full: the first batch leaves at once
    await asyncio.wait_for(received.wait(), 10)
    for _ in range(5000):
        subscription.offer(event)
    assert len(subscription._buffer) == 1000  # one batch waits; the rest was dropped
    release.set()
    await asyncio.wait_for(subscription.drain(10), 20)
    subscription.flush()
    await asyncio.wait_for(subscription.drain(10), 20)
    batches = [orjson.loads(body) for body in bodies]
    # The batch after the loss leads with platform.logsDropped, then the buffer that waited.
    assert [len(batch) for batch in batches] == [1000, 1 + 1000]
    dropped = batches[1][0]
    assert dropped["type"] == "platform.logsDropped"
    assert dropped["record"]["droppedRecords"] == 4000
    subscription.close()
    server.close()


def test_the_pre_rendered_invoke_event_is_the_service_s_json_whatever_the_ids_hold() -> None:
    from rapidboot.rapid_server.extensions import events

    arn = "arn:aws:lambda:us-east-1:123456789012:function:odd%name:$LATEST"
    trace = 'Root=1-abc;Parent="quoted"%d'
    body = events.invoke_head(arn) % (1700000000123, events.json_string("id-1"), events.json_string(trace))
    assert orjson.loads(body) == {
        "eventType": "INVOKE",
        "deadlineMs": 1700000000123,
        "requestId": "id-1",
        "invokedFunctionArn": arn,
        "tracing": {"type": "X-Amzn-Trace-Id", "value": trace},
    }


def test_no_telemetry_event_is_built_for_an_invoke_when_nothing_is_subscribed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rapidboot.rapid_server.extensions import events, host

    def built(*args: object, **kwargs: object) -> None:
        raise AssertionError("a telemetry event was built with no subscriber")

    for name in ("start", "runtime_done", "report"):
        monkeypatch.setattr(events, name, built)

    async def run() -> None:
        extensions = host.ExtensionsHost(
            "f",
            "$LATEST",
            "on-demand",
            [],
            None,
            print,
            lambda *_: None,
            False,
            owner="o",  # type: ignore[arg-type]
        )
        extensions.invoke_started("id-1", 1, "arn:aws:lambda:us-east-1:1:function:f", "Root=1")
        extensions.runtime_done("id-1", "success", None, 1.0, 2)
        extensions.report("id-1", "success", None, 1.0, 128, 20, None)

    asyncio.run(run())
