"""Lambda's metrics at GET /metrics, `rapidboot top`, and the web console at /_rapidboot/ (issue 19), against
a real server: the figures after known invokes, errors, throttles and Event invokes, read with
prometheus-client's own parser of the text format; the console's JSON and its server-sent events; the page
itself in headless Chromium (skipped where no Chromium is installed).

Each test owns its functions on the module's server, so the counts it checks are its own.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cdp import Browser, find_chromium
from e2e_harness import RapidServer, request_id_of, running_server, write_tables
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.e2e

TIMEOUT_S = 15.0  # bounds, not expectations


def basic(handler: str, **keys: Any) -> dict[str, Any]:
    code = Path(__file__).parent / "functions" / "basic"
    return {"code": str(code), "handler": f"handlers.{handler}", "timeout": 10, **keys}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RapidServer]:
    workdir = tmp_path_factory.mktemp("observability")
    (workdir / "out").mkdir()  # removed by the test: then no record can be written there
    config = write_tables(
        workdir / "rapidboot.toml",
        {
            "m-echo": basic("echo"),
            "m-fail": basic("fail"),
            "m-closed": basic("echo", reserved_concurrency=0),
            # An Event invoke that fails, is not retried, and whose record cannot be written.
            "m-doomed": basic("fail", maximum_retry_attempts=0, on_failure="file:out/failures.jsonl"),
            "t-echo": basic("echo"),
            "t-fail": basic("fail"),
            "c-shout": basic("shout"),
            "b-shout": basic("shout"),
        },
    )
    with running_server(["--config", str(config)], workdir) as running:
        yield running


def scrape(server: RapidServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics, by name and labels, as prometheus-client's parser reads it."""
    response = httpx.get(f"{server.endpoint}/metrics", timeout=TIMEOUT_S)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


def event_invoke(server: RapidServer, name: str, payload: Any) -> str:
    response = server.invoke(name, payload, headers={"X-Amz-Invocation-Type": "Event"})
    assert response.status_code == 202, response.text
    return request_id_of(response)


def test_metrics_count_invokes_errors_throttles_and_event_invokes(server: RapidServer) -> None:
    for n in range(3):
        assert server.invoke("m-echo", {"n": n}).status_code == 200
    for n in range(2):
        assert server.invoke("m-fail", {"n": n}).headers["x-amz-function-error"] == "Unhandled"
    for _ in range(2):
        assert server.invoke("m-closed", {}).status_code == 429
    (server.cwd / "out").rmdir()  # m-doomed's destination folder: gone
    echoed = event_invoke(server, "m-echo", {"event": True})
    doomed = event_invoke(server, "m-doomed", {})
    server.report(echoed)
    server.wait_for_line(lambda line: f"event {doomed}: cannot deliver the record" in line, TIMEOUT_S)

    samples = scrape(server)
    assert value(samples, "lambda_invocations_total", function="m-echo") == 4
    assert value(samples, "lambda_invocations_total", function="m-fail") == 2
    assert value(samples, "lambda_invocations_total", function="m-closed") == 0  # throttles are not runs
    assert value(samples, "lambda_errors_total", function="m-echo") == 0
    assert value(samples, "lambda_errors_total", function="m-fail") == 2
    assert value(samples, "lambda_errors_total", function="m-doomed") == 1
    assert value(samples, "lambda_throttles_total", function="m-closed") == 2
    assert value(samples, "lambda_throttles_total", function="m-echo") == 0
    assert value(samples, "lambda_duration_seconds_count", function="m-echo") == 4
    assert value(samples, "lambda_duration_seconds_bucket", function="m-echo", le="+Inf") == 4
    assert 0 < value(samples, "lambda_duration_seconds_sum", function="m-echo") < 40  # 4 invokes of 10 s max
    assert value(samples, "lambda_async_events_received_total", function="m-echo") == 1
    assert value(samples, "lambda_async_events_received_total", function="m-doomed") == 1
    assert value(samples, "lambda_async_event_age_seconds_count", function="m-doomed") == 1
    assert value(samples, "lambda_async_events_dropped_total", function="m-doomed") == 1
    assert value(samples, "lambda_async_events_dropped_total", function="m-echo") == 0
    assert value(samples, "lambda_destination_delivery_failures_total", function="m-doomed") == 1
    assert value(samples, "lambda_dead_letter_errors_total", function="m-doomed") == 0
    assert value(samples, "lambda_concurrent_executions", function="m-echo") == 0
    assert value(samples, "rapidboot_environments", function="m-echo", state="idle") >= 1
    assert value(samples, "rapidboot_environments", function="m-closed", state="idle") == 0


