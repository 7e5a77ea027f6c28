"""The canvas's server side (issue 33), no Prefect server: the starters' one path convention and offline model,
the CLI's --data-root, the exported file's data root, and a failed node's error in the page's terms."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from openautoglm.core.workflow_file import load_workflow
from openautoglm.serve.jobs import in_page_terms, node_error
from openautoglm.serve.routes_workflows import refused_values
from tests.conftest import EXAMPLES

STARTERS = sorted((EXAMPLES / "workflows").glob("*.json"))


def read_paths(value: Any) -> list[str]:
    """The file paths a starter names (a source's path, a graph's node and edge tables)."""
    if isinstance(value, dict):
        found = [v for k, v in value.items() if k in ("path", "nodes", "edges") and isinstance(v, str)]
        return found + [p for v in value.values() for p in read_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in read_paths(v)]
    return []


@pytest.mark.parametrize("path", STARTERS, ids=lambda p: p.stem)
def test_every_starter_path_is_relative_to_the_data_root_and_passes_the_runs_confinement(path: Path) -> None:
    from openautoglm.serve.confine import JobPolicy

    file = load_workflow(json.loads(path.read_text(encoding="utf-8")))
    paths = read_paths([n.params for n in file.graph.nodes])
    assert paths, "every starter reads a file"
    for name in paths:
        assert not Path(name).is_absolute() and (EXAMPLES / name).is_file(), name
    assert refused_values(file.graph, JobPolicy(data_roots=(EXAMPLES,))) == []
    refused = refused_values(file.graph, JobPolicy(data_roots=(EXAMPLES / "graph",)))  # another root: not there
    assert refused == [] or all("outside the data roots" in r["message"] for r in refused)


def test_the_classification_starters_use_the_offline_model_that_is_right_for_the_task() -> None:
    # local-auto: 54 of the 60 rows of user_feedback.csv; local-use (the recipe's old choice): 22 of 60.
    for name in ("seed-classification", "run-task"):
        file = load_workflow(json.loads((EXAMPLES / "workflows" / f"{name}.json").read_text(encoding="utf-8")))
        infer = next(n for n in file.graph.nodes if n.stage == "infer")
        assert infer.params["model"]["model"] == "local-auto", name
    seed = load_workflow(json.loads((EXAMPLES / "workflows" / "seed-classification.json").read_text(encoding="utf-8")))
    assert "evaluate" in {n.stage for n in seed.graph.nodes}  # it shows the score the README promises


def test_the_recipe_names_local_auto_not_local_use() -> None:
    guide = (EXAMPLES.parent / "docs" / "guide" / "workflows.md").read_text(encoding="utf-8")
    recipe = " ".join(guide[guide.index("## Canvas") :].split())
    assert "model `local-auto`" in recipe and "model `local-use`" not in recipe


def test_the_cli_checks_and_runs_under_its_data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from openautoglm.cli import app

    runner = CliRunner()
    path = str(EXAMPLES / "workflows" / "ingest.json")
    monkeypatch.chdir(tmp_path)
    missing = runner.invoke(app, ["workflow", "check", path])
    assert missing.exit_code == 2 and "user_feedback_dirty.csv" in " ".join(missing.output.split())
    checked = runner.invoke(app, ["workflow", "check", path, "--data-root", str(EXAMPLES)])
    assert checked.exit_code == 0, checked.output
    assert os.getcwd() == str(tmp_path)  # the data root is entered for the check only
    nowhere = runner.invoke(app, ["workflow", "check", path, "--data-root", str(tmp_path / "nope")])
    assert nowhere.exit_code == 2 and "no such folder" in " ".join(nowhere.output.split())


def test_the_exported_file_names_its_data_root_and_takes_another(tmp_path: Path) -> None:
    from openautoglm.core.workflow_codegen import export_code
    from openautoglm.stages import export_stages

    file = load_workflow(json.loads((EXAMPLES / "workflows" / "ingest.json").read_text(encoding="utf-8")))
    code = export_code(file, export_stages(), data_root=EXAMPLES)
    ast.parse(code)
    assert f"DATA_ROOT = Path({str(EXAMPLES)!r})" in code and "--data-root" in code
    assert "contextlib.chdir(data_root)" in code and "task_runner(coarse=True)" in code
    assert "DATA_ROOT = Path.cwd()" in export_code(file, export_stages())  # no root named: where it is run


class State:
    """The parts of a Prefect state :func:`node_error` reads."""

    def __init__(self, kind: str, message: str | None, name: str = "Failed") -> None:
        self.kind, self.message, self.name = kind, message, name

    def is_failed(self) -> bool:
        return self.kind == "failed"

    def is_crashed(self) -> bool:
        return self.kind == "crashed"


def test_a_failed_nodes_error_is_one_line_and_says_what_to_do_in_the_pages_terms() -> None:
    message = (
        "Task run encountered an exception ValidationGateError: validation failed: 2 rows break the expectations"
        "\n  hint: fix the rows listed, or run with --gate quarantine to set them aside with their reasons"
    )
    error = node_error(State("failed", message))
    assert error == {
        "message": "validation failed: 2 rows break the expectations",
        "what_to_do": "fix the rows listed, or set this node's 'gate' to quarantine to set them aside with their "
        "reasons",
    }
    assert node_error(State("completed", None)) is None and node_error(None) is None
    plain = node_error(State("failed", "Task run encountered an exception ValueError: boom\nsecond line"))
    assert plain == {"message": "boom second line", "what_to_do": None}
    crashed = node_error(State("crashed", None, name="Crashed"))
    assert crashed is not None and crashed["message"] == "Crashed" and "run it again" in str(crashed["what_to_do"])
    long = node_error(State("failed", "x" * 5000))
    assert long is not None and len(long["message"]) <= 600


@pytest.mark.parametrize(
    ("hint", "page"),
    [
        ("name the right encoding (CLI: --encoding)", "name the right encoding"),
        ("check --query", "check this node's 'query'"),
        (
            "set --text-column / --label-column to existing columns",
            "set this node's 'text_column' / this node's 'label_column' to existing columns",
        ),
        ("set text_columns (CLI: --text-column) to the column", "set text_columns to the column"),
    ],
)
def test_cli_flags_become_the_nodes_form_fields(hint: str, page: str) -> None:
    assert in_page_terms(hint) == page
    assert "--" not in in_page_terms(hint)


def test_log_lines_go_to_their_node_oldest_first_one_line_each() -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from openautoglm.serve.jobs import NODE_LOG_LINES, node_logs

    def line(task: str | None, second: int, message: str, level: int = 20) -> SimpleNamespace:
        return SimpleNamespace(
            task_run_id=task, timestamp=datetime(2026, 12, 7, 0, 0, second, tzinfo=UTC), level=level, message=message
        )

    newest_first = [
        line("t2", 9, "done\nsecond line", 40),
        line(None, 8, "flow"),
        line("t1", 2, "b"),
        line("t1", 1, "a"),
    ]
    newest_first += [line("t3", 0, f"x{i}") for i in range(NODE_LOG_LINES + 5)]
    logs = node_logs(newest_first, {"t1": "load", "t2": "infer", "t3": "clean"})
    assert [entry["message"] for entry in logs["load"]] == ["a", "b"]
    assert logs["infer"] == [{"time": "2026-12-07T00:00:09+00:00", "level": "ERROR", "message": "done second line"}]
    assert len(logs["clean"]) == NODE_LOG_LINES and set(logs) == {"load", "infer", "clean"}
