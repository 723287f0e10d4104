"""`rapidboot serve --template`: a real server started from a SAM template, a `cdk synth`-shaped template and
the example application, invoked through boto3. What the template says (Globals, Parameters and their
overrides, layers, memory) is what the function sees inside its environment."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import lambda_client, running_server, server_environment

pytestmark = pytest.mark.e2e

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "api"

PROBE = """\
import os

import shared  # from the template's layer


def handler(event, context):
    return {
        "env": {key: os.environ.get(key) for key in event["keys"]},
        "layer": shared.NAME,
        "memory": context.memory_limit_in_mb,
        "name": context.function_name,
    }
"""

SAM_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: dev
  Owner:
    Type: String
    Default: nobody
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Globals:
  Function:
    Runtime: python3.12
    CodeUri: src/
    MemorySize: 256
    Layers: [!Ref SharedLayer]
    Environment:
      Variables:
        STAGE: !Ref Stage
        FROM_GLOBALS: "yes"
Resources:
  SharedLayer:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer/
  Probe:
    Type: AWS::Serverless::Function
    Properties:
      Handler: probe.handler
      MemorySize: 512
      Environment:
        Variables:
          OWNER: !Sub "${Owner}@${AWS::Region}"
          MODE: !If [IsProd, strict, relaxed]
          SHARED_TABLE: !ImportValue shared-table
  Other:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: other
      Handler: probe.handler
"""


def make_project(root: Path) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "src" / "probe.py").write_text(PROBE)
    (root / "layer" / "python").mkdir(parents=True)
    (root / "layer" / "python" / "shared.py").write_text('NAME = "shared-layer"\n')
    (root / "template.yaml").write_text(SAM_TEMPLATE)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """The server's cwd: paths in a template are the template's, not the shell's."""
    path = tmp_path / "elsewhere"
    path.mkdir()
    return path


def invoke(client: Any, name: str, event: Any) -> Any:
    response = client.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    assert "FunctionError" not in response, response["Payload"].read()
    return json.loads(response["Payload"].read())


@pytest.fixture
def boto3_client() -> Iterator[Any]:
    clients: list[Any] = []

    def make(endpoint: str) -> Any:
        clients.append(lambda_client(endpoint))
        return clients[-1]

    yield make
    for client in clients:
        client.close()


KEYS = ["STAGE", "FROM_GLOBALS", "OWNER", "MODE", "SHARED_TABLE", "AWS_REGION"]


def test_sam_template_with_globals_and_parameter_overrides(
    project: Path, elsewhere: Path, boto3_client: Any
) -> None:
    args = ["--template", str(project / "template.yaml"), "--parameter-overrides", "Stage=prod Owner='Ada L'"]
    with running_server(args, cwd=elsewhere) as server:
        client = boto3_client(server.endpoint)
        probe = invoke(client, "Probe", {"keys": KEYS})
        other = invoke(client, "other", {"keys": ["STAGE", "OWNER"]})
        warnings = [line for line in server.stderr.lines if "warning:" in line]
    assert probe == {
        "env": {
            "STAGE": "prod",
            "FROM_GLOBALS": "yes",
            "OWNER": "Ada L@us-east-1",
            "MODE": "strict",
            "SHARED_TABLE": '{"Fn::ImportValue":"shared-table"}',
            "AWS_REGION": "us-east-1",
        },
        "layer": "shared-layer",
        "memory": "512",
        "name": "Probe",
    }
    assert other == {
        "env": {"STAGE": "prod", "OWNER": None},
        "layer": "shared-layer",
        "memory": "256",
        "name": "other",
    }
    assert len(warnings) == 1, warnings
    assert "resource Probe, property Environment.Variables.SHARED_TABLE" in warnings[0]


def test_template_in_the_working_directory_is_found(project: Path, boto3_client: Any) -> None:
    with running_server([], cwd=project) as server:
        probe = invoke(boto3_client(server.endpoint), "Probe", {"keys": ["STAGE", "MODE"]})
    assert probe["env"] == {"STAGE": "dev", "MODE": "relaxed"}  # the parameters' defaults