def test_top_once_prints_one_line_per_function(server: RapidServer) -> None:
    for _ in range(2):
        assert server.invoke("t-echo", {}).status_code == 200
    assert server.invoke("t-fail", {}).status_code == 200
    top = subprocess.run(
        [
            sys.executable,
            "-m",
            "rapidboot.rapid_server",
            "top",
            "--once",
            "--interval",
            "0.1",
            "--endpoint",
            server.endpoint,
        ],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert top.returncode == 0, top.stderr
    lines = {line.split()[0]: line.split() for line in top.stdout.splitlines()[2:] if line.strip()}
    header = lines.pop("FUNCTION")[1:]
    assert header == ["INVOKES/S", "INVOKES", "ERRORS", "THROTTLES", "P50", "P99", "CONC", "WARM", "BUSY"]
    echo = dict(zip(header, _cells(lines["t-echo"]), strict=True))
    fail = dict(zip(header, _cells(lines["t-fail"]), strict=True))
    assert (echo["INVOKES"], echo["ERRORS"], echo["THROTTLES"], echo["WARM"]) == ("2", "0", "0", "1")
    assert (fail["INVOKES"], fail["ERRORS"]) == ("1", "1")
    assert echo["INVOKES/S"] == "0.0"  # none ran during top's interval
    assert echo["P50"].endswith("ms*")  # so Duration's quantiles are those since the server started


def _cells(words: list[str]) -> list[str]:
    """A row's cells after the name: a duration is two words (`0.42 ms*`)."""
    cells, rest = [], words[1:]
    while rest:
        word = rest.pop(0)
        if rest and rest[0].startswith("ms"):
            word += " " + rest.pop(0)
        cells.append(word.replace(" ", ""))
    return cells


def test_top_says_when_it_cannot_reach_the_server(tmp_path: Path) -> None:
    top = subprocess.run(
        [sys.executable, "-m", "rapidboot.rapid_server", "top", "--once", "--endpoint", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert top.returncode == 1
    assert "rapidboot top: cannot read http://127.0.0.1:9/metrics" in top.stderr


def test_console_state_has_the_invoke_with_its_report_and_log_tail(server: RapidServer) -> None:
    response = server.invoke("c-shout", {"word": "hello"})
    request_id = request_id_of(response)
    report = server.report(request_id)
    state = httpx.get(f"{server.endpoint}/_rapidboot/api/state", timeout=TIMEOUT_S).json()
    (record,) = [r for r in state["invocations"] if r["requestId"] == request_id]
    assert record["function"] == "c-shout"
    assert record["durationMs"] == pytest.approx(report.duration_ms, abs=0.01)
    assert record["billedDurationMs"] == report.billed_ms
    assert record["maxMemoryUsedMb"] == report.max_memory_used_mb
    assert record["initDurationMs"] is not None  # its environment's first invoke
    assert record["logTail"] == "handler says hello\n"
    assert (record["error"], record["status"]) == (False, None)
    (function,) = [f for f in state["functions"] if f["name"] == "c-shout"]
    (environment,) = function["environments"]
    assert environment["state"] == "idle"
    assert environment["pid"] == record["pid"]
    assert environment["memorySizeMb"] == 128
    # Only what is newer than `since`
    later = httpx.get(f"{server.endpoint}/_rapidboot/api/state?since={record['sequence']}").json()
    assert request_id not in [r["requestId"] for r in later["invocations"]]


def test_console_feed_sends_new_invokes_as_server_sent_events(server: RapidServer) -> None:
    since = httpx.get(f"{server.endpoint}/_rapidboot/api/state").json()["sequence"]
    with httpx.stream(
        "GET", f"{server.endpoint}/_rapidboot/api/events?since={since}", timeout=TIMEOUT_S
    ) as feed:
        assert feed.status_code == 200
        assert feed.headers["content-type"] == "text/event-stream"
        request_id = request_id_of(server.invoke("c-shout", {"word": "live"}))
        for update in _updates(feed):
            invoked = [r for r in update["invocations"] if r["requestId"] == request_id]
            if invoked:
                assert invoked[0]["logTail"] == "handler says live\n"
                assert all(r["sequence"] > since for r in update["invocations"])
                break


def _updates(feed: httpx.Response) -> Iterator[dict[str, Any]]:
    event = None
    for line in feed.iter_lines():
        if line.startswith("event: "):
            event = line[len("event: ") :]
        elif line.startswith("data: ") and event == "update":
            yield json.loads(line[len("data: ") :])


def test_console_files_and_refusals(server: RapidServer) -> None:
    page = httpx.get(f"{server.endpoint}/_rapidboot/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script src="console.js">' in page.text
    assert httpx.get(f"{server.endpoint}/_rapidboot/console.js").status_code == 200
    assert httpx.get(f"{server.endpoint}/_rapidboot/console.css").status_code == 200
    redirect = httpx.get(f"{server.endpoint}/_rapidboot")
    assert (redirect.status_code, redirect.headers["location"]) == (308, "/_rapidboot/")
    missing = httpx.get(f"{server.endpoint}/_rapidboot/secrets.txt")
    assert missing.status_code == 404
    assert missing.headers["x-amzn-errortype"] == "UnknownOperationException"
    refused = httpx.post(f"{server.endpoint}/_rapidboot/api/state")
    assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD")
    bad = httpx.get(f"{server.endpoint}/_rapidboot/api/state?since=last")
    assert bad.status_code == 400
    assert bad.json()["message"] == "since='last': must be a whole number (an invoke's sequence)"
    assert httpx.post(f"{server.endpoint}/metrics").status_code == 405


def test_no_console_leaves_metrics_on(tmp_path: Path) -> None:
    config = write_tables(tmp_path / "rapidboot.toml", {"echo": basic("echo")})
    with running_server(["--config", str(config), "--no-console"], tmp_path) as server:
        assert server.invoke("echo", {}).status_code == 200
        for path in ("/_rapidboot/", "/_rapidboot/api/state", "/_rapidboot/api/events"):
            response = httpx.get(f"{server.endpoint}{path}")
            assert response.status_code == 404, path
            assert response.headers["x-amzn-errortype"] == "UnknownOperationException"
        assert value(scrape(server), "lambda_invocations_total", function="echo") == 1


def test_an_open_feed_ends_with_the_server(tmp_path: Path) -> None:
    """A console left open in a browser neither holds the server up at its stop nor is cut mid-stream:
    its feed ends as a chunked body ends, and the server exits 0 (the harness checks both)."""
    config = write_tables(tmp_path / "rapidboot.toml", {"echo": basic("echo")})
    with running_server(["--config", str(config)], tmp_path) as server:
        feed = socket.create_connection((server.host, server.port), timeout=TIMEOUT_S)
        feed.sendall(b"GET /_rapidboot/api/events HTTP/1.1\r\nHost: test\r\n\r\n")
        received = b""
        while b"rapidboot console feed" not in received:
            received += feed.recv(4096)
        assert received.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b"Transfer-Encoding: chunked\r\n" in received
    # Stopped (SIGTERM) with the feed open: the rest of the stream, then the end of the connection.
    while chunk := feed.recv(4096):
        received += chunk
    feed.close()
    assert received.endswith(b"0\r\n\r\n")


CHROMIUM = find_chromium()


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt-get install chromium)")
def test_console_page_shows_a_new_invoke_live_in_headless_chromium(server: RapidServer) -> None:
    assert CHROMIUM is not None
    with Browser(CHROMIUM) as browser:
        browser.navigate(f"{server.endpoint}/_rapidboot/")
        browser.wait_for("document.querySelector('#status.live') !== null", TIMEOUT_S)  # the feed is open
        request_id = request_id_of(server.invoke("b-shout", {"word": "browser"}))
        row = f"document.querySelector('tr[data-request-id=\"{request_id}\"]')"
        browser.wait_for(f"{row} !== null", TIMEOUT_S)
        cells = browser.evaluate(f"[...{row}.cells].map((cell) => cell.textContent)")
        assert cells[1:3] == ["b-shout", request_id]
        assert cells[3].endswith(" ms") and cells[7] == "ok"
        assert browser.evaluate(f"{row}.querySelector('pre.tail').textContent") == "handler says browser\n"
        environments = browser.evaluate(
            "document.querySelector('tr[data-function=\"b-shout\"] td:last-child').textContent"
        )
        assert environments.startswith("idle")
        assert browser.evaluate("document.querySelectorAll('#chart path').length") == 1
