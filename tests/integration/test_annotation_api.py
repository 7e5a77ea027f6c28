"""The annotation API over real HTTP: `openautoglm serve` in a subprocess with the annotation store on the
machine's PostgreSQL (a fresh database), driven with httpx as the page and the CLI would.

An admin creates a project and adds rows in batches, grants two annotators and a reviewer; both annotators label
at the same time from threads (nothing lost, each sees only their queue); kappa and the disagreements appear; the
reviewer adjudicates; the paged export equals the store's snapshot; and the edges hold: no token is 401, a body
over the limit is 413, a batch over 1,000 rows is 422, another annotator's project is 404.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from openautoglm.adapters.annotation_store import AnnotationStore
from openautoglm.serve.testing import Signer, api_process, keys_json
from tests.conftest import require_service
from tests.integration.servers import postgres_database

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNER = Signer.ec("annotation-it")
LABELS = ["正面", "负面"]
TEXTS = [f"评论{i}：{'好吃又便宜' if i % 4 else '难吃还贵'}" for i in range(60)]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_service("PostgreSQL", "127.0.0.1", 5432)
    tmp = tmp_path_factory.mktemp("annotation-api")
    with postgres_database() as name:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        env = {
            "OPENAUTOGLM_HOME": str(tmp / "home"),
            "OPENAUTOGLM_ANNOTATIONS_URL": url,
            "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(SIGNER),
            "OPENAUTOGLM_SERVE_PRELOAD": "false",
            "OPENAUTOGLM_SERVE_RATE_LIMIT": "100000/minute",
            "OPENAUTOGLM_SERVE_WORKFLOWS_URL": f"sqlite:///{tmp / 'workflows.db'}",
            "PREFECT_API_URL": "http://127.0.0.1:9/api",
        }
        with api_process(env, Path(tmp) / "api.log") as base:
            yield {"base": f"{base}/api/v1/annotation", "url": url}
        AnnotationStore(url).close()


def headers(sub: str, *roles: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {SIGNER.token(sub, list(roles))}"}


ADMIN = headers("ada", "admin")


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 0
    return body["data"]


def label_all(base: str, who: str, disagree: set[int]) -> list[int]:
    """Everything ``who``'s queue serves, answered (the other label on ``disagree`` items); the item ids."""
    mine: list[int] = []
    with httpx.Client(base_url=base, headers=headers(who, "annotator"), timeout=30) as client:
        while (task := ok(client.get("/projects/reviews/next")))["item"]:
            item = task["item"]["id"]
            label = LABELS[(item % 4 == 0) ^ (item in disagree)]
            ok(client.post("/projects/reviews/answers", json={"item_id": item, "label": label, "seconds": 1.0}))
            mine.append(item)
            assert len(mine) <= len(TEXTS)
    return mine


def test_two_annotators_a_reviewer_and_the_export(api: dict[str, Any]) -> None:
    base = api["base"]
    spec = {"name": "reviews", "labels": LABELS, "eval_share": 0.5, "guidelines": "好评还是差评？"}
    ok(httpx.post(f"{base}/projects", json=spec, headers=ADMIN))
    added = 0
    for start in range(0, len(TEXTS), 25):  # batches, as a client with many rows sends them
        batch = {
            "items": [
                {"text": t, "source": "it", "row_id": str(start + i)} for i, t in enumerate(TEXTS[start : start + 25])
            ]
        }
        added += ok(httpx.post(f"{base}/projects/reviews/items", json=batch, headers=ADMIN))["added"]
    assert added == len(TEXTS)
    for who, role in (("ann", "annotator"), ("bob", "annotator"), ("rita", "reviewer")):
        ok(httpx.put(f"{base}/projects/reviews/grants/{role}/{who}", headers=ADMIN))
    grants = ok(httpx.get(f"{base}/projects/reviews/grants", headers=ADMIN))["grants"]
    assert {(g["subject"], g["role"], g["granted_by"]) for g in grants} == {
        ("ann", "annotator", "ada"),
        ("bob", "annotator", "ada"),
        ("rita", "reviewer", "ada"),
    }

    store = AnnotationStore(api["url"])
    evaluation = {item.id for item in store.items("reviews") if item.eval}
    assert len(evaluation) >= 10
    disagree = set(sorted(evaluation)[:3])
    with ThreadPoolExecutor(2) as pool:  # both annotators at once
        ann, bob = pool.map(lambda who: label_all(base, who, disagree if who == "bob" else set()), ["ann", "bob"])
    assert set(ann) == set(bob) == evaluation  # no queue yet: each labels the evaluation slice once
    assert len(store.annotations("reviews")) == 2 * len(evaluation)  # nothing lost

    rev = headers("rita", "reviewer")
    status = ok(httpx.get(f"{base}/projects/reviews/status", headers=rev))
    assert status["kappa"] is not None and status["kappa"] < 1.0 and status["kappa_items"] == len(evaluation)
    assert status["disagreements"] == len(disagree) and status["labelled"] == len(evaluation)
    queue = ok(httpx.get(f"{base}/projects/reviews/disagreements", params={"limit": 2}, headers=rev))
    assert queue["total"] == len(disagree) and len(queue["disagreements"]) == 2
    for item in disagree:
        ok(
            httpx.post(
                f"{base}/projects/reviews/adjudications", json={"item_id": item, "label": LABELS[1]}, headers=rev
            )
        )
    assert ok(httpx.get(f"{base}/projects/reviews/disagreements", headers=rev))["total"] == 0

    rows: list[dict[str, Any]] = []
    offset: int | None = 0
    while offset is not None:
        page = ok(httpx.get(f"{base}/projects/reviews/export", params={"offset": offset, "limit": 7}, headers=rev))
        rows += page["rows"]
        offset = page["next_offset"]
    snapshot = store.label_snapshot("reviews")
    assert page["digest"] == snapshot.digest
    assert [(r["item_id"], r["label"]) for r in rows] == [(r.item_id, r.label) for r in snapshot.rows]
    assert all(r["label"] == LABELS[1] for r in rows if r["item_id"] in disagree)
    store.close()


