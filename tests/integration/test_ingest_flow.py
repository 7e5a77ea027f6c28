"""The ingest flow on a real Prefect server, a Dask LocalCluster and MLflow on SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from openautoglm.adapters.sources import CsvSource
from openautoglm.core.errors import ValidationGateError
from openautoglm.flows.ingest import IngestParams, ingest
from openautoglm.flows.runtime import task_runner
from openautoglm.settings import Settings, get_settings
from tests.conftest import EXAMPLES
from tests.integration.conftest import flow_run_artifacts, task_run_names

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LABELS = ["正面", "负面", "中性"]
# Planted in examples/user_feedback_dirty.csv: blank text, a duplicate text, a label outside the set, a row
# with an extra field, a 9,000-character text, and an id used twice (both rows are suspect).
PLANTED = {"fb101": "clean", "fb102": "clean", "fb103": "validate", "fb104": "load", "fb105": "validate"}


def params(tmp_path: Path, **overrides: object) -> IngestParams:
    base: dict[str, object] = {
        "source": CsvSource(path=EXAMPLES / "user_feedback_dirty.csv", on_error="quarantine"),
        "label_column": "label",
        "labels": LABELS,
        "id_column": "id",
        "gate": "quarantine",
        "output_dir": tmp_path / "out",
    }
    base.update(overrides)
    return IngestParams.model_validate(base)


def test_quarantine_gate_sets_aside_exactly_the_planted_rows(prefect_server: None, tmp_path: Path) -> None:
    result = ingest(params(tmp_path, chunk_rows=100))

    quarantine = pd.read_csv(result.quarantine_path, encoding="utf-8-sig")
    ids = [json.loads(r).get("id") or json.loads(r).get("fields", [None])[0] for r in quarantine["record"]]
    by_id: dict[str, list[str]] = {}
    for rid, stage in zip(ids, quarantine["stage"], strict=True):
        by_id.setdefault(rid, []).append(stage)
    assert by_id == {**{k: [v] for k, v in PLANTED.items()}, "fb006": ["validate", "validate"]}
    assert all(quarantine["reason"].str.len() > 0)

    kept = pd.read_parquet(result.data_path)
    assert result.rows_read == 66 == len(kept) + len(quarantine)
    assert (result.rows_out, result.rows_quarantined) == (59, 7)
    assert result.quarantined_by_stage == {"load": 1, "clean": 2, "validate": 4}
    assert not result.passed_validation
    # Cleaning ran: HTML and full-width forms are gone from kept rows.
    texts = dict(zip(kept["id"], kept["text"], strict=True))
    assert texts["fb003"] == "客服&售后 都很好!"
    assert texts["fb005"] == "APP老是闪退, 根本没法下单。"

    # The MLflow run and the Prefect flow run point at each other.
    client = MlflowClient(get_settings().tracking_uri)
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["prefect.flow_run_id"] == result.flow_run_id
    assert run.data.tags["prefect.flow_run_url"] == result.flow_run_url
    assert run.data.metrics["rows_read"] == 66 and run.data.metrics["rows_quarantined"] == 7
    assert run.data.params["source"].endswith("user_feedback_dirty.csv")
    logged = {a.path for a in client.list_artifacts(result.mlflow_run_id)}
    assert {"validation.json", "clean_report.json", "quarantine.csv", "summary.json"} <= logged
    artifacts = flow_run_artifacts(result.flow_run_id)
    assert result.mlflow_run_url in artifacts["mlflow-run"].data  # Prefect stores link artifacts as markdown
    assert artifacts["row-counts"].type == "table"
    assert "expect_column_values_to_be_in_set" in artifacts["validation"].data
    # Cleaning ran on the Dask cluster as one task per 100-row chunk.
    assert sorted(n.rsplit("-", 1)[0] for n in task_run_names(result.flow_run_id)).count("clean-chunk") == 1


def test_chunks_are_cleaned_in_parallel_tasks(prefect_server: None, tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": [f"评论{i}" for i in range(250)], "label": ["正面"] * 250})
    path = tmp_path / "many.csv"
    frame.to_csv(path, index=False)

    def in_chunks(out: str) -> IngestParams:
        return IngestParams(
            source=CsvSource(path=path),
            label_column="label",
            labels=LABELS,
            chunk_rows=100,
            output_dir=tmp_path / out,
            output_format="csv",
        )

    def clean_runs(flow_run_id: str) -> int:
        return [n.rsplit("-", 1)[0] for n in task_run_names(flow_run_id)].count("clean-chunk")

    result = ingest(in_chunks("out"))
    assert clean_runs(result.flow_run_id) == 3
    kept = pd.read_csv(result.data_path, encoding="utf-8-sig")
    assert kept["text"].tolist() == frame["text"].tolist()

    # The run streams a chunk at a time (chunk_rows is the streamed chunk): three chunks on threads too, the same
    # rows out.
    on_threads = ingest.with_options(task_runner=task_runner(Settings(task_runner="threads")))(in_chunks("threads"))
    assert clean_runs(on_threads.flow_run_id) == 3
    assert pd.read_csv(on_threads.data_path, encoding="utf-8-sig").equals(kept)


def test_fail_gate_fails_the_run_and_keeps_the_report(prefect_server: None, tmp_path: Path) -> None:
    with pytest.raises(ValidationGateError) as info:
        ingest(params(tmp_path, gate="fail"))
    assert "label': 1 of" in str(info.value)
    report = json.loads((tmp_path / "out" / "validation.json").read_text(encoding="utf-8"))
    assert report["success"] is False
    runs = mlflow.search_runs(
        experiment_names=["ingest"], output_format="list", filter_string="attributes.status = 'FAILED'"
    )
    assert runs, "the MLflow run of a failed ingest must be marked FAILED"
