"""Templates as the configuration (`rapidboot.rapid_server.definitions`): SAM, plain CloudFormation and `cdk
synth` output give the same FunctionConfig objects a rapidboot.toml gives, and every mistake is one
ConfigError naming the file, the line, the resource and the property."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rapidboot.rapid_server.cli import main
from rapidboot.rapid_server.config import ConfigError, load_toml
from rapidboot.rapid_server.definitions.parameters import parse_overrides
from rapidboot.rapid_server.definitions.template import (
    TemplateDefinition,
    find_template,
    load_template,
)

SAM_HEADER = "Transform: AWS::Serverless-2016-10-31\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with code and a layer; the process runs from elsewhere (paths are the template's)."""
    root = (tmp_path / "project").resolve()
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("def handler(event, context):\n    return event\n")
    (root / "layer" / "python").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return root


def write(project: Path, text: str, name: str = "template.yaml") -> Path:
    path = project / name
    path.write_text(text)
    return path


def load(project: Path, text: str, overrides: dict[str, str] | None = None) -> TemplateDefinition:
    return load_template(write(project, text), overrides)


def line_of(text: str, fragment: str) -> int:
    """The 1-based line of the first line containing `fragment`: where a message must point."""
    for number, line in enumerate(text.splitlines(), start=1):
        if fragment in line:
            return number
    raise AssertionError(f"{fragment!r} is not in the template")