def test_the_edges(api: dict[str, Any]) -> None:
    base = api["base"]
    spec = {"name": "edges", "labels": LABELS, "eval_share": 0.0}
    ok(httpx.post(f"{base}/projects", json=spec, headers=ADMIN))
    ann = headers("ann", "annotator")
    assert httpx.get(f"{base}/projects/edges/next").status_code == 401
    hidden = httpx.get(f"{base}/projects/edges/next", headers=ann)  # ann holds no grant on this one
    assert (hidden.status_code, hidden.json()["code"]) == (404, 40400)
    too_many = {"items": [{"text": f"行{i}"} for i in range(1001)]}
    assert httpx.post(f"{base}/projects/edges/items", json=too_many, headers=ADMIN).status_code == 422
    huge = {"items": [{"text": "长" * 400_000}] * 2}
    refused = httpx.post(f"{base}/projects/edges/items", json=huge, headers=ADMIN)
    assert (refused.status_code, refused.json()["code"]) == (413, 41300)
    assert httpx.post(f"{base}/projects", json=spec, headers=ADMIN).json()["code"] == 40900


def test_the_cli_makes_a_project_grants_reports_and_exports(tmp_path: Path) -> None:
    """`openautoglm annotate` as a user types it (the real console script), on a SQLite store: create with the rows
    of the seed example, grant, status, export; a wrong option or project is one line with a hint, no traceback."""
    import csv
    import subprocess
    import sys

    from tests.conftest import EXAMPLES

    url = f"sqlite:///{tmp_path / 'annotations.db'}"
    env = {**os.environ, "OPENAUTOGLM_HOME": str(tmp_path / "home"), "OPENAUTOGLM_ANNOTATIONS_URL": url}
    env.pop("OPENAUTOGLM_DEBUG", None)
    binary = str(Path(sys.executable).parent / "openautoglm")

    def annotate(*args: str, code: int = 0) -> str:
        done = subprocess.run([binary, "annotate", *args], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == code, done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        return " ".join((done.stdout + done.stderr).split())  # rich wraps long lines

    made = annotate("create", "feedback", "--labels", "正面,负面,中性", "--items", str(EXAMPLES / "user_feedback.csv"))
    assert "created project feedback" in made and "added 60 rows" in made
    assert "may now work on feedback as reviewer" in annotate("grant", "feedback", "rita", "--role", "reviewer")
    store = AnnotationStore(url)
    items = store.items("feedback")
    store.record_annotation("feedback", items[0].id, "alice", "正面")
    status = annotate("status", "feedback")
    assert "60" in status and "1 items, 1 answers by 1" in status
    out = tmp_path / "labels.csv"
    assert "wrote 1 labelled items" in annotate("export", "feedback", str(out))
    with out.open(encoding="utf-8") as handle:
        assert [(r["item_id"], r["label"]) for r in csv.DictReader(handle)] == [(str(items[0].id), "正面")]
    assert "error: No annotation project named 'nope'" in annotate("status", "nope", code=2)
    assert "invalid option role" in annotate("grant", "feedback", "x", "--role", "boss", code=2)
    assert "eval-share" in annotate("create", "other", "--labels", "a,b", "--eval-share", "2", code=2)
    store.close()
