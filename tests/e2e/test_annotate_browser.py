"""The Annotate page in a real browser (Debian's chromium driven by Playwright) against a real stack: `prefect server
start` with the `train-round-on-labels` deployment and a worker, and `openautoglm serve` serving the built page at
/ui, with the annotation store on a throwaway SQLite file.

What the issue's "Done when" asks of the page: an annotator labels a round of 20 rows with the keyboard, the model's
pre-labels visible (Enter accepts, a digit picks another label, S skips, U undoes); a second annotator labels the
double-labelled share (the evaluation slice); kappa appears; a reviewer adjudicates a disagreement; an annotator
sees no other project and cannot adjudicate; then, with no one asking, the answers' events start `train_round` on
the worker, a new version of the project's model is registered, and the API and the page answer with it. NER:
pre-marked spans are shown, a click removes one, a selection and a type's key add one. Screenshots go to
``OPENAUTOGLM_SCREENSHOTS`` when set, else to the test's folder.

Under CI=true a missing chromium or bundle fails the test (it does not skip).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openautoglm.adapters.annotation_access import AnnotationAccess, Grant
from openautoglm.adapters.annotation_store import AnnotationStore, NewItem, NewPrediction, ProjectSpec, Round
from openautoglm.serve.testing import Signer
from tests.conftest import REPO, in_ci
from tests.e2e.conftest import labelling_stack, shots_dir

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNER = Signer.rsa("annotate-e2e")
BUNDLE = REPO / "openautoglm" / "serve" / "ui_dist" / "index.html"
LABELS = ["正面", "负面"]
ROUND = 20
TEXTS = [f"第{i}位顾客说：{'味道很好，送得也快' if i % 3 else '太咸了，还送晚了'}（{i}）" for i in range(40)]


def prelabel(n: int) -> str:
    return LABELS[0] if n % 3 else LABELS[1]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The API serving /ui, and a store holding a project pre-labelled and queued for one round of 20 (plus its
    evaluation slice), a second project nobody of the test is granted, and a small NER project."""
    if not BUNDLE.exists():
        message = f"the web app bundle is not built ({BUNDLE}): run `make ui`"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("annotate")
    url = f"sqlite:///{tmp / 'annotations.db'}"
    store = AnnotationStore(url)
    store.create_project(ProjectSpec(name="reviews", labels=tuple(LABELS), eval_share=0.2, guidelines="好评或差评"))
    ids = store.add_items("reviews", [NewItem(text=t, source="e2e", row_id=str(i)) for i, t in enumerate(TEXTS)]).ids
    held = {item.id: item for item in store.items("reviews")}
    evaluation = [i for i in ids if held[i].eval]
    assert 3 <= len(evaluation) <= 15, len(evaluation)  # the seeded hash of these texts
    store.add_predictions(
        "reviews",
        [
            NewPrediction(
                item_id=i, label=prelabel(n), scores={prelabel(n): 0.9, LABELS[1 - LABELS.index(prelabel(n))]: 0.1}
            )
            for n, i in enumerate(ids)
        ],
        round=1,
        model="reviews-student",
        model_version="1",
    )
    chosen = [i for i in ids if not held[i].eval][:ROUND]
    store.queue_items("reviews", 1, chosen, strategy="margin")
    store.record_round("reviews", Round(round=1, model="reviews-student", model_version="1", queued=len(chosen)))
    store.create_project(ProjectSpec(name="secret", labels=("a", "b"), eval_share=0.0))
    store.add_items("secret", [NewItem(text="不该看到的一行")])
    store.create_project(ProjectSpec(name="places", task_type="ner", entity_types=("LOC", "PER"), eval_share=0.0))
    place = store.add_items("places", [NewItem(text="小王从北京坐高铁到上海")]).ids
    store.add_predictions(
        "places",
        [NewPrediction(item_id=place[0], entities=({"text": "北京", "type": "LOC", "start": 3, "end": 5},))],  # type: ignore[arg-type]
        round=1,
        model="lac",
    )
    store.queue_items("places", 1, place, strategy="random")
    access = AnnotationAccess(store)
    for who in ("ann", "bob"):
        access.grant(Grant(project="reviews", subject=who, role="annotator"))
    access.grant(Grant(project="places", subject="ann", role="annotator"))
    access.grant(Grant(project="reviews", subject="rita", role="reviewer"))
    store.close()
    with labelling_stack(tmp, url, SIGNER) as servers:
        yield {
            "base": servers["base"],
            "tmp": tmp,
            "url": url,
            "evaluation": evaluation,
            "chosen": chosen,
            "worker_log": servers["worker_log"],
        }


