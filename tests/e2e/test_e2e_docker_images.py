"""examples/container/, built for real: each Dockerfile goes through `docker build`, and each image is run
and invoked over HTTP twice, through the port `docker run -p` publishes:
  - as the README says, with no Runtime API around it: our bootstrap's emulator mode serves the function;
  - as AWS's base image runs a function outside Lambda: AWS's emulator (`aws-lambda-rie`, found through
    `RIE_BIN`, mounted where AWS's image keeps it) runs the image's ENTRYPOINT and CMD, which is what
    AWS's /lambda-entrypoint.sh does when AWS_LAMBDA_RUNTIME_API is unset.

Needs a Docker daemon (`docker` on PATH; DOCKER_HOST, or the default socket), else every test here skips.
The base image is the Dockerfile's own (`python:3.12-slim`, ...) unless RAPIDBOOT_DOCKER_BASE names a local
image to stand in for all three through the Dockerfiles' BASE_IMAGE build argument: .ci/run builds one from
Debian's packages (.ci/docker-base.sh), as no registry is reachable from its machine. The built images keep
their tags (rapidboot-test/*): the layer cache that makes the next build take seconds lives in them.

Where AWS's emulator answers differently from emulator mode, an `if emulated:` line says what it does (the
peers reference lists these faults: ../shared/reference/peers.md in this project's workspace).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_harness import HTTP_TIMEOUT_S, READY_TIMEOUT_S, LineCollector, wait_until

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted((REPO / "examples" / "container").glob("Dockerfile.*"))
BASE_VARIABLE = "RAPIDBOOT_DOCKER_BASE"
HOW_TO_GET_DOCKER = (
    "no Docker daemon reachable: start one (`dockerd &`, as .ci/run does) or set DOCKER_HOST, and set "
    f"{BASE_VARIABLE} to a local base image where no registry can be reached"
)
RIE_SERVER = "aws-lambda-rie"  # conftest skips this turn when RIE_BIN is missing
SERVERS = ("emulator mode", RIE_SERVER)
RIE_IN_IMAGE = "/usr/local/bin/aws-lambda-rie"  # where AWS's base images keep it
INVOKE_PATH = "/2015-03-31/functions/function/invocations"
BUILD_TIMEOUT_S = 900.0  # a first build downloads the server's dependencies from PyPI
DOCKER_TIMEOUT_S = 60.0
REPORT = re.compile(r"^REPORT RequestId: (\S+)\t")
GREETING = "Hello, {}, from a layer merged into /opt!"


@dataclass(frozen=True)
class Docker:
    binary: str
    env: dict[str, str]

    def run(self, *args: str, timeout: float = DOCKER_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [self.binary, *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )


@pytest.fixture(scope="module")
def docker() -> Docker:
    binary = shutil.which("docker")
    if binary is None:
        pytest.skip(f"no `docker` on PATH; {HOW_TO_GET_DOCKER}")
    env = dict(os.environ)
    client = Docker(binary, env)
    try:
        server = client.run("version", "--format", "{{.Server.Version}}", timeout=20)
    except subprocess.TimeoutExpired:
        pytest.skip(HOW_TO_GET_DOCKER)
    if server.returncode != 0:
        pytest.skip(HOW_TO_GET_DOCKER)
    # A client without the buildx plugin (Debian's docker.io) cannot use BuildKit: the classic builder
    # builds these Dockerfiles the same way.
    if "DOCKER_BUILDKIT" not in env and client.run("buildx", "version").returncode != 0:
        env["DOCKER_BUILDKIT"] = "0"
    return client


@pytest.fixture(scope="module", params=DOCKERFILES, ids=lambda path: path.name)
def image(request: pytest.FixtureRequest, docker: Docker) -> str:
    """The Dockerfile's image, built from the repository root as its header says."""
    dockerfile: Path = request.param
    tag = f"rapidboot-test/{dockerfile.suffix.lstrip('.')}"
    base = os.environ.get(BASE_VARIABLE)
    arguments = ["--build-arg", f"BASE_IMAGE={base}"] if base else []
    built = docker.run(
        "build",
        "--quiet",
        "--force-rm",
        "-f",
        str(dockerfile),
        "-t",
        tag,
        *arguments,
        str(REPO),
        timeout=BUILD_TIMEOUT_S,
    )
    hint = "" if base else f" (with no registry reachable, set {BASE_VARIABLE}: see .ci/docker-base.sh)"
    assert built.returncode == 0, f"docker build -f {dockerfile.name} failed{hint}:\n{built.stderr[-3000:]}"
    return tag


