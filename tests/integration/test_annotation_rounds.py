"""Annotation rounds through Prefect on 200 real waimai_10k reviews, a simulated annotator answering from the gold
column: ``annotation_round`` pre-labels and queues 50 rows (never an evaluation item), ``train_round`` registers a
student with its tags and moves ``candidate`` always and ``production`` only when it scores higher on the evaluation
slice (or by force); and the ``train-round-on-labels`` deployment's event trigger starting ``train_round`` by itself
after 20 answers, on a real ``prefect server start`` with a real worker."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO
from tests.integration.servers import BIN, prefect_server, start, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WAIMAI = Path(os.environ.get("OPENAUTOGLM_DATASETS", REPO.parent / "shared" / "datasets")) / "text" / "waimai_10k"
LABELS = ("正面", "负面")


def waimai(rows: int = 200) -> pd.DataFrame:
    files = sorted(WAIMAI.glob("*.csv"))
    if not files:
        pytest.skip(f"waimai_10k is not under {WAIMAI}")
    frame = pd.read_csv(files[0]).sample(rows, random_state=0)
    return pd.DataFrame({"text": frame["review"].astype(str), "label": [LABELS[1 - int(v)] for v in frame["label"]]})


def new_project(name: str, frame: pd.DataFrame) -> tuple[Any, dict[int, str]]:
    from openautoglm.adapters.annotation_store import AnnotationStore, NewItem, ProjectSpec

    store = AnnotationStore()
    store.create_project(ProjectSpec(name=name, labels=LABELS))
    added = store.add_items(
        name, [NewItem(text=t, row_id=str(i)) for i, t in zip(frame.index, frame["text"], strict=True)]
    )
    return store, dict(zip(added.ids, frame["label"], strict=True))


def answers(items: Any, annotator: str, gold: dict[int, str], *, flip: bool = False) -> list[Any]:
    from openautoglm.adapters.annotation_store import NewAnnotation

    def label(item_id: int) -> str:
        return LABELS[1 - LABELS.index(gold[item_id])] if flip else gold[item_id]

    return [NewAnnotation(item_id=i.id, annotator=annotator, answer=label(i.id), seconds=2.0) for i in items]


def test_rounds_through_prefect_queue_register_and_promote(prefect_server: None, home: Path) -> None:
    from mlflow.tracking import MlflowClient

    from openautoglm.adapters.models import ModelSpec
    from openautoglm.adapters.models.run import predict_rows
    from openautoglm.core.nlp.types import Row, TaskConfig
    from openautoglm.flows.annotation import annotation_round, train_round
    from openautoglm.settings import get_settings
    from openautoglm.usecases.annotation import AnnotationRoundParams, TrainRoundParams, record_labels
    from tests.integration.conftest import task_run_names

    store, gold = new_project("waimai", waimai())
    items = store.items("waimai")
    evaluation = {i.id for i in items if i.eval}
    assert 10 <= len(evaluation) <= 35

    # round 0: the zero-shot cold start pre-labels every row outside the evaluation slice; 50 are queued
    state = annotation_round(AnnotationRoundParams(project="waimai"), return_state=True)
    first_round = state.result()
    assert (first_round.round, first_round.model, first_round.model_source) == (0, "local-auto", "cold-start")
    assert first_round.pool == first_round.predictions == len(items) - len(evaluation)
    assert first_round.queued == 50 and len(set(first_round.item_ids)) == 50
    assert not set(first_round.item_ids) & evaluation
    predictions = {p.item_id: p for p in store.predictions("waimai", round=0)}
    assert set(predictions) == set(gold) - evaluation
    assert all(p.model == "local-auto" and set(p.scores) == set(LABELS) for p in predictions.values())
    queued = [q.item_id for q in store.queue("waimai")]
    assert set(queued) == set(first_round.item_ids)
    margins = [predictions[i].margin for i in queued], [p.margin for i, p in predictions.items() if i not in queued]
    assert np.mean(margins[0]) < np.mean(margins[1])  # the queue holds the rows the model is less sure of
    (recorded,) = store.rounds("waimai")
    assert (recorded.model, recorded.queued, recorded.label_count) == ("local-auto", 50, 0)
    assert sorted(n.rsplit("-", 1)[0] for n in task_run_names(str(state.state_details.flow_run_id))) == [
        "choose-rows",
        "current-model",
        "pre-label",
        "queue-rows",
        "round-pool",
    ]

    # a simulated annotator labels the queue, then the evaluation items; a second one labels the evaluation items
    served = store.next_items("waimai", "alice", 500)
    assert [i.id for i in served[:50]] == queued and {i.id for i in served[50:]} == evaluation
    record_labels("waimai", answers(served, "alice", gold))
    second = store.next_items("waimai", "bob", 500)
    assert {i.id for i in second} == evaluation  # the queue is answered; the evaluation items need a second answer
    record_labels("waimai", answers(second, "bob", gold))
    assert store.next_items("waimai", "carol", 10) == []

    # train: version 1, tagged, candidate and production (nothing held production)
    first = train_round(TrainRoundParams(project="waimai"))
    snapshot = store.label_snapshot("waimai")
    assert (first.trained, first.version, first.label_count, first.eval_items) == (True, 1, 50, len(evaluation))
    assert first.score is not None and first.score > 0.6 and first.aliases == ["candidate", "production"]
    client = MlflowClient(get_settings().tracking_uri)
    tags = client.get_model_version("waimai", "1").tags
    assert (tags["round"], tags["label_count"], tags["label_digest"]) == ("0", "50", snapshot.digest)
    assert str(client.get_model_version_by_alias("waimai", "production").version) == "1"
    curve = client.get_metric_history(first.mlflow_run_id, "eval_score_by_labels")
    assert [(m.step, m.value) for m in curve] == [(50, pytest.approx(first.score))]
    results, _ = predict_rows(  # the API's way to load it
        ModelSpec(model="mlflow:/waimai@candidate"), TaskConfig(labels=LABELS), [Row(0, "太难吃了，再也不点了")]
    )
    assert results[0].status == "ok" and results[0].prediction in LABELS
    assert not train_round(TrainRoundParams(project="waimai")).trained  # the same snapshot: nothing to do

    # labels that make a worse model: candidate moves, production stays
    record_labels("waimai", answers(served[:50], "alice", gold, flip=True))
    worse = train_round(TrainRoundParams(project="waimai"))
    assert (worse.version, worse.previous_version) == (2, "1")
    assert worse.previous_score == pytest.approx(first.score)  # the production model, scored again on the slice
    assert worse.score is not None and worse.score < first.score and worse.aliases == ["candidate"]
    assert str(client.get_model_version_by_alias("waimai", "candidate").version) == "2"
    assert str(client.get_model_version_by_alias("waimai", "production").version) == "1"
    forced = train_round(TrainRoundParams(project="waimai", force=True))  # an admin's
    assert forced.version == 3 and str(client.get_model_version_by_alias("waimai", "production").version) == "3"
    assert [t.model_version for t in store.trainings("waimai")] == ["1", "2", "3"]
    (curve,) = client.search_runs(
        [client.get_run(first.mlflow_run_id).info.experiment_id], "tags.`openautoglm.annotation.curve` = 'waimai'"
    )
    points = [(m.step, m.value) for m in client.get_metric_history(curve.info.run_id, "eval_score")]
    assert points == [(50, pytest.approx(s)) for s in (first.score, worse.score, forced.score)]

    # round 1: the candidate pre-labels what is left
    next_round = annotation_round(AnnotationRoundParams(project="waimai", size=20))
    assert (next_round.round, next_round.model, next_round.model_source) == (1, "mlflow:/waimai/3", "registry")
    assert next_round.pool == len(items) - len(evaluation) - 50 and next_round.queued == 20
    assert not set(next_round.item_ids) & (evaluation | set(queued))


def test_the_trigger_starts_train_round_after_twenty_labels(tmp_path: Path, home: Path) -> None:
    """A real ``prefect server start`` (its triggers service) and a real worker: 19 labels, an evaluation answer and
    a re-answer start nothing; the 20th label starts the ``train-round-on-labels`` deployment for that project (one
    ``openautoglm.annotation.due`` event), and the worker registers a version."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterDeploymentId
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from openautoglm.deploy import deploy

    store, gold = new_project("trigger", waimai(120))
    pool = [i.id for i in store.items("trigger") if not i.eval][:40]
    store.queue_items("trigger", 0, pool, strategy="random")
    evaluation = [i.id for i in store.items("trigger") if i.eval]

    def label(ids: list[int], annotator: str) -> None:
        """Answers through record_labels in another process, as the API would (its events drained at exit)."""
        code = (
            "import sys, json\n"
            "from prefect.events.worker import EventsWorker\n"
            "from openautoglm.adapters.annotation_store import AnnotationStore, NewAnnotation\n"
            "from openautoglm.usecases.annotation import record_labels\n"
            "gold = {int(k): v for k, v in json.loads(sys.argv[1]).items()}\n"
            f"record_labels('trigger', [NewAnnotation(item_id=i, annotator='{annotator}', answer=gold[i])"
            f" for i in {ids}])\n"
            "EventsWorker.drain_all()\n"
        )
        import json

        done = subprocess.run(
            [sys.executable, "-c", code, json.dumps(gold)],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]

    with prefect_server(tmp_path / "server") as api_url, temporary_settings(updates={PREFECT_API_URL: api_url}):
        env = {"PREFECT_API_URL": api_url, "OPENAUTOGLM_HOME": str(home), "PREFECT_HOME": str(tmp_path / "client")}
        (deployed,) = deploy(only=["train-round-on-labels"])
        with get_client(sync_client=True) as client:
            limit = client.read_deployment(UUID(deployed.deployment_id)).global_concurrency_limit
            assert limit is not None and limit.limit == 1  # one training at a time (prefect.yaml)
            automations = [a for a in client.read_automations() if a.enabled]
            assert len(automations) == 1 and automations[0].trigger.threshold == 1
            only = FlowRunFilter(deployment_id=FlowRunFilterDeploymentId(any_=[UUID(deployed.deployment_id)]))

            def runs() -> list[Any]:
                return client.read_flow_runs(flow_run_filter=only)

            worker = start([str(BIN / "openautoglm"), "worker", "--pool", "openautoglm-pool"], env, tmp_path / "w.log")
            try:
                label(pool[:19], "alice")
                label(evaluation[:1], "alice")  # the evaluation slice holds no training label
                label(pool[:1], "bob")  # a second answer to a labelled item: no new label
                time.sleep(15)
                assert runs() == [], "19 labels (and 21 answers) started a run"
                labelled = time.monotonic()  # the clock includes the labelling process's start (imports)
                label(pool[19:20], "alice")
                deadline = labelled + 120
                while time.monotonic() < deadline and not runs():
                    time.sleep(1)
                (run,) = runs()
                created = time.monotonic() - labelled
                assert run.parameters["params"] == {"project": "trigger", "min_new_labels": None}
                deadline = time.monotonic() + 400
                while time.monotonic() < deadline:
                    state = client.read_flow_run(run.id).state
                    if state is not None and state.is_final():
                        break
                    time.sleep(1)
                assert state is not None and state.is_completed(), (tmp_path / "w.log").read_text()[-4000:]
                trained = time.monotonic() - labelled
            finally:
                stop(worker)
    print(f"20th label -> run created {created:.1f} s, -> version registered {trained:.1f} s")
    (tmp_path.parent / "label_to_trained_s.txt").write_text(f"{created:.1f} {trained:.1f}")
    (training,) = store.trainings("trigger")
    assert (training.model_name, training.model_version, training.label_count) == ("trigger", "1", 20)
    assert "candidate" in training.aliases


