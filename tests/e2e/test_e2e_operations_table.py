"""docs/control-plane-operations.md lists every operation of botocore's `lambda` model, and says truly which
ones this server routes.

Which operations are routed is asked of a real server, not read from our route tables: each operation's
method and path (botocore's `requestUri`, a placeholder for each label) is sent once to a server with no
functions, and it is routed unless the answer is `UnknownOperationException`. Nothing is changed by the
probes: every path names a function, layer or resource that does not exist, and every body is `{}`.

After adding or removing a route, regenerate the table (the notes column is kept, by operation):

    .venv/bin/python tests/e2e/test_e2e_operations_table.py --write
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import httpx
import pytest
from e2e_harness import running_server

pytestmark = pytest.mark.e2e

TABLE = Path(__file__).resolve().parents[2] / "docs" / "control-plane-operations.md"
BEGIN, END = "<!-- operations: begin -->", "<!-- operations: end -->"
HEAD = "| Operation | Method and path | Here | Notes |\n|---|---|---|---|"
YES, NO = "implemented", "not implemented"
# The note an operation gets until someone writes a better one, by the first pattern its name matches.
DEFAULT_NOTES = (
    (r"DurableExecution", "durable executions are not served by this server"),
    (r"CodeSigning", "no code signing: packages are local files the developer trusts"),
    (r"EventSourceMapping", "no event sources (SQS, Kinesis, DynamoDB, Kafka) are hosted here"),
    (r"CapacityProvider|ScalingConfig", "Lambda Managed Instances capacity is the local machine"),
    (r"Permission|Policy", "no IAM here: every local caller may invoke every function"),
    (r"FunctionUrl", "function URLs come from a template's FunctionUrlConfig (HTTP triggers), not the API"),
    (r"RuntimeManagement", "one runtime version: the local interpreter"),
    (r"InvokeAsync", "deprecated by the service; Invoke with InvocationType=Event does the same"),
    (r"Alias|Version|ProvisionedConcurrency", "versions and aliases: another part of issue 15"),
    (r"Layer", "layers by API: another part of issue 15"),
    (r"Tag|EventInvokeConfig|Concurrency|AccountSettings", "another part of issue 15"),
)


def model_operations() -> dict[str, tuple[str, str]]:
    """Every operation of botocore's `lambda` model: its method and request URI."""
    from botocore.loaders import Loader

    model = Loader().load_service_model("lambda", "service-2")
    return {
        name: (operation["http"]["method"], operation["http"]["requestUri"])
        for name, operation in sorted(model["operations"].items())
    }


def routed_operations(operations: dict[str, tuple[str, str]]) -> set[str]:
    with (
        tempfile.TemporaryDirectory() as directory,
        running_server(["--state-dir", str(Path(directory) / "state")], Path(directory)) as server,
        httpx.Client(base_url=server.endpoint, timeout=30) as client,
    ):
        routed = set()
        for name, (method, uri) in operations.items():
            path = re.sub(r"\{[^}]+\}", "probe-none", uri)
            response = client.request(method, path, content=b"{}")
            if response.headers.get("x-amzn-ErrorType") != "UnknownOperationException":
                routed.add(name)
        return routed


def read_table() -> dict[str, tuple[str, str]]:
    """The table as written: operation -> (implemented or not, note)."""
    text = TABLE.read_text()
    rows = text[text.index(BEGIN) + len(BEGIN) : text.index(END)].strip().splitlines()[2:]
    table = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        table[cells[0]] = (cells[2], cells[3])
    return table


def render(operations: dict[str, tuple[str, str]], routed: set[str], notes: dict[str, str]) -> str:
    rows = []
    for name, (method, uri) in operations.items():
        note = notes.get(name) or next(
            (text for pattern, text in DEFAULT_NOTES if re.search(pattern, name)), ""
        )
        if name in routed and note in dict(DEFAULT_NOTES).values():
            note = ""
        rows.append(f"| {name} | `{method} {uri}` | {YES if name in routed else NO} | {note} |")
    return "\n".join([HEAD, *rows])


def write() -> None:
    operations = model_operations()
    table = read_table() if TABLE.exists() else {}
    body = render(operations, routed_operations(operations), {k: v[1] for k, v in table.items()})
    text = TABLE.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    TABLE.write_text(text[:start] + "\n" + body + "\n" + text[end:])


def test_the_table_names_every_operation_and_what_is_routed() -> None:
    operations = model_operations()
    table = read_table()
    assert sorted(table) == sorted(operations), "regenerate: " + __doc__.split("\n\n")[-1].strip()
    implemented = {name for name, (status, _) in table.items() if status == YES}
    routed = routed_operations(operations)
    assert implemented == routed, (
        f"routed but marked not implemented: {sorted(routed - implemented)}; "
        f"marked implemented but not routed: {sorted(implemented - routed)}"
    )


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit(__doc__)
    write()
