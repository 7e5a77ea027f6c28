"""The annotation routes in-process (FastAPI TestClient, a SQLite annotation store in tmp): the route x role
matrix, grants confining annotators and reviewers to their projects (also as a property over generated grants),
the labelling loop (next with the pre-label, answer, skip, undo), double labelling, kappa, disagreements and
adjudication, export pages, and hostile bodies."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openautoglm.adapters.annotation_store import AnnotationStore, NewPrediction, Round
from openautoglm.serve.app import create_app
from openautoglm.serve.auth import ROUTE_ROLES
from openautoglm.serve.settings import ServeSettings
from openautoglm.serve.testing import Signer, keys_json

SIGNER = Signer.ec("annotate-1")
BASE = "/api/v1/annotation"
LABELS = ["正面", "负面"]
TEXTS = [f"第{i}条评论：{'很好吃' if i % 2 else '太难吃了'}" for i in range(12)]


def auth(sub: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SIGNER.token(sub, list(roles))}"}


ADMIN = auth("ada", "admin")


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'annotations.db'}"
    monkeypatch.setenv("OPENAUTOGLM_ANNOTATIONS_URL", url)
    return url


@pytest.fixture
def client(db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    settings_ = ServeSettings(
        classify_model="serve-fake",
        ner_model="serve-fake",
        match_model="serve-fake",
        cache="off",
        preload=False,
        jwt_keys=keys_json(SIGNER),
        rate_limit="100000/minute",
        workflows_url=f"sqlite:///{tmp_path / 'workflows.db'}",
    )
    with TestClient(create_app(settings_)) as c:
        yield c


def data(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "data", "message"}
    return body["data"]


def make_project(
    client: TestClient, db: str, name: str = "reviews", *, eval_share: float = 0.0, queue: bool = True
) -> list[int]:
    """A classification project with TEXTS, pre-labelled by a fake model and queued in round 1; the item ids."""
    spec = {"name": name, "task_type": "text_classification", "labels": LABELS, "eval_share": eval_share}
    data(client.post(f"{BASE}/projects", json=spec, headers=ADMIN))
    ids = data(
        client.post(f"{BASE}/projects/{name}/items", json={"items": [{"text": t} for t in TEXTS]}, headers=ADMIN)
    )["ids"]
    store = AnnotationStore(db)
    held = {i.id: i for i in store.items(name)}
    plain = [i for i in ids if not getattr(held[i], "eval", False)]
    predictions = [
        NewPrediction(item_id=i, label=LABELS[n % 2], scores={LABELS[n % 2]: 0.8, LABELS[1 - n % 2]: 0.2})
        for n, i in enumerate(ids)
    ]
    store.add_predictions(name, predictions, round=1, model="fake-model", model_version="3")
    if queue:
        store.queue_items(name, 1, plain, strategy="margin")
        store.record_round(name, Round(round=1, model="fake-model", model_version="3", queued=len(plain)))
    store.close()
    return list(ids)


def grant(client: TestClient, project: str, role: str, subject: str) -> None:
    data(client.put(f"{BASE}/projects/{project}/grants/{role}/{subject}", headers=ADMIN))


# --- the route x role matrix ---------------------------------------------------------------------------------
EXPECTED = {  # written out independently of ROUTE_ROLES
    "annotator": {
        "annotation_projects",
        "annotation_project",
        "annotation_status",
        "annotation_next",
        "annotation_answer",
        "annotation_skip",
        "annotation_undo",
    },
    "reviewer": {
        "annotation_projects",
        "annotation_project",
        "annotation_status",
        "annotation_disagreements",
        "annotation_adjudicate",
        "annotation_export",
    },
    "viewer": set(),
    "operator": set(),
}
ROUTES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "annotation_projects": ("GET", "/projects", None),
    "annotation_create": ("POST", "/projects", {"name": "other", "labels": ["a", "b"]}),
    "annotation_project": ("GET", "/projects/reviews", None),
    "annotation_items_add": ("POST", "/projects/reviews/items", {"items": [{"text": "新的一条"}]}),
    "annotation_grants": ("GET", "/projects/reviews/grants", None),
    "annotation_grant": ("PUT", "/projects/reviews/grants/annotator/zoe", None),
    "annotation_revoke": ("DELETE", "/projects/reviews/grants/annotator/zoe", None),
    "annotation_next": ("GET", "/projects/reviews/next", None),
    "annotation_answer": ("POST", "/projects/reviews/answers", {"item_id": 1, "label": "正面"}),
    "annotation_skip": ("POST", "/projects/reviews/skip", {"item_id": 2}),
    "annotation_undo": ("POST", "/projects/reviews/undo", None),
    "annotation_status": ("GET", "/projects/reviews/status", None),
    "annotation_disagreements": ("GET", "/projects/reviews/disagreements", None),
    "annotation_adjudicate": ("POST", "/projects/reviews/adjudications", {"item_id": 3, "label": "负面"}),
    "annotation_export": ("GET", "/projects/reviews/export", None),
}


def test_matrix_covers_every_annotation_route() -> None:
    documented = {r for r in ROUTE_ROLES if r.startswith("annotation_")} - {"annotation_round"}  # tested below
    assert set(ROUTES) == documented
    for role, allowed in EXPECTED.items():
        assert {r for r in documented if role in ROUTE_ROLES[r]} == allowed
    assert all("admin" in ROUTE_ROLES[r] for r in documented)


@pytest.mark.parametrize("role", [*EXPECTED, "admin", "none"])
def test_role_matrix(client: TestClient, db: str, role: str) -> None:
    make_project(client, db)
    for grant_role in ("annotator", "reviewer"):
        grant(client, "reviews", grant_role, "sam")  # the project is granted: only the token's role decides
    headers = auth("sam", *([] if role == "none" else [role]))
    for route, (method, path, body) in ROUTES.items():
        response = client.request(method, BASE + path, json=body, headers=headers)
        payload = response.json()
        assert set(payload) == {"code", "data", "message"}
        if role == "admin" or route in EXPECTED.get(role, set()):
            assert response.status_code == 200, (route, response.text)
        else:
            assert (response.status_code, payload["code"]) == (403, 40300), (route, response.text)


# --- grants --------------------------------------------------------------------------------------------------


def test_an_annotator_sees_and_labels_only_granted_projects(client: TestClient, db: str) -> None:
    make_project(client, db, "reviews")
    other = make_project(client, db, "secret")
    ann = auth("ann", "annotator")
    assert data(client.get(f"{BASE}/projects", headers=ann))["projects"] == []
    for path in ("/projects/reviews/next", "/projects/reviews/status", "/projects/reviews"):
        refused = client.get(BASE + path, headers=ann)
        assert (refused.status_code, refused.json()["code"]) == (404, 40400), refused.text
    grant(client, "reviews", "annotator", "ann")
    listed = data(client.get(f"{BASE}/projects", headers=ann))["projects"]
    assert [(p["name"], p["roles"]) for p in listed] == [("reviews", ["annotator"])]
    assert data(client.get(f"{BASE}/projects/reviews/next", headers=ann))["item"] is not None
    # another project's name, or its item through the granted project, is "no such project/item"
    assert client.get(f"{BASE}/projects/secret/next", headers=ann).status_code == 404
    crossing = client.post(f"{BASE}/projects/reviews/answers", json={"item_id": other[0], "label": "正面"}, headers=ann)
    assert crossing.status_code == 404, crossing.text
    assert AnnotationStore(db).annotations("secret") == []
    # a reviewer grant does not let an annotator token adjudicate, nor an annotator grant a reviewer token label
    grant(client, "reviews", "reviewer", "ann")
    assert (
        client.post(
            f"{BASE}/projects/reviews/adjudications", json={"item_id": 1, "label": "正面"}, headers=ann
        ).status_code
        == 403
    )
    rev = auth("rita", "reviewer")
    grant(client, "reviews", "annotator", "rita")
    assert client.get(f"{BASE}/projects/reviews/next", headers=rev).status_code == 403
    assert client.get(f"{BASE}/projects/reviews/disagreements", headers=rev).status_code == 404  # no reviewer grant
    # revoking takes the project away again
    assert data(client.delete(f"{BASE}/projects/reviews/grants/annotator/ann", headers=ADMIN)) == {"revoked": True}
    assert client.get(f"{BASE}/projects/reviews/next", headers=ann).status_code == 404


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    grants=st.sets(st.tuples(st.sampled_from(["reviews", "secret"]), st.sampled_from(["annotator", "reviewer"]))),
    roles=st.sets(st.sampled_from(["annotator", "reviewer", "viewer", "operator"])),
    route=st.sampled_from(
        ["annotation_next", "annotation_status", "annotation_disagreements", "annotation_export", "annotation_skip"]
    ),
    project=st.sampled_from(["reviews", "secret"]),
)
def test_access_is_the_token_role_and_a_grant(
    granted_client: tuple[TestClient, dict[str, list[int]], list[str]],
    grants: set[tuple[str, str]],
    roles: set[str],
    route: str,
    project: str,
) -> None:
    client, ids, subjects = granted_client
    subject = f"u{len(subjects)}"  # a fresh subject per example: grants never leak between examples
    subjects.append(subject)
    for name, role in grants:
        grant(client, name, role, subject)
    method, path, body = ROUTES[route]
    body = body and {**body, "item_id": ids[project][1]}  # an item of the project asked about
    response = client.request(
        method, BASE + path.replace("/reviews", f"/{project}"), json=body, headers=auth(subject, *roles)
    )
    needs = {"annotation_next": "annotator", "annotation_skip": "annotator", "annotation_status": None}.get(
        route, "reviewer"
    )
    if not roles & ROUTE_ROLES[route]:
        assert response.status_code == 403, response.text
    elif needs is None:
        usable = {r for p, r in grants if p == project} & roles
        assert response.status_code == (200 if usable else 404), response.text
    else:
        allowed = (project, needs) in grants and needs in roles
        assert response.status_code == (200 if allowed else 404), response.text


@pytest.fixture
def granted_client(client: TestClient, db: str) -> tuple[TestClient, dict[str, list[int]], list[str]]:
    ids = {name: make_project(client, db, name) for name in ("reviews", "secret")}
    return client, ids, []


# --- labelling -----------------------------------------------------------------------------------------------


def test_next_answer_skip_undo(client: TestClient, db: str) -> None:
    make_project(client, db)
    grant(client, "reviews", "annotator", "ann")
    ann = auth("ann", "annotator")
    first = data(client.get(f"{BASE}/projects/reviews/next", headers=ann))
    item = first["item"]
    assert first["prelabel"]["model"] == "fake-model" and first["prelabel"]["model_version"] == "3"
    assert first["prelabel"]["label"] in LABELS and first["prelabel"]["confidence"] == pytest.approx(0.8)
    answered = data(
        client.post(
            f"{BASE}/projects/reviews/answers",
            json={"item_id": item["id"], "label": "负面", "seconds": 2.5},
            headers=ann,
        )
    )
    assert answered["answer"]["label"] == "负面"
    second = data(client.get(f"{BASE}/projects/reviews/next", headers=ann))["item"]
    assert second["id"] != item["id"]
    after_skip = data(client.post(f"{BASE}/projects/reviews/skip", json={"item_id": second["id"]}, headers=ann))
    assert after_skip["item"]["id"] not in (item["id"], second["id"])
    undone = data(client.post(f"{BASE}/projects/reviews/undo", headers=ann))
    assert (undone["undone"], undone["item"]["id"]) == ("skip", second["id"])
    assert data(client.get(f"{BASE}/projects/reviews/next", headers=ann))["item"]["id"] == second["id"]
    other = auth("bob", "annotator")
    grant(client, "reviews", "annotator", "bob")
    data(
        client.post(f"{BASE}/projects/reviews/answers", json={"item_id": second["id"], "label": "正面"}, headers=other)
    )
    undone = data(client.post(f"{BASE}/projects/reviews/undo", headers=ann))  # ann's last answer, not bob's
    assert (undone["undone"], undone["item"]["id"], undone["answer"]["label"]) == ("answer", item["id"], "负面")
    store = AnnotationStore(db)
    assert store.annotations("reviews", annotator="ann") == []  # taken back: it counts no more
    assert [a.item_id for a in store.annotations("reviews", annotator="bob")] == [second["id"]]
    assert data(client.get(f"{BASE}/projects/reviews/status", headers=ann))["mine"] == 0
    assert data(client.get(f"{BASE}/projects/reviews/next", headers=other))["item"]["id"] != item["id"]  # ann's lease
    assert data(client.get(f"{BASE}/projects/reviews/next", headers=ann))["item"]["id"] == item["id"]
    data(client.post(f"{BASE}/projects/reviews/answers", json={"item_id": item["id"], "label": "正面"}, headers=ann))
    mine = store.annotations("reviews", annotator="ann")
    assert [(a.item_id, a.label, a.seconds) for a in mine] == [(item["id"], "正面", 0.0)]
    status = data(client.get(f"{BASE}/projects/reviews/status", headers=ann))
    assert (status["labelled"], status["mine"], status["target"]) == (2, 1, len(TEXTS))
    assert status["model"]["name"] == "fake-model"


def test_a_wrong_label_or_shape_is_a_422_naming_what_to_do(client: TestClient, db: str) -> None:
    ids = make_project(client, db)
    grant(client, "reviews", "annotator", "ann")
    ann = auth("ann", "annotator")
    wrong = client.post(f"{BASE}/projects/reviews/answers", json={"item_id": ids[0], "label": "中性"}, headers=ann)
    assert (wrong.status_code, wrong.json()["code"]) == (422, 42200) and "正面" in wrong.json()["message"]
    for body in (
        {"item_id": ids[0]},
        {"item_id": ids[0], "label": "正面", "entities": []},
        {"item_id": ids[0], "label": "正面", "annotator": "someone-else"},
        {"item_id": 0, "label": "正面"},
        {"item_id": ids[0], "label": "正面", "seconds": -1},
    ):
        refused = client.post(f"{BASE}/projects/reviews/answers", json=body, headers=ann)
        assert (refused.status_code, refused.json()["code"]) == (422, 42200), (body, refused.text)
    too_many = {"items": [{"text": f"t{i}"} for i in range(1001)]}
    assert client.post(f"{BASE}/projects/reviews/items", json=too_many, headers=ADMIN).status_code == 422
    assert client.get(f"{BASE}/projects/reviews/export?limit=100000", headers=ADMIN).status_code == 422
    assert client.get(f"{BASE}/projects/..%2Fetc/next", headers=ADMIN).status_code in (404, 422)
    exists = client.post(f"{BASE}/projects", json={"name": "reviews", "labels": LABELS}, headers=ADMIN)
    assert (exists.status_code, exists.json()["code"]) == (409, 40900)


def test_double_labelling_kappa_disagreements_and_adjudication(client: TestClient, db: str) -> None:
    make_project(client, db, eval_share=0.9, queue=False)  # most rows are double-labelled
    for who in ("ann", "bob"):
        grant(client, "reviews", "annotator", who)
    grant(client, "reviews", "reviewer", "rita")
    seen: dict[str, list[int]] = {}
    for who in ("ann", "bob"):
        headers = auth(who, "annotator")
        while (task := data(client.get(f"{BASE}/projects/reviews/next", headers=headers)))["item"]:
            item = task["item"]
            # bob agrees with ann on the first items, then disagrees on every third
            label = LABELS[item["id"] % 2] if who == "ann" or item["id"] % 3 else LABELS[1 - item["id"] % 2]
            body = {"item_id": item["id"], "label": label}
            data(client.post(f"{BASE}/projects/reviews/answers", json=body, headers=headers))
            seen.setdefault(who, []).append(item["id"])
            assert len(seen[who]) <= len(TEXTS)
    shared = set(seen["ann"]) & set(seen["bob"])
    assert len(shared) >= 5
    rev = auth("rita", "reviewer")
    status = data(client.get(f"{BASE}/projects/reviews/status", headers=rev))
    assert status["kappa"] is not None and -1.0 <= status["kappa"] < 1.0 and status["kappa_items"] >= 5
    queue = data(client.get(f"{BASE}/projects/reviews/disagreements", headers=rev))
    disputed = {d["item"]["id"] for d in queue["disagreements"]}
    assert disputed == {i for i in shared if i % 3 == 0} and queue["total"] == len(disputed)
    assert all({a["annotator"] for a in d["answers"]} == {"ann", "bob"} for d in queue["disagreements"])
    settled = sorted(disputed)[0]
    data(client.post(f"{BASE}/projects/reviews/adjudications", json={"item_id": settled, "label": "负面"}, headers=rev))
    after = data(client.get(f"{BASE}/projects/reviews/disagreements", headers=rev))
    assert {d["item"]["id"] for d in after["disagreements"]} == disputed - {settled}
    exported = data(client.get(f"{BASE}/projects/reviews/export?limit=5", headers=rev))
    assert exported["total"] == len(set(seen["ann"]) | set(seen["bob"])) and len(exported["rows"]) == 5
    assert exported["next_offset"] == 5 and len(exported["digest"]) == 64
    rows: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = data(client.get(f"{BASE}/projects/reviews/export?offset={offset}&limit=5", headers=rev))
        rows += page["rows"]
        offset = page["next_offset"]
    assert next(r["label"] for r in rows if r["item_id"] == settled) == "负面"
    snapshot = AnnotationStore(db).label_snapshot("reviews")
    assert [(r["item_id"], r["label"]) for r in rows] == [(r.item_id, r.label) for r in snapshot.rows]


def test_ner_answers_are_spans_of_the_text(client: TestClient, db: str) -> None:
    spec = {"name": "places", "task_type": "ner", "entity_types": ["LOC", "PER"], "eval_share": 0.0}
    data(client.post(f"{BASE}/projects", json=spec, headers=ADMIN))
    ids = data(client.post(f"{BASE}/projects/places/items", json={"items": [{"text": "从北京到上海"}]}, headers=ADMIN))[
        "ids"
    ]
    store = AnnotationStore(db)
    store.add_predictions(
        "places",
        [NewPrediction(item_id=ids[0], entities=({"text": "北京", "type": "LOC", "start": 1, "end": 3},))],  # type: ignore[arg-type]
        round=1,
        model="lac",
    )
    store.queue_items("places", 1, ids, strategy="random")
    grant(client, "places", "annotator", "ann")
    ann = auth("ann", "annotator")
    task = data(client.get(f"{BASE}/projects/places/next", headers=ann))
    assert task["prelabel"]["entities"] == [{"text": "北京", "type": "LOC", "start": 1, "end": 3}]
    wrong = {"item_id": ids[0], "entities": [{"text": "上海", "type": "LOC", "start": 1, "end": 3}]}
    assert client.post(f"{BASE}/projects/places/answers", json=wrong, headers=ann).status_code == 422
    right = {
        "item_id": ids[0],
        "entities": [
            {"text": "北京", "type": "LOC", "start": 1, "end": 3},
            {"text": "上海", "type": "LOC", "start": 4, "end": 6},
        ],
    }
    stored = data(client.post(f"{BASE}/projects/places/answers", json=right, headers=ann))
    assert [e["text"] for e in stored["answer"]["entities"]] == ["北京", "上海"]


# --- rounds --------------------------------------------------------------------------------------------------


def test_a_round_runs_the_use_case_once_per_project_at_a_time(
    client: TestClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from openautoglm.serve import routes_annotation
    from openautoglm.usecases.annotation import AnnotationRoundParams, RoundSummary

    make_project(client, db, queue=False)
    entered, release = threading.Event(), threading.Event()
    seen: list[AnnotationRoundParams] = []

    def fake_round(params: AnnotationRoundParams) -> RoundSummary:
        seen.append(params)
        entered.set()
        assert release.wait(10)
        return RoundSummary(
            project=params.project, round=2, model="local-auto", model_version="", model_source="cold-start",
            pool=12, predictions=12, queued=params.size, item_ids=list(range(1, params.size + 1)),
            strategy=params.strategy, diverse=params.diverse, label_count=0, label_digest="", seconds=0.1,
        )  # fmt: skip

    monkeypatch.setattr(routes_annotation, "annotation_round", fake_round)
    body = {"project": "reviews", "size": 5, "strategy": "entropy", "diverse": False}
    results: list[Any] = []
    first = threading.Thread(target=lambda: results.append(client.post(f"{BASE}/rounds", json=body, headers=ADMIN)))
    first.start()
    assert entered.wait(10)
    busy = client.post(f"{BASE}/rounds", json=body, headers=ADMIN)
    assert (busy.status_code, busy.json()["code"]) == (409, 40900)
    release.set()
    first.join(10)
    summary = data(results[0])
    assert (summary["queued"], summary["strategy"]) == (5, "entropy")
    assert seen == [AnnotationRoundParams(**body)]  # the body is the use case's parameter model, as sent
    named = client.post(f"{BASE}/rounds", json={**body, "model": "LOCAL:/etc"}, headers=ADMIN)
    assert named.status_code == 422 and "registered model" in named.json()["message"]
    for refused_body in ({**body, "size": 0}, {**body, "strategy": "coin"}, {**body, "shell": "rm"}):
        assert client.post(f"{BASE}/rounds", json=refused_body, headers=ADMIN).status_code == 422
    assert client.post(f"{BASE}/rounds", json={**body, "project": "nope"}, headers=ADMIN).status_code == 404
    grant(client, "reviews", "annotator", "ann")
    grant(client, "reviews", "reviewer", "ann")
    forbidden = client.post(f"{BASE}/rounds", json=body, headers=auth("ann", "annotator", "reviewer", "operator"))
    assert forbidden.status_code == 403 and len(seen) == 1


def test_status_is_reused_briefly_and_dropped_by_an_answer(
    client: TestClient, db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from openautoglm.serve import routes_annotation

    ids = make_project(client, db)
    grant(client, "reviews", "annotator", "ann")
    ann = auth("ann", "annotator")
    monkeypatch.setattr(routes_annotation, "STATUS_TTL_S", 3600.0)  # a slow machine does not expire it
    assert data(client.get(f"{BASE}/projects/reviews/status", headers=ann))["labelled"] == 0
    AnnotationStore(db).record_annotation("reviews", ids[0], "someone-elsewhere", "正面")  # another process
    assert data(client.get(f"{BASE}/projects/reviews/status", headers=ann))["labelled"] == 0  # reused
    data(client.post(f"{BASE}/projects/reviews/answers", json={"item_id": ids[1], "label": "负面"}, headers=ann))
    fresh = data(client.get(f"{BASE}/projects/reviews/status", headers=ann))
    assert (fresh["labelled"], fresh["mine"]) == (2, 1)  # this process's answer dropped it
    AnnotationStore(db).record_annotation("reviews", ids[2], "someone-elsewhere", "正面")
    monkeypatch.setattr(routes_annotation, "STATUS_TTL_S", 0.0)
    assert data(client.get(f"{BASE}/projects/reviews/status", headers=ann))["labelled"] == 3  # expired
