"""The canvas in a real browser (Debian's chromium driven by Playwright) against a real stack: `prefect server`,
the project's deployments, a Prefect worker and `openautoglm serve` serving the built page at /ui.

What a user does (issue 14): sign in with a token, drag load -> clean -> validate -> infer -> write-results onto
the canvas, connect them, fill the forms, save, run, watch every node turn completed, open a node's results
preview, reload and find the workflow saved; an incompatible connection and a cycle are refused in the browser
and by the server; a viewer cannot run (the button is off and the API says 403).

Made for people (issue 33): no request of the page answers 404; an empty canvas says what to do; the palette is
grouped by kind and searched; the data file is uploaded from the load node's panel; Layout leaves no two nodes
overlapping; forms speak in field titles (no class name, no "Labels-1"), advanced fields folded; node cards show
their key settings; the evaluate node's metrics are a table with per-label bars; a failed node's panel says why
and what to do in the form's terms (no CLI flag) and shows its log lines; an expired token (told by the API's
401, or by the token's own expiry) and a refused one return to the sign-in with a line saying so.

Screenshots go to ``OPENAUTOGLM_SCREENSHOTS`` when set (``scripts/canvas_screenshots.py`` makes the docs'
pictures that way), else to the test's folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from openautoglm.serve.testing import Signer, api_process, keys_json
from tests.conftest import REPO, in_ci
from tests.e2e.conftest import shots_dir
from tests.integration.servers import BIN, prefect_server, start, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNER = Signer.rsa("canvas-1")
BUNDLE = REPO / "openautoglm" / "serve" / "ui_dist" / "index.html"
LABELS = ["正面", "负面", "中性"]
NAME = "canvas-seed"
FEEDBACK = REPO / "examples" / "user_feedback.csv"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A Prefect server with the deployments registered, a worker, and the API serving /ui."""
    if not BUNDLE.exists():
        message = f"the canvas bundle is not built ({BUNDLE}): run `make ui`"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("canvas")
    data = tmp / "data"  # the data root: uploads land in it, not in the repository's examples/
    data.mkdir()
    shutil.copy(FEEDBACK, data / FEEDBACK.name)
    with prefect_server(tmp / "server") as api_url:
        env = {
            "PREFECT_API_URL": api_url,
            "PREFECT_HOME": str(tmp / "client"),
            "OPENAUTOGLM_HOME": str(tmp / "home"),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
        }
        deployed = subprocess.run(
            [sys.executable, "-m", "openautoglm.cli", "deploy", "--only", "pipeline-example"],
            cwd=REPO,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert deployed.returncode == 0, deployed.stderr[-3000:]
        worker_log = tmp / "worker.log"
        worker = start([str(BIN / "openautoglm"), "worker", "--pool", "openautoglm-pool"], env, worker_log)
        api_env = {
            **env,
            "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(SIGNER),
            "OPENAUTOGLM_SERVE_PRELOAD": "false",
            "OPENAUTOGLM_SERVE_DATA_ROOTS": json.dumps([str(data)]),
            "OPENAUTOGLM_SERVE_WORKFLOWS_URL": f"sqlite:///{tmp / 'workflows.db'}",
        }
        try:
            with api_process(api_env, tmp / "api.log") as base:
                yield {"base": base, "tmp": tmp, "worker_log": worker_log}
        finally:
            stop(worker)


def sign_in(browser: Any, base: str, sub: str, role: str, missing: list[str] | None = None) -> Any:
    """A page signed in as ``sub`` with ``role``; URLs it requested that answered 404 go into ``missing``."""
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    if missing is not None:
        page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(f"{base}/ui/")
    page.get_by_test_id("token").fill(SIGNER.token(sub, [role]))
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("user").wait_for()
    assert role in page.get_by_test_id("user").inner_text()
    return page


def overlapping(boxes: dict[str, dict[str, float]]) -> list[tuple[str, str]]:
    """The pairs of boxes that overlap."""
    found = []
    for a, p in boxes.items():
        for b, q in boxes.items():
            if a < b and not (
                p["x"] + p["width"] <= q["x"]
                or q["x"] + q["width"] <= p["x"]
                or p["y"] + p["height"] <= q["y"]
                or q["y"] + q["height"] <= p["y"]
            ):
                found.append((a, b))
    return found


def drop(page: Any, stage: str, x: int, y: int) -> None:
    page.get_by_test_id(f"palette-{stage}").drag_to(page.get_by_test_id("canvas"), target_position={"x": x, "y": y})


def node(page: Any, node_id: str) -> Any:
    return page.locator(f'.react-flow__node[data-id="{node_id}"]')


def connect(page: Any, source: str, target: str) -> None:
    """Drag from ``node.port`` (an output handle) to ``node.port`` (an input handle)."""
    (src_node, src_port), (dst_node, dst_port) = source.split("."), target.split(".")
    out = node(page, src_node).locator(f'.react-flow__handle.source[data-handleid="{src_port}"]')
    into = node(page, dst_node).locator(f'.react-flow__handle.target[data-handleid="{dst_port}"]')
    out.drag_to(into)


def edges(page: Any) -> int:
    return int(page.locator(".react-flow__edge").count())


def open_form(page: Any, node_id: str) -> Any:
    node(page, node_id).locator(".stage-node-header, header, strong").first.click()
    panel = page.get_by_test_id("side-panel")
    panel.wait_for()
    return panel


def add_items(panel: Any, field: str, values: list[str]) -> None:
    for i, value in enumerate(values):
        panel.locator(f"#{field}__add").click()
        panel.locator(f"#{field}_{i}").fill(value)


def test_build_run_watch_reload_and_refusals(stack: dict[str, Any], browser: Any) -> None:
    from playwright.sync_api import expect

    base, tmp = stack["base"], stack["tmp"]
    shots = shots_dir(tmp)
    missing: list[str] = []
    page = sign_in(browser, base, "olga", "operator", missing)
    page.get_by_test_id("palette-load").wait_for()
    assert missing == [], f"the page requested what is not there: {missing}"
    expect(page.get_by_test_id("empty-hint")).to_contain_text("Drag a stage")
    assert page.get_by_test_id("starter-seed-classification").is_visible()  # the starters, listed to open

    # The palette: grouped by kind, searched.
    assert page.get_by_test_id("palette-group-Sources").get_by_test_id("palette-load").count() == 1
    page.get_by_test_id("palette-search").fill("predictions")
    expect(page.get_by_test_id("palette-load")).to_have_count(0)
    assert page.get_by_test_id("palette-evaluate").is_visible()
    page.get_by_test_id("palette-search").fill("")

    # Build the seed's classification on the canvas.
    ids = ["load", "clean", "validate", "infer", "write-results", "evaluate"]
    for i, stage in enumerate(ids):
        drop(page, stage, 100 + 170 * i, 100 + 260 * (i % 2))  # cards are 240 px wide: rows alternate
    for node_id in ids:
        node(page, node_id).wait_for()
    expect(page.get_by_test_id("empty-hint")).to_have_count(0)
    chain = [
        ("load.dataset", "clean.dataset"),
        ("clean.dataset", "validate.dataset"),
        ("validate.dataset", "infer.dataset"),
        ("infer.predictions", "write-results.predictions"),
        ("infer.predictions", "evaluate.predictions"),
    ]
    for source, target in chain:
        connect(page, source, target)
    assert edges(page) == len(chain)

    # Refused in the browser: incompatible ports (Predictions into a Dataset input) and a cycle.
    drop(page, "clean", 250, 560)
    drop(page, "clean", 700, 560)
    node(page, "clean-3").wait_for()
    connect(page, "infer.predictions", "clean-2.dataset")
    assert edges(page) == len(chain)
    assert "cannot feed" in page.get_by_test_id("status").inner_text()
    connect(page, "clean-2.dataset", "clean-3.dataset")
    assert edges(page) == len(chain) + 1
    connect(page, "clean-3.dataset", "clean-2.dataset")
    assert edges(page) == len(chain) + 1
    assert "cycle" in page.get_by_test_id("status").inner_text().lower()
    for extra in ("clean-3", "clean-2"):  # and gone again
        node(page, extra).click()
        page.keyboard.press("Delete")
    assert node(page, "clean-2").count() == 0 and edges(page) == len(chain)
    before = node(page, "write-results").bounding_box()
    page.get_by_test_id("layout").click()  # auto-layout: left to right along the edges
    page.wait_for_timeout(300)
    boxes = {i: node(page, i).bounding_box() for i in ids}
    assert boxes["write-results"] != before
    xs = [boxes[i]["x"] for i in ids[:4]]  # load -> clean -> validate -> infer, then its two readers
    assert xs == sorted(xs) and min(boxes["write-results"]["x"], boxes["evaluate"]["x"]) > xs[-1]
    assert overlapping(boxes) == []

    # The forms, in words: field titles, advanced fields folded, no class names.
    panel = open_form(page, "load")  # the data file uploaded from the panel: the source then reads it
    panel.get_by_test_id("upload-file").set_input_files(str(FEEDBACK))
    expect(page.get_by_test_id("status")).to_contain_text("uploaded uploads/user_feedback.csv: 60 rows")
    expect(panel.locator("#root_source_path")).to_have_value("uploads/user_feedback.csv")
    assert (stack["tmp"] / "data" / "uploads" / FEEDBACK.name).read_bytes() == FEEDBACK.read_bytes()
    panel = open_form(page, "validate")
    panel.locator("#root_label_column").fill("label")
    add_items(panel, "root_labels", LABELS)
    panel.locator("#root_gate").select_option("quarantine")
    panel = open_form(page, "infer")
    add_items(panel, "root_task_labels", LABELS)
    panel.locator("#root_task_prompt_template").fill("请判断以下用户反馈的情感倾向（正面/负面/中性）：{text}")
    form = panel.locator("form").inner_text()
    for raw in ("InferParams", "TaskConfig", "ModelSpec", "Labels-1", "Timeout S"):
        assert raw not in form, (raw, form)
    assert "Prompt template" in form and "Labels" in form
    expect(node(page, "infer").get_by_test_id("settings-infer")).to_contain_text("正面, 负面, 中性")
    expect(node(page, "load").get_by_test_id("settings-load")).to_contain_text("uploads/user_feedback.csv")
    panel.evaluate("element => element.scrollTo(0, 0)")
    page.screenshot(path=str(shots / "canvas-form.png"))
    timeout = panel.locator("#root_model_timeout_s")
    assert not timeout.is_visible()  # folded under the model's "Advanced"
    panel.get_by_test_id("advanced-root_model").locator("summary").click()
    assert timeout.is_visible()
    page.get_by_test_id("workflow-name").fill(NAME)
    page.get_by_test_id("save").click()
    page.get_by_text("saved", exact=False).first.wait_for()
    page.get_by_label("close").click()  # the side panel, then fit the whole graph in view
    page.locator(".react-flow__controls-fitview").click()
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "canvas-built.png"))

    # Run and watch every node turn completed.
    clicked = time.monotonic()
    page.get_by_test_id("run").click()
    page.get_by_test_id("state-load").wait_for(timeout=60_000)
    first_state_s = time.monotonic() - clicked
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        states = {i: page.get_by_test_id(f"state-{i}").inner_text().strip() for i in ids}
        if all(s == "completed" for s in states.values()) or "failed" in states.values():
            break
        time.sleep(1)
    assert all(s == "completed" for s in states.values()), (states, stack["worker_log"].read_text()[-3000:])
    expect(page.get_by_test_id("run-state")).to_have_text("completed", ignore_case=True, timeout=30_000)
    panel = open_form(page, "infer")
    preview = page.get_by_test_id("preview")
    preview.wait_for()
    assert "60" in preview.inner_text()  # rows in and out
    page.screenshot(path=str(shots / "canvas-run.png"))
    print(f"run -> first node state shown: {first_state_s:.1f} s")
    open_form(page, "evaluate")  # its metrics as a table, F1 per label as bars, the confusion matrix shaded
    matrix = page.get_by_test_id("confusion-matrix")
    matrix.wait_for()
    assert all(label in matrix.inner_text() for label in LABELS)
    assert sum(int(c) for c in matrix.locator("td").all_inner_texts()) == 60
    table = page.get_by_test_id("metrics-table")
    accuracy = float(table.locator("tr", has_text="Accuracy").locator("td").inner_text())
    assert 0 <= accuracy <= 1 and "Macro F1" in table.inner_text()
    assert all(label in page.get_by_test_id("chart-f1_per_label").inner_text() for label in LABELS)
    page.screenshot(path=str(shots / "canvas-evaluate.png"))
    print(f"the recipe's accuracy on the feedback file: {accuracy:.3f}")

    # Reload: still signed in, the workflow reopened from the server.
    page.reload()
    for node_id in ids:
        node(page, node_id).wait_for()
    # React Flow draws the edges after it has measured the nodes: wait for them rather than count at once.
    expect(page.locator(".react-flow__edge")).to_have_count(len(chain), timeout=15_000)
    assert page.get_by_test_id("workflow-name").input_value() == NAME

    # The server refuses a cycle too, and a viewer cannot run.
    operator = {"Authorization": f"Bearer {SIGNER.token('olga', ['operator'])}"}
    saved = httpx.get(f"{base}/api/v1/workflows/{NAME}", headers=operator, timeout=30).json()["data"]["workflow"]
    rewired = [e for e in saved["graph"]["edges"] if e["target"] != "clean.dataset"]
    looped = {
        **saved,
        "graph": {**saved["graph"], "edges": [*rewired, {"source": "validate.dataset", "target": "clean.dataset"}]},
    }
    refused = httpx.put(f"{base}/api/v1/workflows/{NAME}", json=looped, headers=operator, timeout=30)
    assert refused.status_code == 422 and "cycle" in refused.text, refused.text
    viewer = sign_in(browser, base, "vera", "viewer")
    viewer.get_by_test_id("open-workflow").select_option(NAME)
    node(viewer, "infer").wait_for()
    assert viewer.get_by_test_id("run").is_disabled()
    denied = httpx.post(
        f"{base}/api/v1/workflows/{NAME}/runs",
        json={},
        headers={"Authorization": f"Bearer {SIGNER.token('vera', ['viewer'])}"},
        timeout=30,
    )
    assert denied.status_code == 403
    viewer.close()

    # A failed node: validate with a label set that leaves 中性 out and the gate at "fail" stops the run; its
    # panel says why and what to do, in the form's terms.
    failing = json.loads(json.dumps(saved))
    for item in failing["graph"]["nodes"]:
        if item["id"] == "validate":
            item["params"] = {**item["params"], "labels": LABELS[:2], "gate": "fail"}
    put = httpx.put(f"{base}/api/v1/workflows/{NAME}", json=failing, headers=operator, timeout=30)
    assert put.status_code == 200, put.text
    page.reload()
    node(page, "validate").wait_for()
    page.get_by_test_id("run").click()
    expect(page.get_by_test_id("state-validate")).to_have_text("failed", timeout=240_000)
    expect(page.get_by_test_id("run-state")).to_have_text("failed", ignore_case=True, timeout=60_000)
    open_form(page, "validate")
    failure = page.get_by_test_id("node-failure")
    failure.wait_for()
    message = page.get_by_test_id("node-failure-message").inner_text()
    what_to_do = page.get_by_test_id("node-failure-what-to-do").inner_text()
    assert message.strip(), failure.inner_text()
    assert "quarantine" in what_to_do.lower() and "--" not in what_to_do, what_to_do
    assert "failed" in node(page, "validate").inner_text().lower()
    logs = page.get_by_test_id("node-logs")  # the node's own log lines, in its panel
    expect(logs).to_contain_text("ERROR", timeout=15_000)
    page.screenshot(path=str(shots / "canvas-failed.png"))
    page.close()