def sign_in(browser: Any, base: str, sub: str, *roles: str, hash: str = "") -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{base}/ui/{hash}")
    page.get_by_test_id("token").fill(SIGNER.token(sub, list(roles)))
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("user").wait_for()
    return page


def current_item(page: Any) -> int | None:
    """The item on screen, or None once the page says there is nothing left."""
    page.locator('[data-testid="annotate-item"], [data-testid="done"]').first.wait_for()
    box = page.get_by_test_id("annotate-item")
    return int(box.get_attribute("data-item")) if box.count() else None


def press_and_wait(page: Any, key: str, before: int) -> int | None:
    page.keyboard.press(key)
    page.wait_for_function(
        """before => {
            const box = document.querySelector('[data-testid="annotate-item"]');
            return !box || Number(box.dataset.item) !== before;
        }""",
        arg=before,
    )
    return current_item(page)


def label_until_done(page: Any, choose: Any, limit: int, stop: int | None = None) -> list[int]:
    """Answer every item the page serves (the first ``stop`` only, when given) with the key ``choose(item_id,
    prelabel_text)`` gives; the item ids."""
    done: list[int] = []
    item = current_item(page)
    while item is not None and (stop is None or len(done) < stop):
        shown = page.get_by_test_id("prelabel").inner_text()
        assert "reviews-student v1 says" in shown and "%" in shown, shown
        done.append(item)
        assert len(done) <= limit, done
        item = press_and_wait(page, choose(item, shown), item)
    return done


def test_label_a_round_agree_and_adjudicate(stack: dict[str, Any], browser: Any) -> None:
    from playwright.sync_api import expect

    base, shots = stack["base"], shots_dir(stack["tmp"])
    evaluation, chosen = set(stack["evaluation"]), stack["chosen"]

    # --- the first annotator: a round of 20 with the keyboard; Enter accepts the pre-label ------------------
    ann = sign_in(browser, base, "ann", "annotator")
    expect(ann.get_by_test_id("project").locator("option")).to_have_count(2)  # reviews, places; never secret
    ann.get_by_test_id("project").select_option("reviews")
    first = current_item(ann)
    assert first == chosen[0]
    ann.screenshot(path=str(shots / "annotate-label.png"))
    # Enter accepts the pre-labels of the round's first 19 rows; on the 20th, S skips it, U brings it back, 2 labels
    # it against the pre-label (the 20th label: a training is due), U takes that answer back (19 labels again) and
    # Enter answers anew (20 again: a second due event; train_if_due trains one of the two firings, never on 19)
    labelled = label_until_done(ann, lambda item, shown: "Enter", ROUND - 1, stop=ROUND - 1)
    last = current_item(ann)
    assert last == chosen[ROUND - 1]
    assert press_and_wait(ann, "s", last) in evaluation  # the queue is done: the evaluation slice comes next
    ann.keyboard.press("u")
    expect(ann.get_by_test_id("undone")).to_contain_text("Skip taken back")
    assert current_item(ann) == last
    press_and_wait(ann, "2", last)
    ann.keyboard.press("u")
    expect(ann.get_by_test_id("undone")).to_contain_text("earlier answer")
    assert current_item(ann) == last
    labelled += label_until_done(ann, lambda item, shown: "Enter", 1 + len(evaluation))
    assert labelled[:ROUND] == chosen and set(labelled[ROUND:]) == evaluation  # the round, then the slice
    expect(ann.get_by_test_id("progress")).to_contain_text(f"{len(labelled)} / {ROUND + len(evaluation)} labelled")
    answers = AnnotationStore(stack["url"]).annotations("reviews", annotator="ann")
    assert len(answers) == len(labelled) and all(a.label in LABELS for a in answers)

    # --- the second annotator gets only the double-labelled share, and disagrees on one item --------------
    bob = sign_in(browser, base, "bob", "annotator")
    disputed = min(evaluation)

    def bobs_key(item: int, shown: str) -> str:
        if item != disputed:
            return "Enter"
        return "2" if LABELS[0] in shown else "1"

    assert set(label_until_done(bob, bobs_key, len(evaluation))) == evaluation
    expect(bob.get_by_test_id("kappa")).to_contain_text("κ =", timeout=10_000)
    bob.screenshot(path=str(shots / "annotate-kappa.png"))

    # --- an annotator cannot adjudicate, nor see another project --------------------------------------------
    token = SIGNER.token("ann", ["annotator"])
    headers = {"Authorization": f"Bearer {token}"}
    refused = httpx.post(
        f"{base}/api/v1/annotation/projects/reviews/adjudications",
        json={"item_id": disputed, "label": LABELS[0]},
        headers=headers,
    )
    assert (refused.status_code, refused.json()["code"]) == (403, 40300)
    hidden = httpx.get(f"{base}/api/v1/annotation/projects/secret/next", headers=headers)
    assert (hidden.status_code, hidden.json()["code"]) == (404, 40400)
    assert "secret" not in json.dumps(httpx.get(f"{base}/api/v1/annotation/projects", headers=headers).json())

    # --- the reviewer adjudicates the disagreement ----------------------------------------------------------
    rita = sign_in(browser, base, "rita", "reviewer")
    expect(rita.get_by_test_id("review-total")).to_have_text("1")
    rita.screenshot(path=str(shots / "annotate-review.png"))
    rita.get_by_test_id(f"adjudicate-{disputed}-2").click()
    expect(rita.get_by_test_id("review-total")).to_have_text("0")
    snapshot = AnnotationStore(stack["url"]).label_snapshot("reviews")
    settled = next(r for r in snapshot.rows if r.item_id == disputed)
    assert settled.label == LABELS[1] and settled.adjudicated


