"""Distillation's pure parts: registry references, the budgeted teacher loop, the split, the student, the metrics;
the student backend on an in-memory model; the job policy on ``mlflow:`` model strings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from openautoglm.adapters.models import BACKENDS, ModelSpec
from openautoglm.adapters.models.student import StudentBackend
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.distill import (
    DistillOptions,
    distill_metrics,
    fit_student,
    holdout_split,
    label_with_budget,
    parse_registry_ref,
    seeded_order,
    student_predict,
    train_student,
)
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig
from openautoglm.core.prompt.budget import BudgetExhausted, charge
from openautoglm.serve.confine import JobPolicy, prepare
from openautoglm.serve.envelope import ApiError

POSITIVE = ["好吃", "推荐", "很快", "满意", "新鲜"]
NEGATIVE = ["难吃", "太慢", "失望", "凉了", "差劲"]


def reviews(n: int) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for i in range(n):
        positive = i % 3 != 0
        words = POSITIVE if positive else NEGATIVE
        texts.append(f"第{i}单{words[i % 5]}，{words[(i + 2) % 5]}")
        labels.append("正面" if positive else "负面")
    return texts, labels


def test_registry_references_name_a_model_and_nothing_else() -> None:
    assert parse_registry_ref("mlflow:/reviews-student/3").uri == "models:/reviews-student/3"
    assert parse_registry_ref("mlflow:/reviews_student.v2@production").uri == "models:/reviews_student.v2@production"
    assert parse_registry_ref("mlflow:/a/12").model == "mlflow:/a/12"
    for bad in (
        "mlflow:/../../etc/passwd",
        "mlflow:/a/0",
        "mlflow:/a",
        "mlflow:runs:/0123/student",
        "mlflow:file:///tmp/model",
        "mlflow:/a/1/extra",
        "mlflow:/a@1bad",
        "mlflow://host/a/1",
        "mlflow:/a/1\n",  # a trailing newline is not part of a name
    ):
        with pytest.raises(ConfigurationError, match="not a registered model reference"):
            parse_registry_ref(bad)
    assert ModelSpec(model="mlflow:/a/1").backend == "mlflow" and BACKENDS.resolve("mlflow").local_batches


def test_the_teacher_is_never_asked_past_the_budget() -> None:
    rows = [Row(row_id=i, text=f"t{i}") for i in range(100)]
    sent: list[int] = []

    def chat_teacher(batch: list[Row]) -> tuple[list[RowResult], int]:
        for row in batch:  # each row one request, every fifth a repair round too (two requests)
            charge(f"answer-{row.row_id}")
            if row.row_id % 5 == 0:
                charge(f"repair-{row.row_id}")
        sent.extend(r.row_id for r in batch)
        return [RowResult(row_id=r.row_id, prediction="a") for r in batch], len(batch)

    labels = label_with_budget(rows, chat_teacher, budget=37, batch_size=16, calls_per_row=2, meter=True)
    assert labels.calls <= 37 and labels.rows_sent == len(sent) == len(labels.results)
    assert labels.rows_sent >= 25  # batches shrink to what is left, they do not stop at the first shortfall
    assert sent == list(range(labels.rows_sent))  # in the order given

    local = label_with_budget(
        rows, lambda b: ([RowResult(row_id=r.row_id, prediction=None) for r in b], None), budget=30
    )
    assert local.rows_sent == local.calls == 30 and local.fresh_calls is None
    with pytest.raises(ConfigurationError):
        label_with_budget(rows, chat_teacher, budget=0)


def test_a_teacher_that_overspends_is_stopped_by_the_meter() -> None:
    rows = [Row(row_id=i, text="t") for i in range(10)]

    def greedy(batch: list[Row]) -> tuple[list[RowResult], None]:
        for row in batch:
            for attempt in range(3):  # three requests a row, more than the declared two
                charge(f"{row.row_id}-{attempt}")
        return [RowResult(row_id=r.row_id, prediction=None) for r in batch], None

    with pytest.raises(BudgetExhausted):
        label_with_budget(rows, greedy, budget=10, calls_per_row=2, meter=True)


def test_order_and_split_are_seeded_and_disjoint() -> None:
    assert seeded_order(50, 0) == seeded_order(50, 0) != seeded_order(50, 1)
    train, held = holdout_split(50, 0.2, seed=0)
    assert len(held) == 10 and not set(train) & set(held) and sorted(train + held) == list(range(50))
    assert holdout_split(50, 0.2, seed=0) == (train, held)
    assert holdout_split(1, 0.5, 0) == ([0], []) and holdout_split(5, 0.0, 0) == ([0, 1, 2, 3, 4], [])
    with pytest.raises(ConfigurationError):
        holdout_split(10, 0.95, 0)


def test_the_student_learns_the_teacher_and_is_measured_on_held_out_rows() -> None:
    texts, labels = reviews(90)
    student = train_student("tfidf-linear", texts, labels)
    assert student_predict(student, ["好吃推荐", "难吃失望"]) == ["正面", "负面"]
    with pytest.raises(ConfigurationError, match="two labels"):
        train_student("tfidf-linear", texts[:3], ["正面"] * 3)

    results = [RowResult(row_id=i, prediction=label) for i, label in enumerate(labels)]
    results[4] = RowResult(row_id=4, prediction=None, status="error", reason="500: boom")
    results[5] = RowResult(row_id=5, prediction="中性")  # not a label of the set: not a training row
    gold = {i: label for i, label in enumerate(labels)}
    fit = fit_student(dict(enumerate(texts)), results, gold, DistillOptions(name="s", holdout=0.25), ["正面", "负面"])
    assert fit.labels == ["正面", "负面"] and fit.metrics["teacher_unusable_rows"] == 2
    assert fit.metrics["holdout_rows"] == 22 and fit.metrics["train_rows"] == 66
    assert fit.metrics["agreement"] >= 0.9 and fit.metrics["accuracy_ratio"] >= 0.9


def test_metrics_compare_student_teacher_and_gold() -> None:
    metrics = distill_metrics(["a", "a", "b", "b"], ["a", "b", "b", "b"], ["a", "a", None, "b"])
    assert metrics["agreement"] == 0.75 and metrics["gold_rows"] == 3
    assert metrics["student_accuracy"] == 1.0 and metrics["teacher_accuracy"] == round(2 / 3, 4)
    assert metrics["accuracy_ratio"] == 1.5
    assert "student_accuracy" not in distill_metrics(["a"], ["a"])


def test_options_refuse_names_a_model_string_cannot_hold() -> None:
    with pytest.raises(ValueError, match="cannot be a registered model name"):
        DistillOptions(name="my model")
    with pytest.raises(ValueError, match="not a registered model reference"):
        DistillOptions(name="ok", alias="../x")
    with pytest.raises(ValueError, match="Could not resolve"):
        DistillOptions(name="ok", student="gpt")


def test_student_backend_answers_in_the_labels_asked_for() -> None:
    texts, labels = reviews(60)
    backend = StudentBackend("mlflow:/s/1", train_student("tfidf-linear", texts, labels), "tfidf-linear")
    rows = [Row(row_id=7, text="好吃推荐"), Row(row_id=8, text="难吃失望")]
    results, stats = backend.predict(TaskConfig(labels=("负面", "正面")), rows, cache=None)  # type: ignore[arg-type]
    assert [r.prediction for r in results] == ["正面", "负面"] and [r.row_id for r in results] == [7, 8]
    assert json.loads(results[0].raw)["method"] == "student" and stats.calls == 0
    with pytest.raises(ConfigurationError, match="never learned"):
        backend.predict(TaskConfig(labels=("正面", "负面", "中性")), rows, cache=None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="cannot do ner"):
        backend.predict(TaskConfig(task_type="ner"), rows, cache=None)  # type: ignore[arg-type]


def test_jobs_may_name_a_registered_model_but_not_locate_one(tmp_path: Path) -> None:
    defaults = {
        "params": {
            "source": {"kind": "csv", "path": "examples/user_feedback.csv"},
            "task": {"task_type": "text_classification", "labels": ["正面", "负面"]},
            "model": {"model": "local-use"},
        }
    }
    policy = JobPolicy(data_roots=(tmp_path,))
    for model in ("mlflow:/reviews-student/2", "mlflow:/reviews-student@production"):
        out = prepare("run_task", defaults, {"params": {"model": {"model": model}}}, policy)
        assert out["params"]["model"]["model"] == model
    for model in ("mlflow:/../../etc/passwd", "mlflow:file:///etc/passwd", "MLFLOW:runs:/abc/student"):
        with pytest.raises(ApiError) as caught:
            prepare("run_task", defaults, {"params": {"model": {"model": model}}}, policy)
        assert caught.value.code.http_status == 422 and "not a registered model reference" in caught.value.message


def test_distill_jobs_may_register_a_version_but_not_move_an_alias(tmp_path: Path) -> None:
    import yaml

    from tests.conftest import REPO

    deployments = yaml.safe_load((REPO / "deployments" / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
    defaults = next(d for d in deployments if d["name"] == "distill-example")["parameters"]
    policy = JobPolicy(data_roots=(tmp_path,))
    out = prepare("distill", defaults, {"params": {"distill": {"name": "mine", "budget": 50}}}, policy)
    assert out["params"]["distill"]["name"] == "mine" and out["params"]["distill"]["budget"] == 50
    for params, match in (
        ({"distill": {"alias": "production"}}, "set by the deployment only"),
        ({"teacher": {"model": "glm-4-flash", "base_url": "http://evil.example/"}}, "chosen by the server"),
        ({"teacher": {"model": "mlflow:/../x/1"}}, "not a registered model reference"),
        ({"credentials_block": "zhipu"}, "chosen by the server"),
    ):
        with pytest.raises(ApiError) as caught:
            prepare("distill", defaults, {"params": params}, policy)
        assert caught.value.code.http_status == 422 and match in caught.value.message, caught.value.message


def test_the_cli_refuses_a_bad_model_name_before_any_flow_run() -> None:
    from typer.testing import CliRunner

    from openautoglm.cli import app
    from tests.conftest import EXAMPLES

    result = CliRunner().invoke(
        app, ["distill", str(EXAMPLES / "user_feedback.csv"), "--name", "my model", "--labels", "正面,负面,中性"]
    )
    assert result.exit_code == 2 and "'my model' cannot be a registered model name" in " ".join(result.output.split())


def test_a_ner_student_learns_usable_teacher_answers_and_is_scored_against_teacher_and_gold() -> None:
    from openautoglm.core.nlp.distill import default_student, fit_ner_student
    from openautoglm.core.nlp.types import Entity

    texts = {i: f"张伟第{i}次去北京。" for i in range(10)}
    per, loc = Entity("张伟", "PER", 0, 2), Entity("北京", "LOC", 6, 8)
    results = [RowResult(row_id=i, prediction=(per, loc)) for i in range(8)]
    results.append(RowResult(row_id=8, prediction=(Entity("上海", "LOC", 0, 2),)))  # not in its sentence: unusable
    results.append(RowResult(row_id=9, prediction=None, status="parse_error"))
    learned: list[int] = []

    def learn(sentences: list[object]) -> str:
        learned.append(len(sentences))
        return "model"

    def predict(model: str, batch: list[str]) -> list[tuple[Entity, ...]]:
        return [(per,) for _ in batch]  # finds the person, misses the place

    gold = {i: json.dumps([{"text": "张伟", "type": "PER"}, {"text": "北京", "type": "LOC"}]) for i in range(10)}
    fit = fit_ner_student(texts, results, gold, DistillOptions(name="s", holdout=0.25), learn=learn, predict=predict)
    assert fit.metrics["teacher_unusable_rows"] == 2 and learned == [fit.metrics["train_rows"]] == [6]
    assert fit.metrics["holdout_rows"] == 2 and fit.metrics["agreement_f1"] == pytest.approx(2 / 3, abs=1e-3)
    assert fit.metrics["teacher_f1"] == 1.0 and fit.metrics["student_f1"] == pytest.approx(2 / 3, abs=1e-3)
    assert fit.metrics["gold_rows"] == 2 and fit.metrics["f1_ratio"] == pytest.approx(2 / 3, abs=1e-3)
    assert fit.labels == ["LOC", "PER"] and default_student("ner") == "crf_ner"
    with pytest.raises(ConfigurationError, match="none of 2 sentences"):
        fit_ner_student(texts, results[8:], None, DistillOptions(name="s"), learn=learn, predict=predict)