def test_expired_or_refused_token_returns_to_sign_in(stack: dict[str, Any], browser: Any) -> None:
    """The API's 401 for an expired token (the page's clock an hour behind, so only the API knows), a token the
    API does not accept, and a token whose own expiry passes while the page is open: each returns to the sign-in
    with a line saying why, never to an empty palette. Then a starter opens from the empty canvas's list."""
    from playwright.sync_api import expect

    base = stack["base"]
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.clock.install(time=time.time() - 3600)
    page.goto(f"{base}/ui/")
    page.get_by_test_id("token").fill(SIGNER.token("olga", ["operator"], ttl_s=-60))  # expired a minute ago
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("sign-in-notice")).to_contain_text("expired", timeout=15_000)
    assert page.get_by_test_id("token").is_visible() and page.get_by_test_id("palette-load").count() == 0
    page.close()

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(f"{base}/ui/")
    page.get_by_test_id("token").fill(Signer.rsa("stranger").token("olga", ["operator"]))
    page.get_by_test_id("sign-in").click()
    expect(page.get_by_test_id("sign-in-notice")).to_contain_text("refused your sign-in", timeout=15_000)

    page.get_by_test_id("token").fill(SIGNER.token("olga", ["operator"], ttl_s=8))
    page.get_by_test_id("sign-in").click()
    page.get_by_test_id("palette-load").wait_for()  # signed in: the palette is there
    expect(page.get_by_test_id("sign-in-notice")).to_contain_text("expired", timeout=15_000)
    page.reload()  # the expired token is not kept: the sign-in again
    page.get_by_test_id("token").wait_for()
    page.close()

    # And a starter opens from the empty canvas's list.
    page = sign_in(browser, base, "olga", "operator")
    page.get_by_test_id("starter-seed-classification").click()
    node(page, "evaluate").wait_for()
    assert page.get_by_test_id("workflow-name").input_value() == "seed-classification"
    expect(page.get_by_test_id("empty-hint")).to_have_count(0)
    page.close()
