"""End-to-end tests' shared set-up: Debian's chromium driven by Playwright (no browser download), where the
screenshots go (``OPENAUTOGLM_SCREENSHOTS`` when set: the docs' pictures are made that way), and the labelling
loop's servers (:func:`labelling_stack`)."""

from __future__ import annotations

import os
import subprocess
import sys
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
