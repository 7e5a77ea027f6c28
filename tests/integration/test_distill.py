"""Distillation end to end: a GLM teacher (the fake Zhipu server through the real zhipuai SDK) labels rows within a
budget, the student is registered in MLflow's Model Registry (temp SQLite), and the SDK, the run_task flow and the
REST API load it as ``mlflow:/<name>/<version>``; the distill flow registers the next version."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow.tracking import MlflowClient

from openautoglm import TaskPipeline
from openautoglm.adapters.distill import DistillResult
from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.sources import CsvSource
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.distill import DistillOptions
from openautoglm.core.nlp.types import TaskConfig
from openautoglm.settings import get_settings
from openautoglm.testing import FakeZhipuServer
from tests.integration.conftest import flow_run_artifacts

pytestmark = [pytest.mark.integration]

LABELS = ["正面", "负面"]
TEMPLATE = "判断以下外卖评价的情感倾向:{text}"
POSITIVE = ["好吃", "推荐", "送得很快", "满意", "新鲜", "分量足"]
NEGATIVE = ["难吃", "太慢了", "失望", "凉了", "差劲", "分量少"]
BUDGET = 60
KEY = "distil-id.s3cr3t-distil"


def teacher_answer(messages: list[dict[str, str]]) -> str:
    """The stand-in GLM: positive when a positive phrase occurs (it misses the sarcastic rows gold marks 负面)."""
    text = messages[-1]["content"]
    label = "正面" if any(w in text for w in POSITIVE) else "负面"
    return json.dumps({"label": label}, ensure_ascii=False)


def reviews(n: int, offset: int = 0) -> pd.DataFrame:
    rows = []
    for i in range(offset, offset + n):
        positive = i % 3 != 0
        words = POSITIVE if positive else NEGATIVE
        text = f"第{i}单：{words[i % 6]}，{words[(i + 1) % 6]}"
        gold = "正面" if positive else "负面"
        if i % 10 == 1:  # sarcasm the teacher gets wrong
            text, gold = f"第{i}单：{POSITIVE[i % 6]}个鬼，再也不点", "负面"
        rows.append({"text": text, "gold": gold})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def server() -> Iterator[FakeZhipuServer]:
    patch = pytest.MonkeyPatch()
    with FakeZhipuServer(api_key=KEY, responder=teacher_answer) as fake:
        patch.setenv("ZHIPUAI_API_KEY", fake.api_key)
        yield fake
    patch.undo()


@pytest.fixture(scope="module")
def distilled(server: FakeZhipuServer, tmp_path_factory: pytest.TempPathFactory) -> DistillResult:
    server.reset_counts()
    teacher = TaskPipeline("text_classification", "glm-4-flash", base_url=server.base_url, batch_size=16)
    teacher.configure(prompt_template=TEMPLATE, labels=LABELS)
    result = teacher.distill(
        reviews(80), name="reviews-student", budget=BUDGET, label_column="gold", output_dir=tmp_path_factory.mktemp("d")
    )
    result.metrics["server_requests"] = server.requests
    return result


def test_distil_registers_a_version_with_metrics_within_the_budget(
    distilled: DistillResult, caplog: pytest.LogCaptureFixture
) -> None:
    assert distilled.version == 1 and distilled.model == "mlflow:/reviews-student/1"
    metrics = distilled.metrics
    assert metrics["server_requests"] <= BUDGET and metrics["teacher_calls"] <= BUDGET
    assert metrics["teacher_fresh_calls"] == metrics["server_requests"] >= BUDGET - 3  # the budget is used
    assert metrics["teacher_rows_labelled"] == metrics["teacher_rows_sent"] < 80
    assert metrics["agreement"] >= 0.8 and 0.0 < metrics["teacher_accuracy"] < 1.0 and metrics["gold_rows"] > 0

    client = MlflowClient(get_settings().tracking_uri)
    version = client.get_model_version("reviews-student", "1")
    assert float(version.tags["agreement"]) == metrics["agreement"]
    run = client.get_run(distilled.mlflow_run_id)
    assert run.data.metrics["teacher_calls"] == metrics["teacher_calls"]
    assert run.data.params["teacher"] == "glm-4-flash" and run.data.params["budget"] == str(BUDGET)
    everything = json.dumps({"params": run.data.params, "tags": run.data.tags, "version": dict(version.tags)})
    assert "s3cr3t" not in everything + caplog.text
    assert distilled.folder is not None and (distilled.folder / "MLmodel").is_file()


def test_the_sdk_loads_it_by_version_alias_and_folder(distilled: DistillResult) -> None:
    texts = ["今天的饭菜好吃，推荐", "难吃，太慢了，凉了，差劲"]
    by_version = TaskPipeline("text_classification", distilled.model).configure(labels=LABELS).run(texts)
    assert by_version.predictions == ["正面", "负面"] and by_version.stats.calls == 0
    MlflowClient(get_settings().tracking_uri).set_registered_model_alias("reviews-student", "production", "1")
    by_alias = TaskPipeline("text_classification", "mlflow:/reviews-student@production").configure(labels=LABELS)
    assert by_alias.run(texts).predictions == by_version.predictions
    folder = TaskPipeline("text_classification", f"local:{distilled.folder}").configure(labels=LABELS)
    assert folder.run(texts).frame["score"].tolist() == by_version.frame["score"].tolist()
    with pytest.raises(ConfigurationError, match="not in the model registry"):
        TaskPipeline("text_classification", "mlflow:/reviews-student/9").configure(labels=LABELS).run(texts)


def test_the_rest_api_serves_it(distilled: DistillResult) -> None:
    from openautoglm.serve.app import create_app
    from tests.unit.test_serve_api import auth, make_settings

    settings = make_settings(classify_model=distilled.model, default_labels=("正面", "负面"), max_text_chars=200)
    with TestClient(create_app(settings)) as client:
        body = {"texts": ["好吃，推荐，满意", "凉了，差劲，太慢了"]}
        answer = client.post("/api/v1/classify/batch", json=body, headers=auth())
        assert answer.status_code == 200, answer.text
        data = answer.json()["data"]
    assert [r["label"] for r in data["results"]] == ["正面", "负面"] and data["model"] == distilled.model


@pytest.mark.slow
def test_the_flows_distil_and_use_registered_students(
    prefect_server: None, distilled: DistillResult, server: FakeZhipuServer, tmp_path: Path
) -> None:
    from prefect.task_runners import ThreadPoolTaskRunner

    from openautoglm.flows.distill import DistillParams, distill
    from openautoglm.flows.run_task import RunTaskParams, run_task

    data = tmp_path / "reviews.csv"
    reviews(60, offset=100).to_csv(data, index=False)
    # Threads, not a Dask LocalCluster (8-15 s here): the flows' wiring is under test; worker processes load a
    # registered model like any other (the environment carries the tracking store).
    threads = ThreadPoolTaskRunner(max_workers=2)
    used = run_task.with_options(task_runner=threads)(
        RunTaskParams(
            source=CsvSource(path=data),
            task=TaskConfig(labels=tuple(LABELS)),
            model=ModelSpec(model=distilled.model),
            label_column="gold",
            output_dir=tmp_path / "run",
        )
    )
    assert used.status_counts == {"ok": 60} and "accuracy" in used.metrics and used.calls == 0
    frame = pd.read_csv(used.results_path, encoding="utf-8-sig")  # the cleaned rows, as the workers saw them
    in_process = TaskPipeline("text_classification", distilled.model).configure(labels=LABELS)
    assert frame["prediction"].tolist() == in_process.run(frame["text"].tolist()).predictions

    server.reset_counts()
    params = DistillParams(
        source=CsvSource(path=data),
        task=TaskConfig(labels=tuple(LABELS), prompt_template=TEMPLATE),
        teacher=ModelSpec(model="glm-4-flash", base_url=server.base_url),
        distill=DistillOptions(name="reviews-student", budget=30, alias="candidate"),
        label_column="gold",
        output_dir=tmp_path / "distill",
    )
    result = distill.with_options(task_runner=threads)(params)
    assert result.version == 2 and result.model == "mlflow:/reviews-student/2"
    assert server.requests == result.metrics["teacher_fresh_calls"] <= 30
    client = MlflowClient(get_settings().tracking_uri)
    assert int(client.get_model_version_by_alias("reviews-student", "candidate").version) == 2
    assert "distill-summary" in flow_run_artifacts(str(result.flow_run_id))
    run = client.get_run(result.mlflow_run_id)
    assert "s3cr3t" not in json.dumps({"params": run.data.params, "tags": run.data.tags})
    assert (result.student_folder / "openautoglm-model.json").is_file()  # type: ignore[operator]
