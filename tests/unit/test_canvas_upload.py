"""Uploading a data file into a data root (issue 33): the name made safe (property-tested with hypothesis), the
content checked, operators only, size-capped, and the file then usable by a workflow's load node."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from openautoglm.core.data.upload import MAX_NAME, SUFFIXES, inspect_upload, safe_upload_name
from openautoglm.core.errors import ConfigurationError
from openautoglm.serve.app import create_app
from openautoglm.serve.testing import Signer
from tests.canvas_settings import canvas_settings
from tests.conftest import EXAMPLES

SIGNER = Signer.ec("upload-1")
UPLOAD = "/api/v1/data-files"
NAMES = st.one_of(
    st.text(max_size=150),
    st.builds(
        lambda a, b, s: f"{a}{b}{s}",
        st.lists(
            st.sampled_from([".", "/", "\\", "-", "_", " ", "\x00", ":", "~", "..", "评论", "A", "z", "9"]), max_size=12
        ).map("".join),
        st.text(max_size=120),
        st.sampled_from([".csv", ".CSV", ".jsonl", ".json", ".csv.exe", ""]),
    ),
)


@given(NAMES)
def test_a_safe_name_is_one_plain_file_directly_in_the_root_or_refused(name: str) -> None:
    try:
        safe = safe_upload_name(name)
    except ConfigurationError as error:
        assert "CSV or JSONL" in error.message
        return
    root = Path("/srv/data")
    assert (root / safe).parent == root and (root / safe).resolve().parent == root.resolve()
    assert "/" not in safe and "\\" not in safe and "\x00" not in safe and safe not in (".", "..")
    assert not safe.startswith((".", "-")) and safe.endswith(SUFFIXES) and len(safe) <= MAX_NAME
    assert safe_upload_name(safe) == safe  # idempotent: a safe name is kept as it is


def test_names_are_made_safe_not_taken_as_paths() -> None:
    assert safe_upload_name("../../etc/passwd.csv") == "passwd.csv"
    assert safe_upload_name("C:\\Users\\me\\My Reviews (2).CSV") == "My-Reviews-2-.csv"
    assert safe_upload_name("评论 数据.jsonl") == "评论-数据.jsonl"
    for bad in ("passwd", ".csv", "../..", "notes.txt", "x.csv.exe"):
        with pytest.raises(ConfigurationError):
            safe_upload_name(bad)


def test_content_is_checked() -> None:
    assert inspect_upload("a.csv", "text,label\n好,正面\n\n差,负面\n".encode()).rows == 2
    assert inspect_upload("a.jsonl", b'{"text": "x"}\n\n{"text": "y", "id": 2}\n').columns == ("text", "id")
    for name, data in (
        ("a.csv", "text\n好".encode("gbk")),
        ("a.csv", b"   \n"),
        ("a.csv", b",label\nx,y\n"),
        ("a.jsonl", b'{"text": "x"}\n[1, 2]\n'),
    ):
        with pytest.raises(ConfigurationError):
            inspect_upload(name, data)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(EXAMPLES / "user_feedback.csv", folder / "user_feedback.csv")
    return folder


@pytest.fixture
def client(tmp_path: Path, root: Path) -> Iterator[TestClient]:
    settings = canvas_settings(tmp_path, SIGNER, data_roots=(root,), max_body_bytes=64 * 1024)
    with TestClient(create_app(settings)) as c:
        yield c


def auth(role: str = "operator") -> dict[str, str]:
    return {"Authorization": f"Bearer {SIGNER.token('olga', [role])}"}


def put(client: TestClient, name: str, data: bytes, role: str = "operator") -> Any:
    return client.put(f"{UPLOAD}/{name}", content=data, headers={**auth(role), "Content-Type": "text/csv"})


def test_an_operator_uploads_a_csv_that_a_workflow_then_reads(client: TestClient, root: Path) -> None:
    data = (EXAMPLES / "user_feedback.csv").read_bytes()
    done = put(client, "My Feedback.csv", data)
    assert done.status_code == 200, done.text
    body = done.json()["data"]
    header = data.decode("utf-8-sig").splitlines()[0].split(",")
    assert body == {
        "path": "uploads/My-Feedback.csv",
        "bytes": len(data),
        "rows": 60,
        "columns": header,
        "replaced": False,
    }
    assert (root / "uploads" / "My-Feedback.csv").read_bytes() == data
    assert put(client, "My Feedback.csv", data).json()["data"]["replaced"] is True
    file = copy.deepcopy(json.loads((EXAMPLES / "workflows" / "seed-classification.json").read_text("utf-8")))
    file["graph"]["nodes"][0]["params"]["source"]["path"] = body["path"]
    checked = client.post("/api/v1/workflows/check", json=file, headers=auth())
    assert checked.json()["data"] == {"ok": True, "errors": []}, checked.text


def test_uploads_are_for_operators_capped_and_checked(client: TestClient, root: Path) -> None:
    ok_csv = b"text,label\nx,y\n"
    assert put(client, "a.csv", ok_csv, role="viewer").status_code == 403
    assert put(client, "a.txt", ok_csv).status_code == 422
    refused = put(client, "a.csv", "text\n好".encode("gbk"))
    assert refused.status_code == 422 and "UTF-8" in refused.json()["message"], refused.text
    too_big = put(client, "big.csv", b"text\n" + b"x" * 70_000 + b"\n")
    assert too_big.status_code == 413, too_big.text
    escaped = put(client, "..%2F..%2Fescape.csv", ok_csv)
    assert escaped.status_code in (200, 404), escaped.text
    assert not (root.parent / "escape.csv").exists()
    uploads = sorted(p.name for p in (root / "uploads").iterdir()) if (root / "uploads").exists() else []
    assert uploads == (["escape.csv"] if escaped.status_code == 200 else [])  # nothing written but a safe name
