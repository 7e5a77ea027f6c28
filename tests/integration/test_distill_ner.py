"""NER distillation end to end: a GLM teacher (the fake Zhipu server through the real zhipuai SDK) tags sentences
within a budget, a ``crf-ner`` student (the CRF over characters and LAC's tags) learns its entities and is
registered in MLflow's Model Registry; the SDK (by version and from its folder), the REST API and MLflow's own
pyfunc loader use it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from openautoglm import TaskPipeline
from openautoglm.adapters.distill import DistillResult
from openautoglm.testing import FakeZhipuServer

pytestmark = [pytest.mark.integration]

PEOPLE = ["张伟", "李娜", "王芳", "刘洋", "陈静", "杨磊"]
PLACES = ["北京", "上海", "广州", "深圳", "杭州", "成都"]
FRAMES = ["{p}昨天去了{c}。", "{p}在{c}工作了三年。", "听说{p}下个月要回{c}。", "{c}的朋友都很喜欢{p}。"]
KEY = "ner-distil-id.s3cr3t-ner"


def teacher_answer(messages: list[dict[str, str]]) -> str:
    """The stand-in GLM tags the names and cities it knows; it misses 杨磊 (gold has it)."""
    text = messages[-1]["content"]
    found = [{"text": p, "type": "PER"} for p in PEOPLE[:-1] if p in text]
    found += [{"text": c, "type": "LOC"} for c in PLACES if c in text]
    return json.dumps({"entities": found}, ensure_ascii=False)


def sentences(n: int) -> pd.DataFrame:
    rows = []
    for i in range(n):
        person, place = PEOPLE[i % 6], PLACES[(i * 5 + 1) % 6]
        text = FRAMES[i % 4].format(p=person, c=place)
        gold = [{"text": person, "type": "PER"}, {"text": place, "type": "LOC"}]
        rows.append({"text": text, "entities": json.dumps(gold, ensure_ascii=False)})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def distilled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DistillResult]:
    patch = pytest.MonkeyPatch()
    with FakeZhipuServer(api_key=KEY, responder=teacher_answer) as fake:
        patch.setenv("ZHIPUAI_API_KEY", fake.api_key)
        teacher = TaskPipeline("ner", "glm-4-flash", base_url=fake.base_url, batch_size=16)
        teacher.configure(entity_types=["PER", "LOC"])
        result = teacher.distill(
            sentences(60),
            name="ner-student",
            budget=100,
            label_column="entities",
            output_dir=tmp_path_factory.mktemp("ner"),
        )
        result.metrics["server_requests"] = fake.requests
        yield result
    patch.undo()


def test_the_crf_student_learns_the_teachers_entities_and_is_registered(distilled: DistillResult) -> None:
    from mlflow.tracking import MlflowClient

    from openautoglm.settings import get_settings

    metrics = distilled.metrics
    assert distilled.model == "mlflow:/ner-student/1" and distilled.labels == ["LOC", "PER"]
    assert metrics["server_requests"] <= 100 and metrics["teacher_calls"] <= 100
    assert metrics["teacher_unusable_rows"] == 0 and metrics["teacher_rows_labelled"] == 60
    assert metrics["train_rows"] + metrics["holdout_rows"] == 60
    assert metrics["agreement_f1"] >= 0.9  # the student reproduces the teacher on sentences it never saw
    assert metrics["teacher_f1"] < 1.0 and metrics["gold_rows"] == metrics["holdout_rows"]  # the teacher misses 杨磊
    version = MlflowClient(get_settings().tracking_uri).get_model_version("ner-student", "1")
    assert float(version.tags["agreement_f1"]) == metrics["agreement_f1"]
    assert distilled.folder is not None and (distilled.folder / "MLmodel").is_file()


def test_the_sdk_the_folder_and_the_rest_api_use_it(distilled: DistillResult) -> None:
    from openautoglm.serve.app import create_app
    from tests.unit.test_serve_api import auth, make_settings

    text = "王芳在深圳工作了三年。"
    registered = TaskPipeline("ner", distilled.model).configure(entity_types=["PER", "LOC"]).run([text])
    entities = {(e.text, e.type) for e in registered.results[0].prediction}
    assert entities == {("王芳", "PER"), ("深圳", "LOC")}  # (its one call: LAC tagging the sentence, offline)
    folder = TaskPipeline("ner", f"local:{distilled.folder}").configure(entity_types=["PER", "LOC"]).run([text])
    assert folder.results[0].prediction == registered.results[0].prediction

    with TestClient(create_app(make_settings(ner_model=distilled.model))) as client:
        answer = client.post("/api/v1/ner", json={"text": text}, headers=auth())
    assert answer.status_code == 200, answer.text
    assert {(e["text"], e["type"]) for e in answer.json()["data"]["entities"]} == entities


def test_mlflow_users_load_it_as_a_pyfunc(distilled: DistillResult) -> None:
    import mlflow.pyfunc

    from openautoglm.settings import get_settings

    mlflow.set_tracking_uri(get_settings().tracking_uri)
    model = mlflow.pyfunc.load_model("models:/ner-student/1")
    [out] = model.predict(pd.DataFrame({"text": ["李娜昨天去了杭州。"]}))
    assert {(e["text"], e["type"]) for e in json.loads(out)} == {("李娜", "PER"), ("杭州", "LOC")}


@pytest.mark.slow
def test_the_run_task_flow_tags_with_it(prefect_server: None, distilled: DistillResult, tmp_path: Path) -> None:
    from prefect.task_runners import ThreadPoolTaskRunner

    from openautoglm.adapters.models import ModelSpec
    from openautoglm.adapters.sources import CsvSource
    from openautoglm.core.nlp.types import TaskConfig
    from openautoglm.flows.run_task import RunTaskParams, run_task

    data = tmp_path / "sentences.csv"
    sentences(12).to_csv(data, index=False)
    result = run_task.with_options(task_runner=ThreadPoolTaskRunner(max_workers=2))(
        RunTaskParams(
            source=CsvSource(path=data),
            task=TaskConfig(task_type="ner", entity_types=("PER", "LOC")),
            model=ModelSpec(model=distilled.model),
            label_column="entities",
            output_dir=tmp_path / "run",
        )
    )
    assert result.status_counts == {"ok": 12} and result.metrics["f1"] >= 0.8  # gold: every name and city
