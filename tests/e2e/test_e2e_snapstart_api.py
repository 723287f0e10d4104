"""SnapStart through the API (boto3): `SnapStart: {ApplyOn: PublishedVersions}` on CreateFunction and
UpdateFunctionConfiguration applies, as on Lambda, to published versions only: $LATEST's status is Off
and its first invoke an ordinary init; a version's is On and its REPORT shows `Restore Duration`. A
provided runtime with SnapStart is refused and nothing is created."""

from __future__ import annotations

import base64
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
from e2e_harness import lambda_client, running_server

pytestmark = pytest.mark.e2e

ROLE = "arn:aws:iam::123456789012:role/deploy"
SNAP = {"ApplyOn": "PublishedVersions"}


def package() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "import os\n\n\ndef handler(event, context):\n    return 'ok'\n")
    return buffer.getvalue()


def tail_report(client: Any, name: str) -> str:
    response = client.invoke(FunctionName=name, Payload=b"{}", LogType="Tail")
    assert "FunctionError" not in response, response
    log = base64.b64decode(response["LogResult"]).decode()
    (report,) = [line for line in log.splitlines() if line.startswith("REPORT ")]
    return report


def test_snap_start_applies_to_published_versions(tmp_path: Path) -> None:
    with running_server(["--state-dir", str(tmp_path / "state")], tmp_path) as server:
        client = lambda_client(server.endpoint)
        created = client.create_function(
            FunctionName="snappy",
            Runtime="python3.12",
            Role=ROLE,
            Handler="app.handler",
            Code={"ZipFile": package()},
            SnapStart=SNAP,
        )
        assert created["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "Off"}
        client.get_waiter("function_active_v2").wait(FunctionName="snappy")
        latest = tail_report(client, "snappy")
        assert "Init Duration" in latest and "Restore Duration" not in latest
        version = client.publish_version(FunctionName="snappy")
        assert version["SnapStart"] == {"ApplyOn": "PublishedVersions", "OptimizationStatus": "On"}
        got = client.get_function_configuration(FunctionName="snappy", Qualifier=version["Version"])
        assert got["SnapStart"]["OptimizationStatus"] == "On"
        report = tail_report(client, f"snappy:{version['Version']}")
        assert "Restore Duration" in report and "Init Duration" not in report, report

        # Turned off by UpdateFunctionConfiguration: the next version is not restored from a snapshot.
        updated = client.update_function_configuration(FunctionName="snappy", SnapStart={"ApplyOn": "None"})
        assert updated["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
        client.get_waiter("function_updated_v2").wait(FunctionName="snappy")
        second = client.publish_version(FunctionName="snappy")
        assert second["SnapStart"] == {"ApplyOn": "None", "OptimizationStatus": "Off"}
        assert "Restore Duration" not in tail_report(client, f"snappy:{second['Version']}")
        # The first version keeps its snapshot.
        first = client.get_function_configuration(FunctionName="snappy", Qualifier=version["Version"])
        assert first["SnapStart"]["OptimizationStatus"] == "On"

        invalid = client.exceptions.InvalidParameterValueException
        with pytest.raises(invalid, match="provided runtime"):
            client.create_function(
                FunctionName="native",
                Runtime="provided.al2023",
                Role=ROLE,
                Handler="bootstrap",
                Code={"ZipFile": package()},
                SnapStart=SNAP,
            )
        with pytest.raises(invalid, match=r"SnapStart\.ApplyOn"):
            client.update_function_configuration(FunctionName="snappy", SnapStart={"ApplyOn": "Always"})
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            client.get_function(FunctionName="native")
        assert client.get_function_configuration(FunctionName="snappy")["SnapStart"]["ApplyOn"] == "None"