def error(project: Path, text: str, overrides: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load(project, text, overrides)
    return str(caught.value)


def expect(message: str, project: Path, line: int, resource: str, prop: str, problem: str) -> None:
    prefix = f"{project / 'template.yaml'}:{line}: resource {resource}, property {prop}: "
    assert message.startswith(prefix), f"{message!r}\ndoes not start with\n{prefix!r}"
    assert problem in message, message


def sam_function(properties: str, extra: str = "") -> str:
    return (
        SAM_HEADER
        + extra
        + "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        + "      CodeUri: src\n      Handler: app.handler\n      Runtime: python3.12\n"
        + properties
    )


# --- SAM ----------------------------------------------------------------------------------------------

APP = (
    SAM_HEADER
    + """
Parameters:
  Stage:
    Type: String
    Default: dev
    AllowedValues: [dev, prod]
  Memory:
    Type: Number
    Default: 256
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Globals:
  Function:
    Runtime: python3.12
    Timeout: 10
    MemorySize: !Ref Memory
    Environment:
      Variables:
        STAGE: !Ref Stage
        LEVEL: !If [IsProd, INFO, DEBUG]
Resources:
  Shared:
    Type: AWS::Serverless::LayerVersion
    Properties:
      ContentUri: layer
  Api:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "api-${Stage}"
      CodeUri: src
      Handler: app.handler
      Layers: [!Ref Shared]
      ReservedConcurrentExecutions: 5
      AutoPublishAlias: live
      ProvisionedConcurrencyConfig:
        ProvisionedConcurrentExecutions: 2
      EphemeralStorage:
        Size: 1024
      Architectures: [arm64]
      Environment:
        Variables:
          WHERE: !Sub "${AWS::Region}/${AWS::AccountId}/${AWS::Partition}"
          WORKER: !GetAtt Worker.Arn
          JOINED: !Join ["-", [a, !Ref Stage, !Select [1, [x, y]]]]
          DROPPED: !If [IsProd, kept, !Ref AWS::NoValue]
          DEBUG: true
      FunctionUrlConfig:
        AuthType: NONE
        InvokeMode: RESPONSE_STREAM
      Events:
        Get:
          Type: HttpApi
          Properties:
            Path: /items/{id}
            Method: GET
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: src
      Handler: app.handler
      Runtime: provided.al2023
      Timeout: 30
"""
)


def test_sam_template_gives_function_configs(project: Path) -> None:
    definition = load(project, APP)
    assert sorted(definition.functions) == ["Worker", "api-dev"]
    api = definition.functions["api-dev"]
    assert api.code == project / "src"
    assert api.handler == "app.handler"
    assert api.runtime == "python"
    assert (api.memory_mb, api.timeout_s) == (256, 10.0)  # both from Globals, one through a parameter
    assert api.layers == (project / "layer",)
    assert (api.reserved_concurrency, api.provisioned_concurrency, api.ephemeral_storage_mb) == (5, 2, 1024)
    assert dict(api.environment) == {
        "STAGE": "dev",
        "LEVEL": "DEBUG",
        "WHERE": "us-east-1/123456789012/aws",
        "WORKER": "arn:aws:lambda:us-east-1:123456789012:function:Worker",
        "JOINED": "a-dev-y",
        "DEBUG": "true",
    }
    worker = definition.functions["Worker"]
    assert (worker.runtime, worker.handler, worker.timeout_s, worker.memory_mb) == (
        "provided",
        "app.handler",
        30.0,
        256,
    )
    assert definition.warnings == ()


def test_parameter_overrides_reach_globals_conditions_and_names(project: Path) -> None:
    definition = load(project, APP, {"Stage": "prod", "Memory": "1024"})
    api = definition.functions["api-prod"]
    assert api.memory_mb == 1024
    assert api.environment["STAGE"] == "prod"
    assert api.environment["LEVEL"] == "INFO"
    assert api.environment["DROPPED"] == "kept"


def test_region_and_account_are_the_servers(project: Path) -> None:
    definition = load_template(write(project, APP), region="eu-west-1", account_id="111122223333")
    assert definition.functions["api-dev"].environment["WHERE"] == "eu-west-1/111122223333/aws"


def test_http_triggers_are_kept_as_data(project: Path) -> None:
    triggers = load(project, APP).triggers
    assert triggers["api-dev"].logical_id == "Api"
    assert triggers["api-dev"].events == {
        "Get": {"Type": "HttpApi", "Properties": {"Path": "/items/{id}", "Method": "GET"}}
    }
    assert triggers["api-dev"].url_config == {"AuthType": "NONE", "InvokeMode": "RESPONSE_STREAM"}
    assert triggers["Worker"].events == {}
    assert triggers["Worker"].url_config is None


def test_same_settings_as_toml_give_equal_function_configs(project: Path) -> None:
    toml = project / "rapidboot.toml"
    toml.write_text(
        '[functions.fn]\ncode = "src"\nhandler = "app.handler"\nmemory = 512\ntimeout = 20\n'
        'environment = { AA = "1" }\nlayers = ["layer"]\n'
    )
    template = (
        SAM_HEADER
        + "Resources:\n  L:\n    Type: AWS::Serverless::LayerVersion\n    Properties:\n"
        + "      ContentUri: layer\n"
        + "  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      FunctionName: fn\n"
        + "      CodeUri: src\n      Handler: app.handler\n      Runtime: python3.11\n"
        + "      MemorySize: 512\n      Timeout: 20\n      Layers: [!Ref L]\n"
        + "      Environment:\n        Variables:\n          AA: 1\n"
    )
    assert load(project, template).functions == load_toml(toml)


def test_condition_false_removes_the_function(project: Path) -> None:
    text = (
        sam_function(
            "",
            "Parameters:\n  Enable:\n    Type: String\n    Default: 'no'\n"
            "Conditions:\n  Enabled: !Equals [!Ref Enable, 'yes']\n",
        )
        + "    Condition: Enabled\n  Other:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        + ("      CodeUri: src\n      Handler: app.handler\n      Runtime: python3.12\n")
    )
    assert sorted(load(project, text).functions) == ["Other"]
    assert sorted(load(project, text, {"Enable": "yes"}).functions) == ["Fn", "Other"]


# --- plain CloudFormation and cdk synth -------------------------------------------------------------


def test_plain_cloudformation_with_local_code(project: Path) -> None:
    text = """
AWSTemplateFormatVersion: 2010-09-09
Resources:
  Layer:
    Type: AWS::Lambda::LayerVersion
    Properties:
      LayerName: shared
      Content: layer
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: plain
      Code: src
      Handler: app.handler
      Runtime: python3.13
      MemorySize: "512"
      Layers: [!Ref Layer]
      Environment:
        Variables:
          SELF: !GetAtt Fn.Arn
  Url:
    Type: AWS::Lambda::Url
    Properties:
      TargetFunctionArn: !GetAtt Fn.Arn
      AuthType: AWS_IAM
"""
    definition = load(project, text)
    function = definition.functions["plain"]
    assert (function.code, function.memory_mb, function.layers) == (
        project / "src",
        512,
        (project / "layer",),
    )
    assert function.environment["SELF"] == "arn:aws:lambda:us-east-1:123456789012:function:plain"
    assert definition.triggers["plain"].url_config == {"AuthType": "AWS_IAM"}


def cdk_template(project: Path) -> Path:
    """The shape `cdk synth` writes: assets in cdk.out named by Metadata, code in the bootstrap bucket."""
    out = project / "cdk.out"
    (out / "asset.1a2b3c").mkdir(parents=True)
    (out / "asset.1a2b3c" / "index.py").write_text("def handler(event, context):\n    return event\n")
    (out / "asset.4d5e6f" / "python").mkdir(parents=True)
    bucket = {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}
    template = {
        "Resources": {
            "SharedLayer1F2E3D4C": {
                "Type": "AWS::Lambda::LayerVersion",
                "Properties": {"Content": {"S3Bucket": bucket, "S3Key": "4d5e6f.zip"}},
                "Metadata": {"aws:asset:path": "asset.4d5e6f", "aws:asset:property": "Content"},
            },
            "HandlerServiceRoleFCDC14AE": {"Type": "AWS::IAM::Role", "Properties": {}},
            "Handler886CB40B": {
                "Type": "AWS::Lambda::Function",
                "Properties": {
                    "Code": {"S3Bucket": bucket, "S3Key": "1a2b3c.zip"},
                    "Handler": "index.handler",
                    "Role": {"Fn::GetAtt": ["HandlerServiceRoleFCDC14AE", "Arn"]},
                    "Runtime": "python3.12",
                    "Layers": [{"Ref": "SharedLayer1F2E3D4C"}],
                    "Environment": {"Variables": {"ROLE": {"Ref": "HandlerServiceRoleFCDC14AE"}}},
                },
                "DependsOn": ["HandlerServiceRoleFCDC14AE"],
                "Metadata": {
                    "aws:cdk:path": "AppStack/Handler/Resource",
                    "aws:asset:path": "asset.1a2b3c",
                    "aws:asset:is-bundled": False,
                    "aws:asset:property": "Code",
                },
            },
        },
        "Parameters": {"BootstrapVersion": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": "/cdk"}},
    }
    path = out / "AppStack.template.json"
    path.write_text(json.dumps(template, indent=1))
    return path


def test_cdk_synth_output_with_assets(project: Path) -> None:
    definition = load_template(cdk_template(project))
    function = definition.functions["Handler886CB40B"]
    assert function.code == project / "cdk.out" / "asset.1a2b3c"
    assert function.layers == (project / "cdk.out" / "asset.4d5e6f",)
    assert function.environment["ROLE"] == "HandlerServiceRoleFCDC14AE"


def test_json_templates_have_lines_too(project: Path) -> None:
    path = cdk_template(project)
    text = path.read_text().replace('"python3.12"', '"nodejs20.x"')
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_template(path)
    assert str(caught.value).startswith(
        f"{path}:{line_of(text, 'nodejs20.x')}: resource Handler886CB40B, property Runtime: 'nodejs20.x'"
    )


# --- parameters --------------------------------------------------------------------------------------


def test_parameter_overrides_take_both_of_sams_syntaxes() -> None:
    assert parse_overrides(["Stage=prod Memory=512", "Name='a b'"]) == {
        "Stage": "prod",
        "Memory": "512",
        "Name": "a b",
    }
    assert parse_overrides(["ParameterKey=Subnets,ParameterValue=a,b ParameterKey=X,ParameterValue=1"]) == {
        "Subnets": "a,b",
        "X": "1",
    }
    with pytest.raises(ConfigError, match="'Stage': expected Key=Value"):
        parse_overrides(["Stage"])


def test_parameter_without_value(project: Path) -> None:
    text = sam_function("", "Parameters:\n  Table:\n    Type: String\n")
    message = error(project, text)
    assert message.startswith(f"{project / 'template.yaml'}:{line_of(text, 'Table:')}: parameter Table: ")
    assert "--parameter-overrides Table=VALUE" in message


def test_parameter_outside_allowed_values(project: Path) -> None:
    message = error(project, APP, {"Stage": "qa"})
    assert message.startswith(f"{project / 'template.yaml'}:{line_of(APP, 'Stage:')}: parameter Stage: ")
    assert "'qa' is not one of its AllowedValues" in message


def test_number_parameter_must_be_a_number(project: Path) -> None:
    message = error(project, APP, {"Memory": "lots"})
    assert f":{line_of(APP, 'Memory:')}: parameter Memory: 'lots' is not a Number" in message


def test_unknown_override_is_refused(project: Path) -> None:
    message = error(project, APP, {"Stag": "prod"})
    assert message.startswith("--parameter-overrides: Stag: not a parameter of")
    assert "its parameters: Stage, Memory" in message


# --- every mistake names file, line, resource, property ---------------------------------------------


def test_memory_outside_lambdas_range(project: Path) -> None:
    text = sam_function("      MemorySize: 20000\n")
    expect(error(project, text), project, line_of(text, "20000"), "Fn", "MemorySize", "outside 128-10240 MB")


def test_timeout_from_globals_points_at_globals(project: Path) -> None:
    text = sam_function("", "Globals:\n  Function:\n    Timeout: 901\n")
    message = error(project, text)
    expect(message, project, line_of(text, "901"), "Fn", "Timeout (from Globals.Function)", "outside 1-900 s")


def test_environment_over_4_kb(project: Path) -> None:
    text = sam_function(f"      Environment:\n        Variables:\n          BIG: {'x' * 4100}\n")
    message = error(project, text)
    expect(message, project, line_of(text, "Variables:"), "Fn", "Environment.Variables", "4096-byte limit")


def test_reserved_environment_variable(project: Path) -> None:
    text = sam_function("      Environment:\n        Variables:\n          AWS_REGION: x\n")
    message = error(project, text)
    expect(
        message, project, line_of(text, "AWS_REGION"), "Fn", "Environment.Variables.AWS_REGION", "reserved"
    )


def test_environment_variable_name_that_lambda_refuses(project: Path) -> None:
    text = sam_function("      Environment:\n        Variables:\n          MY-VAR: x\n")
    message = error(project, text)
    expect(message, project, line_of(text, "MY-VAR"), "Fn", "Environment.Variables.MY-VAR", "invalid name")


def test_other_transforms_are_refused(project: Path) -> None:
    text = (
        "Transform:\n  - AWS::LanguageExtensions\n  - AWS::Serverless-2016-10-31\n"
        + sam_function("")[len(SAM_HEADER) :]
    )
    message = error(project, text)
    assert message == (
        f"{project / 'template.yaml'}:2: resource (template), property Transform: 'AWS::LanguageExtensions' "
        "is not applied locally; only AWS::Serverless-2016-10-31 is"
    )


def test_more_than_five_layers(project: Path) -> None:
    layers = "".join(
        f"  L{i}:\n    Type: AWS::Serverless::LayerVersion\n    Properties:\n      ContentUri: layer\n"
        for i in range(6)
    )
    text = sam_function("      Layers: [!Ref L0, !Ref L1, !Ref L2, !Ref L3, !Ref L4, !Ref L5]\n") + layers
    message = error(project, text)
    expect(message, project, line_of(text, "Layers:"), "Fn", "Layers", "6 layers, over Lambda's limit of 5")


def test_published_layer_arn_cannot_be_fetched(project: Path) -> None:
    arn = "arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3:1"
    text = sam_function(f"      Layers:\n        - {arn}\n")
    message = error(project, text)
    expect(
        message, project, line_of(text, arn), "Fn", "Layers[0]", "a published layer cannot be fetched locally"
    )


def test_missing_code_directory(project: Path) -> None:
    text = sam_function("").replace("CodeUri: src", "CodeUri: nowhere")
    message = error(project, text)
    expect(
        message, project, line_of(text, "nowhere"), "Fn", "CodeUri", f"{project / 'nowhere'} does not exist"
    )


def test_code_in_s3_is_refused(project: Path) -> None:
    text = "Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      Code:\n" + (
        "        S3Bucket: bucket\n        S3Key: code.zip\n"
        "      Handler: app.handler\n      Runtime: python3.12\n"
    )
    expect(error(project, text), project, line_of(text, "Code:"), "Fn", "Code", "is in S3")


def test_image_functions_are_refused(project: Path) -> None:
    text = sam_function("      PackageType: Image\n")
    expect(
        error(project, text), project, line_of(text, "PackageType"), "Fn", "PackageType", "Image functions"
    )
    plain = "Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      PackageType: Image\n"
    plain += "      Code:\n        ImageUri: repo:latest\n"
    expect(
        error(project, plain), project, line_of(plain, "PackageType"), "Fn", "PackageType", "Image functions"
    )


def test_other_runtimes_are_refused(project: Path) -> None:
    text = sam_function("").replace("python3.12", "nodejs20.x")
    expect(
        error(project, text),
        project,
        line_of(text, "nodejs"),
        "Fn",
        "Runtime",
        "'nodejs20.x': rapidboot runs",
    )


def test_architecture_must_be_one_of_lambdas(project: Path) -> None:
    text = sam_function("      Architectures: [sparc]\n")
    expect(
        error(project, text), project, line_of(text, "sparc"), "Fn", "Architectures", "[x86_64] or [arm64]"
    )


def test_ephemeral_storage_outside_range(project: Path) -> None:
    text = sam_function("      EphemeralStorage:\n        Size: 100\n")
    message = error(project, text)
    expect(message, project, line_of(text, "Size: 100"), "Fn", "EphemeralStorage.Size", "outside 512-10240")


def test_provisioned_over_reserved(project: Path) -> None:
    text = sam_function(
        "      ReservedConcurrentExecutions: 1\n      AutoPublishAlias: live\n"
        "      ProvisionedConcurrencyConfig:\n        ProvisionedConcurrentExecutions: 3\n"
    )
    message = error(project, text)
    where = "ProvisionedConcurrencyConfig.ProvisionedConcurrentExecutions"
    expect(message, project, line_of(text, "ProvisionedConcurrentExecutions: 3"), "Fn", where, "more than")


def test_ref_to_unknown_name(project: Path) -> None:
    text = sam_function("      Environment:\n        Variables:\n          TABLE: !Ref Tabel\n")
    message = error(project, text)
    expect(
        message,
        project,
        line_of(text, "Tabel"),
        "Fn",
        "Environment.Variables.TABLE",
        "no parameter or resource 'Tabel'",
    )


def test_import_value_stops_the_server_outside_the_environment(project: Path) -> None:
    text = sam_function("").replace("Handler: app.handler", "Handler: !ImportValue shared-handler")
    message = error(project, text)
    expect(
        message,
        project,
        line_of(text, "ImportValue"),
        "Fn",
        "Handler",
        "Fn::ImportValue is known only to a deployed stack",
    )


def test_unresolvable_environment_values_keep_their_text_with_a_warning(project: Path) -> None:
    secret = "{{resolve:secretsmanager:db:SecretString:password}}"
    text = (
        sam_function(
            f"      Environment:\n        Variables:\n          TABLE: !ImportValue shared-table\n"
            f"          PASSWORD: '{secret}'\n          STREAM: !GetAtt Table.StreamArn\n"
        )
        + "  Table:\n    Type: AWS::DynamoDB::Table\n"
    )
    definition = load(project, text)
    environment = definition.functions["Fn"].environment
    assert environment["TABLE"] == '{"Fn::ImportValue":"shared-table"}'
    assert environment["PASSWORD"] == secret
    assert environment["STREAM"] == '{"Fn::GetAtt":["Table","StreamArn"]}'
    path = project / "template.yaml"
    assert definition.warnings == (
        f"{path}:{line_of(text, 'TABLE')}: warning: resource Fn, property Environment.Variables.TABLE: "
        "Fn::ImportValue is known only to a deployed stack; the variable keeps its literal text "
        '{"Fn::ImportValue":"shared-table"}',
        f"{path}:{line_of(text, 'PASSWORD')}: warning: resource Fn, property Environment.Variables.PASSWORD: "
        "a dynamic reference is resolved by CloudFormation at deploy time; the variable keeps its literal "
        f"text {secret}",
        f"{path}:{line_of(text, 'STREAM')}: warning: resource Fn, property Environment.Variables.STREAM: "
        "Table.StreamArn is known only once the stack is deployed; the variable keeps its literal text "
        '{"Fn::GetAtt":["Table","StreamArn"]}',
    )


def test_duplicate_function_names(project: Path) -> None:
    text = sam_function("      FunctionName: same\n") + "  Other:\n    Type: AWS::Serverless::Function\n"
    text += "    Properties:\n      FunctionName: same\n      CodeUri: src\n      Handler: app.handler\n"
    text += "      Runtime: python3.12\n"
    message = error(project, text)
    expect(
        message,
        project,
        text.splitlines().index("      FunctionName: same", 12) + 1,
        "Other",
        "FunctionName",
        "also Fn's name",
    )


def test_translator_errors_name_the_resource_and_line(project: Path) -> None:
    text = sam_function(
        "      Events:\n        Get:\n          Type: Api\n          Properties:\n            Method: get\n"
    )
    message = error(project, text)
    prefix = f"{project / 'template.yaml'}:{line_of(text, 'Get:')}: resource Fn, property Events.Get: "
    assert message.startswith(prefix), message
    assert "Event with id [Get] is invalid" in message


def test_yaml_syntax_error_names_the_line(project: Path) -> None:
    text = sam_function("      MemorySize: [128\n      Timeout: 3\n")
    message = error(project, text)
    assert message.startswith(f"{project / 'template.yaml'}:"), message
    assert "not a valid template (YAML or JSON)" in message


def test_template_without_functions(project: Path) -> None:
    text = "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n"
    assert error(project, text) == (
        f"{project / 'template.yaml'}:1: no functions: the template has no AWS::Serverless::Function "
        "or AWS::Lambda::Function (with its Condition true)"
    )


# --- the command line ----------------------------------------------------------------------------------


def test_find_template_as_sam_does(project: Path) -> None:
    assert find_template(project) is None
    write(project, "{}", "template.json")
    assert find_template(project) == project / "template.json"
    write(project, "{}", "template.yaml")
    assert find_template(project) == project / "template.yaml"


def test_template_and_toml_cannot_be_mixed(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = write(project, APP)
    assert main(["serve", "--template", str(template), "--config", str(project / "rapidboot.toml")]) == 2
    assert "--template and --config/--code are exclusive" in capsys.readouterr().err
    assert main(["serve", "--code", "src", "--handler", "app.handler", "--parameter-overrides", "A=1"]) == 2
    assert "--parameter-overrides is for a template" in capsys.readouterr().err


def test_template_mistake_stops_serve_before_it_starts(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    template = write(project, sam_function("      MemorySize: 64\n"))
    assert main(["serve", "--template", str(template)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, "one message"
    assert err.startswith(f"rapidboot: {template}:")
    assert "resource Fn, property MemorySize: 64 MB is outside" in err


def imported_by(code: str) -> set[str]:
    script = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


HEAVY = {"yaml", "samtranslator", "boto3", "rapidboot.rapid_server.definitions"}


def test_template_libraries_stay_off_the_plain_server_and_runtime_paths() -> None:
    plain = imported_by(
        "import rapidboot.rapid_server.cli, rapidboot.rapid_server.server, rapidboot.runtime.main"
    )
    assert not plain & HEAVY, plain & HEAVY
    template = imported_by("import rapidboot.rapid_server.definitions.template")
    assert {"yaml", "rapidboot.rapid_server.definitions"} <= template
    assert "samtranslator" not in template, "only a SAM template needs the translator"


def test_sam_translator_loads_only_for_sam_templates(project: Path) -> None:
    plain = write(
        project,
        "Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      Code: src\n"
        "      Handler: app.handler\n      Runtime: python3.12\n",
        "plain.yaml",
    )
    sam = write(project, APP, "sam.yaml")
    load = "from pathlib import Path\nfrom rapidboot.rapid_server.definitions.template import load_template\n"
    assert "samtranslator" not in imported_by(f"{load}load_template(Path({str(plain)!r}))")
    assert "samtranslator" in imported_by(f"{load}load_template(Path({str(sam)!r}))")


def test_snap_start_published_versions_is_snap_start_here(project: Path) -> None:
    definition = load(project, sam_function("      SnapStart:\n        ApplyOn: PublishedVersions\n"))
    assert definition.functions["Fn"].snap_start is True
    assert (
        load(project, sam_function("      SnapStart:\n        ApplyOn: None\n")).functions["Fn"].snap_start
        is False
    )
    assert load(project, sam_function("")).functions["Fn"].snap_start is False


def test_snap_start_apply_on_must_be_one_of_sams(project: Path) -> None:
    text = sam_function("      SnapStart:\n        ApplyOn: Always\n")
    message = error(project, text)
    expect(message, project, line_of(text, "ApplyOn"), "Fn", "SnapStart.ApplyOn", "PublishedVersions or None")
