"""End-to-end tests' shared set-up: Debian's chromium driven by Playwright (no browser download), where the
screenshots go (``OPENAUTOGLM_SCREENSHOTS`` when set: the docs' pictures are made that way), and the labelling
loop's servers (:func:`labelling_stack`)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from openautoglm.serve.testing import Signer, api_process, keys_json
from tests.conftest import REPO, require_binary
from tests.integration.servers import BIN, prefect_server, start, stop


def chromium() -> str:
    return require_binary("chromium", install="apt-get install -y chromium (or make infra-tools)")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        try:
            yield launched
        finally:
            launched.close()


def shots_dir(tmp: Path) -> Path:
    folder = Path(os.environ.get("OPENAUTOGLM_SCREENSHOTS") or tmp / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def labelling_stack(tmp: Path, annotations_url: str, signer: Signer) -> Iterator[dict[str, Any]]:
    """The labelling loop's servers: ``prefect server start``, the ``train-round-on-labels`` deployment (made while
    the API starts: each takes tens of seconds on a busy machine), ``openautoglm serve`` (the annotation routes;
    no model preloaded) and a worker of ``openautoglm-pool``, all on ``annotations_url``'s store and an MLflow
    SQLite file under ``tmp/home``. Yields ``base`` (the API's URL), ``env`` (what a further process of the stack
    needs: Prefect API, homes, store) and ``worker_log``; everything is stopped when the block ends.

    Used by the browser test, the REST loop-to-serving test and ``bench/annotate_loop.py``.
    """
    with prefect_server(tmp / "server") as api_url:
        env = {
            "PREFECT_API_URL": api_url,
            "PREFECT_HOME": str(tmp / "client"),
            "PREFECT_WORKER_QUERY_SECONDS": "1",
            "OPENAUTOGLM_HOME": str(tmp / "home"),
            "OPENAUTOGLM_ANNOTATIONS_URL": annotations_url,
        }
        deploying = subprocess.Popen(
            [sys.executable, "-m", "openautoglm.cli", "deploy", "--only", "train-round-on-labels"],
            cwd=REPO,
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        api_env = {
            **env,
            "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(signer),
            "OPENAUTOGLM_SERVE_PRELOAD": "false",
            "OPENAUTOGLM_SERVE_RATE_LIMIT": "100000/minute",
            "OPENAUTOGLM_SERVE_WORKFLOWS_URL": f"sqlite:///{tmp / 'workflows.db'}",
        }
        worker: subprocess.Popen[bytes] | None = None
        try:
            with api_process(api_env, tmp / "api.log") as base:
                output, _ = deploying.communicate(timeout=300)
                if deploying.returncode != 0:
                    raise RuntimeError(f"openautoglm deploy failed: {output[-3000:]}")
                worker_log = tmp / "worker.log"
                worker = start([str(BIN / "openautoglm"), "worker", "--pool", "openautoglm-pool"], env, worker_log)
                yield {"base": base, "env": env, "worker_log": worker_log}
        finally:
            if deploying.poll() is None:
                deploying.kill()
            if worker is not None:
                stop(worker)


# --- the labelling loop driven over REST (the calls the Annotate page makes) -----------------------------------

WAIMAI = Path(os.environ.get("OPENAUTOGLM_DATASETS", REPO.parent / "shared" / "datasets")) / "text" / "waimai_10k"
WAIMAI_LABELS = ("正面", "负面")


def waimai_project(url: str, name: str, rows: int, first_round: int) -> dict[str, str]:
    """A classification project on ``rows`` waimai_10k reviews (sampled with seed 0; no evaluation slice, so every
    answer is a training label and the trigger's count of answers is the count of new labels), its first
    ``first_round`` items queued as round 1 (the cold start's queue, set up directly: the zero-shot pre-labelling
    is measured elsewhere). Returns the gold label per row id (the simulated annotators' answers).

    Raises:
        FileNotFoundError: The shared data set is missing (callers skip, or fail in CI).
    """
    import pandas as pd

    from openautoglm.adapters.annotation_store import AnnotationStore, NewItem, ProjectSpec, Round

    files = sorted(WAIMAI.glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"waimai_10k is not under {WAIMAI} (set OPENAUTOGLM_DATASETS)")
    frame = pd.read_csv(files[0]).sample(rows, random_state=0)
    gold = {str(i): WAIMAI_LABELS[1 - int(v)] for i, v in zip(frame.index, frame["label"], strict=True)}
    store = AnnotationStore(url)
    try:
        store.create_project(ProjectSpec(name=name, labels=WAIMAI_LABELS, eval_share=0.0))
        ids = store.add_items(
            name,
            [
                NewItem(text=str(t), source="waimai_10k", row_id=str(i))
                for i, t in zip(frame.index, frame["review"], strict=True)
            ],
        ).ids
        store.queue_items(name, 1, ids[:first_round], strategy="random")
        store.record_round(name, Round(round=1, model="none", model_version="", queued=first_round))
    finally:
        store.close()
    return gold


class Annotators:
    """Simulated annotators answering over the REST API from the gold labels, taking turns: each asks for its
    next item (``GET .../next``) and posts the gold answer (``POST .../answers``), as the Annotate page does."""

    def __init__(self, base: str, project: str, gold: dict[str, str], tokens: dict[str, str]) -> None:
        self.base, self.project, self.gold = base, project, gold
        self.headers = {who: {"Authorization": f"Bearer {token}"} for who, token in tokens.items()}
        self.answered = 0

    def label_round(self, limit: int) -> float:
        """Answer until nobody has an item left (or ``limit`` answers); returns when (``time.monotonic()``) the
        last answer was sent."""
        import httpx

        root = f"{self.base}/api/v1/annotation/projects/{self.project}"
        last, done, idle = 0.0, 0, set()
        with httpx.Client(timeout=60) as client:
            while done < limit and len(idle) < len(self.headers):
                for who, headers in self.headers.items():
                    if who in idle or done >= limit:
                        continue
                    task = client.get(f"{root}/next", headers=headers)
                    task.raise_for_status()
                    item = task.json()["data"]["item"]
                    if item is None:
                        idle.add(who)
                        continue
                    body = {"item_id": item["id"], "label": self.gold[item["row_id"]], "seconds": 2.0}
                    last = time.monotonic()
                    answer = client.post(f"{root}/answers", json=body, headers=headers)
                    answer.raise_for_status()
                    done += 1
        self.answered += done
        return last


def wait_for_training(url: str, project: str, version: str, timeout_s: float, worker_log: Path) -> Any:
    """The store's record of the training that registered ``version`` of ``project``'s model (polls each second)."""
    from openautoglm.adapters.annotation_store import AnnotationStore

    store = AnnotationStore(url)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            found = [t for t in store.trainings(project) if t.model_version == version]
            if found:
                return found[-1]
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"no version {version} of '{project}' after {timeout_s} s; worker log: "
                    + worker_log.read_text(errors="replace")[-4000:]
                )
            time.sleep(1)
    finally:
        store.close()
