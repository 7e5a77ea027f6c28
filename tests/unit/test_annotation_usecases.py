"""The annotation use cases without models (usecases/annotation.py): recording labels emits one event when a training
becomes due,
the pool and the queue of a round, when a training is due, the parameter models, and a round wired through its steps.
The model-backed steps run for real in tests/integration/test_annotation_rounds.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from openautoglm.adapters.annotation_store import NewAnnotation, NewItem, ProjectSpec, Training
from openautoglm.core.nlp.types import RowResult
from openautoglm.usecases import annotation as uc

LABELS = ("正面", "负面")


@pytest.fixture
def store(home: Path) -> Any:
    opened = uc.open_store()
    opened.create_project(ProjectSpec(name="shop", labels=LABELS, eval_share=0.3, eval_seed=1))
    opened.add_items("shop", [NewItem(text=f"评论 {i}", row_id=i) for i in range(30)])
    yield opened
    opened.close()


def split(store: Any) -> tuple[list[int], list[int]]:
    items = store.items("shop")
    return [i.id for i in items if i.eval], [i.id for i in items if not i.eval]


def test_recording_labels_emits_one_due_event_when_the_labels_cross_the_threshold(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import prefect.events
    from prefect.settings import PREFECT_API_URL, temporary_settings

    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(prefect.events, "emit_event", lambda **event: sent.append(event))
    monkeypatch.setattr(uc, "train_every", lambda: 3)
    evaluation, rest = split(store)

    def answer(ids: list[int], who: str = "alice") -> int:
        return uc.record_labels(
            "shop", [NewAnnotation(item_id=i, annotator=who, answer="正面") for i in ids], store=store
        )

    with temporary_settings(updates={PREFECT_API_URL: None}):
        answer(rest[:3])
    assert sent == []  # no server named: no event (and no ephemeral server started for one)
    assert uc.new_labels(store, "shop") == 3
    store.record_training(
        "shop", Training(round=0, label_count=3, label_digest="d", model_name="shop", model_version="1")
    )
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        answer(rest[3:5])
        answer(evaluation[:2])  # evaluation answers are not training labels
        answer(rest[3:5], who="bob")  # second answers to labelled items: no new label
        answer([rest[3]])  # a re-answer
        assert sent == [] and uc.new_labels(store, "shop") == 2
        assert answer([rest[5]]) == 1  # the third new label: due
        assert [e["event"] for e in sent] == [uc.DUE_EVENT]
        assert sent[0]["resource"]["prefect.resource.id"] == "openautoglm.annotation.project.shop"
        assert sent[0]["payload"] == {"new_labels": 3, "train_every": 3}
        store.delete_annotation("shop", rest[5], "alice")  # an undo: 2 new labels again
        answer([rest[5]])  # and the answer given anew: 3 again, said once already
        answer(rest[6:8])
        assert len(sent) == 1  # still due, not crossed again
        answer(rest[8:12])  # 4 at once cross 6 and 9: one event, however many answers
        assert [e["payload"]["new_labels"] for e in sent] == [3, 9]

        def broken(**event: Any) -> None:
            raise RuntimeError("no server")

        monkeypatch.setattr(prefect.events, "emit_event", broken)
        assert answer(rest[12:15]) == 3  # 12 crossed, no event sent; the labels are stored all the same
        assert store.status("shop").annotations == 19 and uc.new_labels(store, "shop") == 12


def test_of_writers_racing_across_the_threshold_one_says_it(store: Any) -> None:
    assert store.mark_due("shop", 20) and not store.mark_due("shop", 20) and not store.mark_due("shop", 19)
    assert store.mark_due("shop", 40)


def test_the_trigger_threshold_is_declared_once() -> None:
    assert uc.train_every() == uc.TrainRoundParams(project="shop").train_every == 20
    assert uc.TrainRoundParams(project="shop", min_new_labels=None).threshold == 20  # what the deployment passes
    assert uc.TrainRoundParams(project="shop").threshold == 0  # on demand: any new snapshot
    spec = yaml.safe_load((Path(__file__).parents[2] / "deployments" / "prefect.yaml").read_text())
    (deployment,) = [d for d in spec["deployments"] if d["name"] == "train-round-on-labels"]
    (trigger,) = deployment["triggers"]
    assert (trigger["expect"], trigger["threshold"]) == ([uc.DUE_EVENT], 1)
    assert trigger["parameters"]["params"]["min_new_labels"] is None


def test_a_round_pools_unlabelled_rows_outside_the_slice_and_queues_its_choice(store: Any) -> None:
    evaluation, rest = split(store)
    assert evaluation and len(rest) > 10
    store.record_annotation("shop", rest[0], "alice", "正面")
    store.queue_items("shop", 0, [rest[1]], strategy="margin")
    pool = uc.round_pool("shop")
    assert pool.round == 0 and {i.id for i in pool.items} == set(rest[2:])
    assert pool.label_count == 1 and pool.label_digest == store.label_snapshot("shop").digest
    probs = [[0.5 + 0.01 * k, 0.5 - 0.01 * k] for k in range(len(pool.items))]  # the first rows the least sure
    params = uc.AnnotationRoundParams(project="shop", size=3, diverse=False)
    ids, scores = uc.choose_rows(pool, probs, params)
    assert ids == [i.id for i in pool.items[:3]] and scores == sorted(scores, reverse=True)
    current = uc.CurrentModel(model="local-auto", source="cold-start")
    assert uc.queue_rows(pool, current, ids, scores, params.strategy) == 3
    (recorded,) = store.rounds("shop")
    assert (recorded.round, recorded.model, recorded.queued, recorded.label_count) == (0, "local-auto", 3, 1)
    assert uc.round_pool("shop").round == 1


def test_a_round_runs_its_steps_in_order(store: Any) -> None:
    calls: list[str] = []

    def step(name: str, value: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            calls.append(name)
            return value(*args) if callable(value) else value

        return run

    current = uc.CurrentModel(model="fake", source="explicit")
    steps = uc.RoundSteps(
        current_model=step("current", current),
        round_pool=step("pool", uc.round_pool),
        prelabel=step("prelabel", lambda pool, model, size: [[0.6, 0.4]] * len(pool.items)),
        choose_rows=step("choose", uc.choose_rows),
        queue_rows=step("queue", uc.queue_rows),
    )
    summary = uc.annotation_round(uc.AnnotationRoundParams(project="shop", size=4, diverse=False), steps)
    assert calls == ["pool", "current", "prelabel", "choose", "queue"]
    _, rest = split(store)
    assert (summary.round, summary.model, summary.queued, summary.pool) == (0, "fake", 4, len(rest))
    assert [q.item_id for q in store.queue("shop")] == summary.item_ids


def test_training_is_due_after_enough_new_labels_and_never_twice_on_one_snapshot(store: Any) -> None:
    evaluation, rest = split(store)
    assert not uc.train_if_due("shop", 0).due
    for i in evaluation:  # evaluation answers are not training labels
        store.record_annotation("shop", i, "alice", "正面")
    assert uc.train_if_due("shop", 0).label_count == 0
    for k, i in enumerate(rest[:5]):
        store.record_annotation("shop", i, "alice", LABELS[k % 2])
    due = uc.train_if_due("shop", 5)
    assert (due.due, due.label_count, due.new_labels, due.last_label_count) == (True, 5, 5, None)
    assert not uc.train_if_due("shop", 6).due
    store.record_training(
        "shop", Training(round=0, label_count=5, label_digest=due.label_digest, model_name="shop", model_version="1")
    )
    again = uc.train_if_due("shop", 0)
    assert not again.due and "trained on already" in again.reason
    assert uc.train_if_due("shop", 0, name="other-model").due  # another registered model has not seen them
    store.record_annotation("shop", rest[5], "bob", "负面")
    later = uc.train_if_due("shop", 2)
    assert (later.due, later.new_labels, later.last_label_count) == (False, 1, 5)
    assert uc.train_if_due("shop", 1).due


def test_training_data_keeps_the_slice_out_and_takes_its_gold(store: Any) -> None:
    evaluation, rest = split(store)
    for k, i in enumerate(rest[:4]):
        store.record_annotation("shop", i, "alice", LABELS[k % 2])
    store.record_annotation("shop", evaluation[0], "alice", "正面")
    store.record_annotation("shop", evaluation[0], "bob", "正面")  # agreed: gold
    store.record_annotation("shop", evaluation[1], "alice", "正面")  # one answer: not gold yet
    if len(evaluation) > 2:
        store.record_annotation("shop", evaluation[2], "alice", "正面")
        store.record_annotation("shop", evaluation[2], "bob", "负面")
        store.record_annotation("shop", evaluation[2], "rita", "负面", adjudicated=True)  # adjudicated: gold
    data = uc.training_data("shop", max_unlabelled=3, seed=0)
    assert data.labels == {i: LABELS[k % 2] for k, i in enumerate(rest[:4])}
    assert set(data.texts) - set(data.labels) <= set(rest[4:]) and len(data.texts) == 4 + 3
    assert not set(data.texts) & set(evaluation)
    expected = {evaluation[0]: "正面", **({evaluation[2]: "负面"} if len(evaluation) > 2 else {})}
    assert data.eval_gold == expected and set(data.eval_texts) == set(expected)


def test_parameters_check_what_they_can() -> None:
    assert uc.AnnotationRoundParams(project="shop").name == "shop"
    assert uc.TrainRoundParams(project="shop", registered_model="shop-student").name == "shop-student"
    with pytest.raises(ValidationError, match="margin"):
        uc.AnnotationRoundParams(project="shop", strategy="nope")
    with pytest.raises(ValidationError):
        uc.AnnotationRoundParams(project="../etc")
    assert uc.TrainRoundParams(project="shop", model=" local-auto ").model == "local-auto"  # normal form
    scores = uc.result_scores(
        RowResult(row_id=0, prediction="正面", raw='{"scores": {"正面": 0.7, "负面": 0.3}}'), LABELS
    )
    assert scores == {"正面": 0.7, "负面": 0.3}
    assert uc.result_scores(RowResult(row_id=0, prediction="负面"), LABELS) == {"正面": 0.0, "负面": 1.0}


def test_the_learning_curve_is_one_run_per_registered_model(home: Path) -> None:
    from openautoglm.adapters.tracking import ensure_experiment, registry_client

    client, experiment = registry_client(), ensure_experiment("annotation")
    first = uc.learning_curve(client, experiment, "shop", 50, 0.7, 0)
    again = uc.learning_curve(client, experiment, "shop", 100, 0.8, 1)
    other = uc.learning_curve(client, experiment, "other", 50, 0.6, 0)
    assert first == again != other
    assert [(m.step, m.value) for m in client.get_metric_history(first, "eval_score")] == [(50, 0.7), (100, 0.8)]
    assert [(m.step, m.value) for m in client.get_metric_history(first, "round")] == [(50, 0), (100, 1)]
