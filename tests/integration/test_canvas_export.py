"""One path convention (issue 33): a starter's paths are relative to the data root; a canvas run (the graph as the
API's confinement sends it to the worker) and the API's exported code, run with `python` from an unrelated temp
folder, read the same file and write the same results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from openautoglm.core.workflow_file import load_workflow
from openautoglm.serve import confine
from openautoglm.serve.app import create_app
from openautoglm.serve.testing import Signer
from tests.canvas_settings import canvas_settings
from tests.conftest import EXAMPLES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNER = Signer.ec("canvas-export")
STARTER = "seed-classification"


def starter() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / "workflows" / f"{STARTER}.json").read_text(encoding="utf-8"))
    return data


#: Model call counts: the second run answers from the call cache the first one filled.
CALL_COUNTS = frozenset({"calls", "cache_hits"})


def comparable(value: Any, folder: Path) -> Any:
    """A run's node outputs without its own folder, the data root's prefix (the canvas run's paths arrive resolved)
    and the call counts."""
    text = json.dumps(value, ensure_ascii=False).replace(str(folder), "<folder>").replace(f"{EXAMPLES}/", "")

    def drop(item: Any) -> Any:
        if isinstance(item, dict):
            return {k: drop(v) for k, v in item.items() if k not in CALL_COUNTS}
        return [drop(v) for v in item] if isinstance(item, list) else item

    return drop(json.loads(text))


def test_exported_code_run_from_another_folder_writes_what_the_canvas_run_writes(
    prefect_server: None, tmp_path: Path
) -> None:
    from prefect.settings import PREFECT_API_URL

    from openautoglm.flows.pipeline import PipelineParams, pipeline

    file = load_workflow(starter())
    assert file.graph.nodes[0].params["source"]["path"] == "user_feedback.csv"  # relative to the data root
    # The canvas run: what POST /workflows/{name}/runs sends the worker (the paths resolved by the confinement).
    policy = confine.JobPolicy(data_roots=(EXAMPLES,))
    sent = confine.prepare("pipeline", {}, {"params": {"graph": file.graph.model_dump(mode="json")}}, policy)
    assert sent["params"]["graph"]["nodes"][0]["params"]["source"]["path"] == str(EXAMPLES / "user_feedback.csv")
    canvas = pipeline(PipelineParams.model_validate({**sent["params"], "output_dir": tmp_path / "canvas"}))

    # The export, as GET /workflows/{name}/export gives it with the same data root.
    settings = canvas_settings(tmp_path, SIGNER)
    with TestClient(create_app(settings)) as api:
        headers = {"Authorization": f"Bearer {SIGNER.token('vera', ['viewer'])}"}
        exported = api.get(f"/api/v1/workflows/{STARTER}/export", headers=headers)
    assert exported.status_code == 200, exported.text
    elsewhere = tmp_path / "elsewhere"  # neither the repository nor the data root
    elsewhere.mkdir()
    script = elsewhere / exported.json()["data"]["filename"]
    script.write_text(exported.json()["data"]["code"], encoding="utf-8")
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "OPENAUTOGLM_TASK_RUNNER": "threads"}
    env.pop("PYTHONPATH", None)
    done = subprocess.run(
        [sys.executable, script.name, "out"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = elsewhere / "out"  # OUTPUT_DIR is taken from where the script was started, not from the data root
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["order"] == canvas.order
    assert comparable(summary["outputs"], out) == comparable(canvas.outputs, tmp_path / "canvas")
    assert summary["outputs"]["evaluate"]["metrics"]["accuracy"] >= 0.85  # local-auto: 54 of 60
    ours = pd.read_csv(out / "results.csv", encoding="utf-8-sig")
    theirs = pd.read_csv(tmp_path / "canvas" / "results.csv", encoding="utf-8-sig")
    columns = ["text", "prediction", "status"]
    assert len(ours) == 60 and ours[columns].equals(theirs[columns])
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "canvas").iterdir())
