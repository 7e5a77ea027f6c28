"""`openautoglm workflow check|run|export|schema`: a bad file is one clear line, exit code 2, no traceback, and
nothing runs; the schema printed is the committed one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXAMPLES, REPO

pytestmark = [pytest.mark.e2e]


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "openautoglm.cli", "workflow", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def ingest(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "workflows" / "ingest.json").read_text(encoding="utf-8"))
    data.update(changes)
    return data


def fed_twice() -> dict[str, Any]:
    data = ingest()
    data["graph"]["nodes"].append({"id": "again", "stage": "clean", "params": {}})
    data["graph"]["edges"] = [
        {"source": "load.dataset", "target": "again.dataset"},
        {"source": "again.dataset", "target": "clean.dataset"},
        {"source": "clean.dataset", "target": "validate.dataset"},
        {"source": "validate.dataset", "target": "write.dataset"},
        {"source": "clean.dataset", "target": "again.dataset"},
    ]
    return data


def missing_source() -> dict[str, Any]:
    data = ingest()
    data["graph"]["nodes"][0]["params"]["source"]["path"] = "examples/nope.csv"
    return data


@pytest.mark.parametrize(
    ("command", "content", "message"),
    [
        ("check", "{not json", "not a JSON file"),
        ("check", ingest(format="something"), "Not a workflow file"),
        ("run", ingest(version=7), "format version 7"),
        ("check", ingest(name="Bad_Name"), "invalid option name"),
        ("export", fed_twice(), "fed twice"),
        ("run", missing_source(), "examples/nope.csv"),
    ],
)
def test_a_bad_workflow_file_is_one_line_and_exit_2(tmp_path: Path, command: str, content: Any, message: str) -> None:
    path = tmp_path / "w.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content, ensure_ascii=False), "utf-8")
    done = cli(command, str(path))
    output = done.stdout + done.stderr
    assert done.returncode == 2, output[-2000:]
    assert message in " ".join(done.stderr.split()), output[-2000:]
    assert "Traceback" not in output and "Beginning flow run" not in output, output[-2000:]


def test_export_to_a_folder_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    done = cli("export", str(EXAMPLES / "workflows" / "ingest.json"), "-o", str(tmp_path / "no" / "such" / "x.py"))
    assert done.returncode == 2 and "cannot write" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_schema_is_the_committed_one_and_export_is_python() -> None:
    schema = cli("schema")
    assert schema.returncode == 0, schema.stderr
    assert json.loads(schema.stdout) == json.loads((REPO / "docs" / "workflow.schema.json").read_text("utf-8"))
    exported = cli("export", "examples/pipeline/run_task.json")  # a bare v0 graph, named by its stem
    assert exported.returncode == 0, exported.stderr
    compile(exported.stdout, "run-task.py", "exec")
    assert "def run_task(" in exported.stdout