def test_train_round_starts_by_itself_and_the_api_answers_with_its_version(stack: dict[str, Any], browser: Any) -> None:
    """The 20th label of the first test emitted ``openautoglm.annotation.due`` (the evaluation answers after it
    change no count); it started ``train-round-on-labels`` on the worker, which registers version 1 of the project's
    model (name: the project's) and records it."""
    from playwright.sync_api import expect

    store = AnnotationStore(stack["url"])
    deadline = time.monotonic() + 300
    while not store.trainings("reviews"):
        assert time.monotonic() < deadline, stack["worker_log"].read_text(errors="replace")[-4000:]
        time.sleep(2)
    training = store.trainings("reviews")[-1]
    assert (training.model_name, training.model_version) == ("reviews", "1") and "candidate" in training.aliases
    assert training.label_count >= ROUND
    headers = {"Authorization": f"Bearer {SIGNER.token('ann', ['annotator'])}"}
    url = f"{stack['base']}/api/v1/annotation/projects/reviews/status"
    deadline = time.monotonic() + 15  # the API reuses a project's status 2 s: another process's write shows after
    while (status := httpx.get(url, headers=headers).json()["data"])["model"]["name"] != "reviews":
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["model"]["name"] == "reviews" and status["model"]["version"] == "1"
    assert [(p["round"], p["labels"]) for p in status["curve"]] == [(training.round, training.label_count)]
    page = sign_in(browser, stack["base"], "ann", "annotator")
    page.get_by_test_id("project").select_option("reviews")
    expect(page.get_by_test_id("model-version")).to_contain_text("reviews v1")
    page.screenshot(path=str(shots_dir(stack["tmp"]) / "annotate-trained.png"))


def test_ner_spans_are_removed_by_a_click_and_added_by_a_selection(stack: dict[str, Any], browser: Any) -> None:
    from playwright.sync_api import expect

    page = sign_in(browser, stack["base"], "ann", "annotator", hash="#/annotate")
    page.get_by_test_id("project").select_option("places")
    spans = page.get_by_test_id("span")
    expect(spans).to_have_count(1)
    expect(spans.first).to_contain_text("北京")
    spans.first.click()  # removed
    expect(spans).to_have_count(0)
    # select 上海 (characters 9-11) and press 1 (LOC), then 小王 (0-2) and press 2 (PER)
    for first, last, key in ((9, 11, "1"), (0, 2, "2")):
        page.evaluate(
            """([start, end]) => {
                const box = document.querySelector('[data-testid="item-text"]');
                const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT, {
                    acceptNode: n =>
                        n.parentElement.tagName === 'SUB' ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
                });
                const range = document.createRange();
                let at = 0, node;
                while ((node = walker.nextNode())) {
                    const len = node.textContent.length;
                    if (start >= at && start <= at + len) range.setStart(node, start - at);
                    if (end >= at && end <= at + len) { range.setEnd(node, end - at); break; }
                    at += len;
                }
                const selection = window.getSelection();
                selection.removeAllRanges();
                selection.addRange(range);
            }""",
            [first, last],
        )
        page.keyboard.press(key)
    expect(spans).to_have_count(2)
    page.screenshot(path=str(shots_dir(stack["tmp"]) / "annotate-ner.png"))
    page.keyboard.press("Enter")
    page.get_by_test_id("done").wait_for()
    answers = AnnotationStore(stack["url"]).annotations("places", annotator="ann")
    assert [(e.text, e.type, e.start, e.end) for e in answers[0].entities or ()] == [
        ("小王", "PER", 0, 2),
        ("上海", "LOC", 9, 11),
    ]