@dataclass
class Container:
    name: str
    url: str
    stdout: LineCollector
    stderr: LineCollector

    def lines(self) -> list[str]:
        return self.stdout.lines + self.stderr.lines

    def invoke(self, event: Any) -> httpx.Response:
        return httpx.post(self.url + INVOKE_PATH, content=json.dumps(event).encode(), timeout=HTTP_TIMEOUT_S)

    def answers_http(self) -> bool:
        """Whether a server in the container answers. A published port accepts connections before it
        does (docker-proxy takes them, then drops them), so a connection alone proves nothing."""
        try:
            httpx.get(self.url + "/", timeout=5)
        except httpx.TransportError:
            return False
        return True


@contextlib.contextmanager
def container(docker: Docker, *run_args: str) -> Iterator[Container]:
    """`docker run -d -p 127.0.0.1::8080 RUN_ARGS`, its output followed with `docker logs -f`; removed on
    exit, whatever happened."""
    name = f"rapidboot-test-{uuid.uuid4().hex[:12]}"
    started = docker.run("run", "-d", "--name", name, "-p", "127.0.0.1::8080", *run_args)
    logs = None
    try:
        assert started.returncode == 0, started.stderr
        port = docker.run("port", name, "8080/tcp")
        assert port.returncode == 0, port.stderr
        host_port = port.stdout.splitlines()[0].rpartition(":")[2]
        logs = subprocess.Popen(
            [docker.binary, "logs", "-f", name],
            env=docker.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        yield Container(
            name,
            f"http://127.0.0.1:{host_port}",
            LineCollector(logs.stdout, f"{name}-stdout"),
            LineCollector(logs.stderr, f"{name}-stderr"),
        )
    finally:
        docker.run("rm", "-f", name)
        if logs is not None:
            logs.wait(timeout=DOCKER_TIMEOUT_S)  # `docker logs -f` ends with its container


@contextlib.contextmanager
def serving(docker: Docker, image: str, server: str, rie_bin: Path | None) -> Iterator[Container]:
    """The image running its function under `server`, ready for an invoke."""
    if server == RIE_SERVER:
        assert rie_bin is not None
        config = json.loads(docker.run("image", "inspect", "--format", "{{json .Config}}", image).stdout)
        # AWS's /lambda-entrypoint.sh outside Lambda: `exec aws-lambda-rie <bootstrap> "$@"`.
        run_args = ["-v", f"{rie_bin}:{RIE_IN_IMAGE}:ro", "--entrypoint", RIE_IN_IMAGE, image]
        with container(docker, *run_args, *config["Entrypoint"], *config["Cmd"]) as running:
            # The emulator prints no readiness line: ready when it answers.
            assert wait_until(running.answers_http, READY_TIMEOUT_S), "\n".join(running.lines())
            yield running
    else:
        with container(docker, image) as running:
            ready = running.stderr.wait_for(lambda line: "listening on http://" in line, READY_TIMEOUT_S)
            assert ready is not None, "\n".join(running.lines())
            assert "0.0.0.0:8080" in ready  # all interfaces, or `docker run -p` could not reach it
            yield running


@pytest.fixture
def rie_or_none(request: pytest.FixtureRequest, server: str) -> Path | None:
    return request.getfixturevalue("rie_bin") if server == RIE_SERVER else None


@pytest.mark.parametrize("server", SERVERS)
def test_the_built_image_serves_its_function(
    docker: Docker, image: str, server: str, rie_or_none: Path | None
) -> None:
    emulated = server == RIE_SERVER
    with serving(docker, image, server, rie_or_none) as running:
        cold = running.invoke({"name": "Ada"})
        warm = running.invoke(["not", "a", "dict"])
        assert wait_until(lambda: len([line for line in running.lines() if REPORT.match(line)]) == 2, 10)
        output = running.lines()
    log = "\n".join(output)
    for response in (cold, warm):
        assert response.status_code == 200, log
        assert "X-Amz-Function-Error" not in response.headers, response.text
        if emulated:  # peers.md: the emulator sends no request id and loses the runtime's content type
            assert "x-amzn-RequestId" not in response.headers
            assert response.headers["content-type"] == "text/plain; charset=utf-8"
        else:
            assert response.headers["x-amzn-RequestId"] == response.json()["request_id"]
            assert response.headers["content-type"] == "application/json"
    # The handler in /var/task, its greeting from the layer the image merged into /opt.
    assert cold.json()["message"] == GREETING.format("Ada")
    assert warm.json()["message"] == GREETING.format("world")
    # One REPORT per invoke, with the request id the function saw; one init, then the warm runtime reused.
    reports = [(match.group(1), line) for line in output if (match := REPORT.match(line))]
    ids = [response.json()["request_id"] for response in (cold, warm)]
    assert [request_id for request_id, _ in reports] == ids
    assert ids[0] != ids[1]
    assert "Init Duration" in reports[0][1] and "Init Duration" not in reports[1][1], log
