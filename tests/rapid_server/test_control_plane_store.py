"""The control plane's store: content-addressed code, one row per function, read back after reopening."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from rapidboot.rapid_server.control_plane.store import FunctionStore, StoredFunction


def test_code_is_stored_once_under_its_sha256_and_reported_in_base64(tmp_path: Path) -> None:
    store = FunctionStore(tmp_path)
    path, sha, fresh = store.put_code(b"zip bytes")
    again, sha_again, fresh_again = store.put_code(b"zip bytes")
    assert (again, sha_again, fresh, fresh_again) == (path, sha, True, False)
    assert path.name == hashlib.sha256(b"zip bytes").hexdigest() + ".zip"
    assert sha == base64.b64encode(hashlib.sha256(b"zip bytes").digest()).decode()
    assert [p.name for p in store.code_dir.iterdir()] == [path.name]  # no staging file left


def test_functions_survive_reopening_and_a_put_replaces_whole(tmp_path: Path) -> None:
    store = FunctionStore(tmp_path)
    first = StoredFunction("b", {"Handler": "app.handler"}, tmp_path / "x.zip", "sha", 10, "rev-1", "t1")
    store.put(first)
    store.put(StoredFunction("a", {"Handler": "a.h"}, tmp_path / "y.zip", "sha2", 20, "rev-a", "t2"))
    second = StoredFunction(
        "b", {"Handler": "app.other", "MemorySize": 256}, tmp_path / "z.zip", "s", 5, "rev-2", "t3"
    )
    store.put(second)
    store.close()
    reopened = FunctionStore(tmp_path)
    assert [f.name for f in reopened.all()] == ["a", "b"]  # ListFunctions' order: by name
    assert reopened.get("b") == second
    reopened.delete("b")
    assert reopened.get("b") is None
    assert [f.name for f in reopened.all()] == ["a"]
