"""GLM through the real zhipuai SDK against a local HTTP server that speaks Zhipu's wire format."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from openautoglm import TaskPipeline
from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.sources import CsvSource
from openautoglm.core.nlp.types import TaskConfig
from openautoglm.flows.run_task import RunTaskParams, run_task
from openautoglm.settings import get_settings
from openautoglm.testing import FakeZhipuServer, Fault
from tests.conftest import EXAMPLES
from tests.integration.conftest import flow_run_artifacts

pytestmark = [pytest.mark.integration]

LABELS = ["正面", "负面", "中性"]


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeZhipuServer]:
    with FakeZhipuServer(api_key="abc123.s3cr3t-value") as fake:
        monkeypatch.setenv("ZHIPUAI_API_KEY", fake.api_key)
        yield fake


def pipeline(server: FakeZhipuServer, cache: str = "use", **options: object) -> TaskPipeline:
    p = TaskPipeline(
        "text_classification",
        "glm-4",
        base_url=server.base_url,
        cache=cache,  # type: ignore[arg-type]
        batch_size=8,
        **options,
    )
    return p.configure(prompt_template="判断以下用户反馈的情感倾向:{text}", labels=LABELS)


def test_the_sdk_speaks_the_wire_format(server: FakeZhipuServer, home: Path) -> None:
    results = pipeline(server).run(["这个很正面", "非常负面"])
    assert results.predictions == ["正面", "负面"]
    assert {b["model"] for b in server.bodies} == {"glm-4"}
    assert {b["messages"][-1]["content"] for b in server.bodies} == {
        "判断以下用户反馈的情感倾向:这个很正面",
        "判断以下用户反馈的情感倾向:非常负面",
    }
    assert {h["Authorization"] for h in server.headers} == {f"Bearer {server.api_key}"}


def test_nothing_is_lost_under_injected_faults(server: FakeZhipuServer, home: Path) -> None:
    server.fault = Fault(throttle=0.15, overload=0.1, internal=0.05, broken_json=0.2, wrong_label=0.1)
    server.max_concurrency = 3
    texts = [f"第{i}条反馈" for i in range(60)]
    results = pipeline(server, cache="off", max_concurrency=5, max_retries=10).run(texts)
    assert len(results) == 60 and results.frame["row_id"].tolist() == list(range(60))
    assert set(results.frame["status"]) == {"ok"}  # every fault was retried or repaired
    assert results.stats.retries > 0 and {"1302", "1305", "500"} <= set(results.stats.errors)
    assert results.stats.calls == server.requests
    assert server.peak_in_flight <= 5


def test_rows_that_cannot_be_answered_say_why(server: FakeZhipuServer, home: Path) -> None:
    server.fault = Fault(internal=1.0)
    results = pipeline(server, cache="off", max_retries=2).run(["a", "b"])
    assert set(results.frame["status"]) == {"error"}
    assert all(r.startswith("500:") for r in results.frame["reason"])
    assert server.requests == 6  # 1 + 2 retries per row, no more


def test_a_bad_key_stops_early_and_is_not_retried(
    server: FakeZhipuServer, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZHIPUAI_API_KEY", "wrong.key")
    results = pipeline(server, cache="off", max_concurrency=1).run([f"t{i}" for i in range(10)])
    assert set(results.frame["status"]) == {"error"}
    assert "authentication failed" in results.frame["reason"].iloc[0]
    assert server.requests == 1


def test_rerun_costs_zero_calls(server: FakeZhipuServer, home: Path) -> None:
    texts = [f"评论{i}" for i in range(12)]
    first = pipeline(server).run(texts)
    assert first.stats.calls == 12
    server.reset_counts()
    second = pipeline(server).run(texts)
    assert server.requests == 0 and second.stats.cache_hits == 12
    assert second.predictions == first.predictions
    pipeline(server, cache="off").run(texts)
    assert server.requests == 12  # --no-cache calls again


def test_ner_and_matching_on_glm(server: FakeZhipuServer, home: Path) -> None:
    def responder(messages: list[dict[str, str]]) -> str:
        if '"entities"' in messages[0]["content"]:
            return json.dumps({"entities": [{"text": "北京", "type": "LOC"}]}, ensure_ascii=False)
        return json.dumps({"score": 0.8})

    server.responder = responder
    ner = TaskPipeline("ner", "glm-4-flash", base_url=server.base_url).run(["我在北京工作"])
    assert ner.results[0].prediction[0].start == 2
    assert json.loads(ner.frame["prediction"].iloc[0]) == [{"text": "北京", "type": "LOC", "start": 2, "end": 4}]
    match = TaskPipeline("semantic_matching", "glm-4-flash", base_url=server.base_url).run([("今天晴", "今天天晴")])
    assert match.frame["prediction"].iloc[0] == "1" and match.frame["score"].iloc[0] == 0.8


@pytest.mark.slow
def test_run_task_flow_on_glm_keeps_the_key_secret(
    prefect_server: None, server: FakeZhipuServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server.fault = Fault(throttle=0.1, broken_json=0.1)
    params = RunTaskParams(
        source=CsvSource(path=EXAMPLES / "user_feedback.csv"),
        task=TaskConfig(labels=tuple(LABELS)),
        model=ModelSpec(model="glm-4", base_url=server.base_url, max_concurrency=4),
        label_column="label",
        batch_size=16,
        output_dir=tmp_path / "out",
    )
    result = run_task(params)
    assert result.rows_predicted == 60 and result.status_counts == {"ok": 60}
    assert result.batches == 4 and result.calls == server.requests
    assert "accuracy" in result.metrics and (tmp_path / "out" / "confusion_matrix.png").exists()
    frame = pd.read_csv(result.results_path, encoding="utf-8-sig")
    assert frame["prediction"].isin(LABELS).all() and len(frame) == 60

    run = MlflowClient(get_settings().tracking_uri).get_run(result.mlflow_run_id)
    everything = json.dumps({"params": run.data.params, "tags": run.data.tags}) + caplog.text
    assert server.api_key not in everything and "s3cr3t" not in everything
    assert run.data.params["model"] == "glm-4" and float(run.data.metrics["calls"]) == result.calls
    assert "task-results" in flow_run_artifacts(result.flow_run_id)

    server.reset_counts()
    again = run_task(params.model_copy(update={"output_dir": tmp_path / "again"}))
    assert server.requests == 0 and again.calls == 0 and again.batches_cached == 4