def test_cdk_synth_template(tmp_path: Path, elsewhere: Path, boto3_client: Any) -> None:
    out = tmp_path / "cdk.out"
    make_project(tmp_path / "sources")
    shutil.copytree(tmp_path / "sources" / "src", out / "asset.c0de")
    shutil.copytree(tmp_path / "sources" / "layer", out / "asset.1a7e")
    bucket = {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}
    template = {
        "Resources": {
            "SharedLayerC2B5E1A3": {
                "Type": "AWS::Lambda::LayerVersion",
                "Properties": {"Content": {"S3Bucket": bucket, "S3Key": "1a7e.zip"}},
                "Metadata": {"aws:asset:path": "asset.1a7e", "aws:asset:property": "Content"},
            },
            "ProbeServiceRole1D6E2F8A": {"Type": "AWS::IAM::Role", "Properties": {}},
            "Probe4F6C2B1E": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Code": {"S3Bucket": bucket, "S3Key": "c0de.zip"},
                    "Handler": "probe.handler",
                    "Role": {"Fn::GetAtt": ["ProbeServiceRole1D6E2F8A", "Arn"]},
                    "Runtime": "python3.12",
                    "MemorySize": 1024,
                    "Layers": [{"Ref": "SharedLayerC2B5E1A3"}],
                    "Environment": {
                        "Variables": {"SELF": {"Fn::Join": [":", ["self", {"Ref": "AWS::AccountId"}]]}}
                    },
                },
                "DependsOn": ["ProbeServiceRole1D6E2F8A"],
                "Metadata": {
                    "aws:cdk:path": "AppStack/Probe/Resource",
                    "aws:asset:path": "asset.c0de",
                    "aws:asset:is-bundled": False,
                    "aws:asset:property": "Code",
                },
            },
        }
    }
    path = out / "AppStack.template.json"
    path.write_text(json.dumps(template, indent=1))
    with running_server(["--template", str(path)], cwd=elsewhere) as server:
        probe = invoke(boto3_client(server.endpoint), "Probe4F6C2B1E", {"keys": ["SELF"]})
    assert probe == {
        "env": {"SELF": "self:123456789012"},
        "layer": "shared-layer",
        "memory": "1024",
        "name": "Probe4F6C2B1E",
    }


def test_example_application(tmp_path: Path, elsewhere: Path, boto3_client: Any) -> None:
    example = shutil.copytree(EXAMPLE, tmp_path / "api")  # runtimes never write into the repository
    args = [
        "--template",
        str(example / "template.yaml"),
        "--parameter-overrides",
        "ParameterKey=Stage,ParameterValue=prod",
        "--api-port",
        "0",  # its HTTP triggers: not the default 3000, which another run may hold
    ]
    with running_server(args, cwd=elsewhere) as server:
        client = boto3_client(server.endpoint)
        hello = invoke(client, "HelloFunction", {})
        user = invoke(client, "users", {"pathParameters": {"id": "42"}})
    assert hello["statusCode"] == 200
    assert json.loads(hello["body"]) == {"message": "Hello from us-east-1", "stage": "prod"}
    assert json.loads(user["body"]) == {"id": "42", "name": "user 42"}


def test_template_mistake_stops_the_server_before_it_listens(project: Path, elsewhere: Path) -> None:
    template = project / "template.yaml"
    text = SAM_TEMPLATE.replace("      MemorySize: 512", "      MemorySize: 99999")
    template.write_text(text)
    line = text.splitlines().index("      MemorySize: 99999") + 1
    done = subprocess.run(
        [sys.executable, "-m", "rapidboot.rapid_server", "serve", "--port", "0", "--template", str(template)],
        cwd=elsewhere,
        env=server_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == (
        f"rapidboot: {template}:{line}: resource Probe, property MemorySize: "
        "99999 MB is outside 128-10240 MB\n"
    )
