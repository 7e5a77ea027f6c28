"""The CLI as a user runs it: a subprocess, the example files, no Python API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import EXAMPLES, REPO, in_ci

pytestmark = [pytest.mark.e2e]


def cli(*args: str, home: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "OPENAUTOGLM_HOME": str(home),
        "PREFECT_HOME": str(home / "prefect"),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "openautoglm.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_version_and_help(tmp_path: Path) -> None:
    from openautoglm import __version__

    assert cli("--version", home=tmp_path).stdout.strip() == f"openautoglm {__version__}"
    out = cli("ingest", "--help", home=tmp_path).stdout
    assert "--gate" in out and "quarantine" in out and "--lenient" in out


@pytest.mark.slow
def test_ingest_quarantines_the_planted_rows(tmp_path: Path) -> None:
    proc = cli(
        "ingest",
        str(EXAMPLES / "user_feedback_dirty.csv"),
        "--label-column",
        "label",
        "--labels",
        "正面,负面,中性",
        "--id-column",
        "id",
        "--gate",
        "quarantine",
        "--output",
        str(tmp_path / "out"),
        home=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    assert "│ read                    │    66 │" in out
    assert "│ kept                    │    59 │" in out
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["rows_read"] == summary["rows_out"] + summary["rows_quarantined"] == 66
    quarantine = pd.read_csv(tmp_path / "out" / "quarantine.csv", encoding="utf-8-sig")
    ids = sorted(json.loads(r).get("id") or json.loads(r)["fields"][0] for r in quarantine["record"])
    assert ids == ["fb006", "fb006", "fb101", "fb102", "fb103", "fb104", "fb105"]
    assert "MLflow run:  http://127.0.0.1:5000/#/experiments/" in out
    assert "Prefect run: http://127.0.0.1:4200/runs/flow-run/" in out
    assert "prefect server start" in out and "mlflow ui --backend-store-uri sqlite:///" in out


def test_errors_are_one_readable_message_without_traceback(tmp_path: Path) -> None:
    proc = cli("ingest", str(tmp_path / "missing.csv"), home=tmp_path)
    assert proc.returncode == 2
    assert "no such file" in proc.stderr and "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout

    proc = cli("validate", str(EXAMPLES / "user_feedback.csv"), "--columns", "txt", home=tmp_path)
    assert proc.returncode == 2
    assert "did you mean 'txt' -> 'text'" in proc.stderr

    # A graph that is not there: one clear line before any flow run starts (no Prefect server, no traceback).
    proc = cli("graph-search", "--dataset", "cora", "--root", str(tmp_path / "nowhere"), home=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "nowhere/Cora/raw" in proc.stderr and "hint:" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout and "flow run" not in proc.stderr + proc.stdout


def test_validate_exits_1_and_lists_failing_rows(tmp_path: Path) -> None:
    proc = cli(
        "validate",
        str(EXAMPLES / "user_feedback_dirty.csv"),
        "--label-column",
        "label",
        "--labels",
        "正面,负面,中性",
        "--id-column",
        "id",
        home=tmp_path,
    )
    assert proc.returncode == 1
    assert "5 failing row(s)" in proc.stdout
    assert "label '差评' is not one of" in proc.stdout
    clean = cli(
        "validate",
        str(EXAMPLES / "user_feedback.csv"),
        "--label-column",
        "label",
        "--labels",
        "正面,负面,中性",
        home=tmp_path,
    )
    assert clean.returncode == 0 and "60 rows pass every expectation" in clean.stdout


def test_optimize_prompt_then_run_with_it(tmp_path: Path) -> None:
    opt = cli(
        "optimize-prompt",
        str(EXAMPLES / "user_feedback.csv"),
        "--labels",
        "正面,负面,中性",
        "--prompt-template",
        "判断以下用户反馈的情感倾向:{text}",
        "--budget",
        "300",
        "--dev-size",
        "20",
        "--test-size",
        "20",
        "--learner",
        "few-label",
        "-o",
        str(tmp_path / "opt"),
        home=tmp_path,
    )
    assert opt.returncode == 0, opt.stderr[-3000:]
    assert "dev score" in opt.stdout and "of 300 calls" in opt.stdout
    learned = tmp_path / "opt" / "learned"
    assert (learned / "openautoglm-model.json").is_file() and f"--model local:{learned}" in opt.stdout
    prompt = json.loads((tmp_path / "opt" / "optimised_prompt.json").read_text(encoding="utf-8"))
    # The pick is made on dev, so dev >= start holds by construction; the held-out rows need not agree (an
    # over-fitted search loses there). Measured: test 0.55 against the start prompt's 0.45 on the 20 test rows.
    assert prompt["test_score"] is not None and prompt["start_test_score"] is not None
    assert prompt["test_score"] > prompt["start_test_score"], (prompt["test_score"], prompt["start_test_score"])
    # The JSON agrees with the candidate table written beside it: one row a candidate, the first the start prompt,
    # the calls of the rows adding up to the calls the budget counted.
    table = pd.read_csv(tmp_path / "opt" / "candidates.csv")
    assert len(table) == prompt["candidates"] >= 2 and table["origin"].iloc[0] == "start"
    assert table["dev_score"].iloc[0] == pytest.approx(prompt["start_dev_score"])
    assert table["dev_score"].max() == pytest.approx(prompt["dev_score"])
    assert int(table["calls"].sum()) == prompt["calls"] <= 300

    run = cli(
        "run",
        str(EXAMPLES / "user_feedback.csv"),
        "--labels",
        "正面,负面,中性",
        "--label-column",
        "label",
        "--prompt",
        str(tmp_path / "opt" / "optimised_prompt.json"),
        "-o",
        str(tmp_path / "run"),
        home=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "prompt from" in run.stdout + run.stderr
    bad = cli(
        "run", str(EXAMPLES / "user_feedback.csv"), "--labels", "正面,负面", "--prompt", "nope.json", home=tmp_path
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "nope.json" in bad.stderr


def _planetoid_root() -> Path | None:
    """The Planetoid folder of the shared data sets (OPENAUTOGLM_DATA_ROOT, or ../shared/datasets)."""
    configured = os.environ.get("OPENAUTOGLM_DATA_ROOT")
    for base in ([Path(configured)] if configured else []) + [REPO.parent / "shared" / "datasets"]:
        if (base / "graph" / "planetoid" / "Cora" / "raw").is_dir():
            return base / "graph" / "planetoid"
    return None


def test_graph_search_on_a_user_graph(tmp_path: Path) -> None:
    user = cli(
        "graph-search",
        "--nodes",
        str(EXAMPLES / "graph" / "nodes.csv"),
        "--edges",
        str(EXAMPLES / "graph" / "edges.csv"),
        "--id-column",
        "member",
        "--label-column",
        "club",
        "--source-column",
        "from",
        "--target-column",
        "to",
        "--algo",
        "random",
        "--budget",
        "3",
        "--final-seeds",
        "1",
        "--max-epochs",
        "40",
        "-o",
        str(tmp_path / "user"),
        home=tmp_path,
    )
    assert user.returncode == 0, user.stderr[-3000:]
    summary = json.loads((tmp_path / "user" / "summary.json").read_text(encoding="utf-8"))
    # The prior's baselines are trained even past the budget; the budget counts them with the searched candidates.
    assert summary["trials"] == max(3, len(summary["baselines"])) and summary["mlflow_run_id"]
    assert summary["best_kind"] in {"baseline", "searched", "tuned"}


def test_graph_search_on_cora(tmp_path: Path) -> None:
    root = _planetoid_root()
    if root is None:  # CI machines hold ../shared/datasets: there a missing Cora is an error
        message = "the shared Cora files are not here (set OPENAUTOGLM_DATA_ROOT to the datasets folder)"
        if in_ci():
            pytest.fail(f"{message}; CI has them, so this is an error")
        pytest.skip(message)
    cora = cli(
        "graph-search",
        "--dataset",
        "cora",
        "--root",
        str(root),
        "--algo",
        "rl",
        "--budget",
        "2",
        "--final-seeds",
        "1",
        "--max-epochs",
        "20",
        "--no-transfer",
        "-o",
        str(tmp_path / "cora"),
        home=tmp_path,
        timeout=900,  # 249 s of flow (78 CPU-s) at a load average of 15 on 2 cores; about 2 min idle
    )
    assert cora.returncode == 0, cora.stderr[-3000:]
    summary = json.loads((tmp_path / "cora" / "summary.json").read_text(encoding="utf-8"))
    assert summary["meta"]["nodes"] == 2708 and summary["stopped"] == "budget"
    # The baselines the prior names are trained first, even past a budget smaller than their number.
    assert summary["trials"] >= 2 and summary["best_kind"] in {"baseline", "searched", "tuned"}
    # A real model on the public split: chance on Cora's 7 classes is ~0.3 (the largest class); measured 0.757 with
    # 20 epochs (the GAT baseline's pick, 2026-12-07). A broken trainer, split or data loader lands far below 0.6.
    assert 0.6 < summary["final_test_mean"] <= 1.0, summary["final_test_mean"]