def msra(sentences: int) -> list[tuple[str, tuple[Any, ...]]]:
    """The first ``sentences`` MSRA sentences with their gold entities (BIO, one character a line)."""
    from openautoglm.core.nlp.types import Entity

    path = WAIMAI.parent / "msra_ner" / "msra_bio.txt"
    if not path.is_file():
        pytest.skip(f"MSRA NER is not at {path}")
    out: list[tuple[str, tuple[Any, ...]]] = []
    rows: list[tuple[str, str]] = []
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if line.strip():
            char, tag = line.split()
            rows.append((char, tag))
            continue
        if rows:
            text, entities, start, kind = "".join(c for c, _ in rows), [], None, ""
            for i, (_, tag) in enumerate([*rows, ("", "O")]):
                if start is not None and not tag.startswith("I-"):
                    entities.append(Entity(text[start:i], kind, start, i))
                    start = None
                if tag.startswith("B-"):
                    start, kind = i, tag[2:]
            out.append((text, tuple(entities)))
            rows = []
        if len(out) == sentences:
            break
    return out


def test_ner_rounds_pre_label_with_lac_and_register_a_crf_student(prefect_server: None, home: Path) -> None:
    from openautoglm.adapters.annotation_store import AnnotationStore, NewItem, ProjectSpec
    from openautoglm.flows.annotation import annotation_round, train_round
    from openautoglm.usecases.annotation import AnnotationRoundParams, TrainRoundParams, record_labels

    sentences = msra(120)
    store = AnnotationStore()
    store.create_project(ProjectSpec(name="places", task_type="ner", entity_types=("PER", "LOC", "ORG")))
    ids = store.add_items("places", [NewItem(text=t) for t, _ in sentences]).ids
    gold = dict(zip(ids, [e for _, e in sentences], strict=True))
    evaluation = {i.id for i in store.items("places") if i.eval}
    summary = annotation_round(AnnotationRoundParams(project="places", size=40))
    assert (summary.model, summary.queued) == ("local-lac", 40) and not set(summary.item_ids) & evaluation
    assert all(p.entities is not None and p.model == "local-lac" for p in store.predictions("places"))

    def answers(annotator: str) -> list[Any]:
        from openautoglm.adapters.annotation_store import NewAnnotation

        items = store.next_items("places", annotator, 500)
        return [NewAnnotation(item_id=i.id, annotator=annotator, answer=gold[i.id]) for i in items]

    record_labels("places", answers("alice"))
    record_labels("places", answers("bob"))  # the evaluation items' second answers
    agreement = store.agreement("places")
    assert (agreement.unit, agreement.items, agreement.kappa, agreement.span_f1) == (
        "character",
        len(evaluation),
        1.0,
        1.0,
    )
    trained = train_round(TrainRoundParams(project="places"))
    assert (trained.version, trained.label_count, trained.aliases) == (1, 40, ["candidate", "production"])
    assert trained.score is not None and 0.0 < trained.score <= 1.0  # entity F1 on the evaluation slice
    assert annotation_round(AnnotationRoundParams(project="places", size=10)).model == "mlflow:/places/1"
