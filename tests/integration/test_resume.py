"""Crash and resume: kill the flow-run process mid-batch; the rerun completes only what is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from openautoglm.adapters.cache import CallCache
from openautoglm.testing import FakeZhipuServer
from tests.conftest import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_killed_run_resumes_without_repeating_work(tmp_path: Path) -> None:
    rows = 60
    path = tmp_path / "rows.csv"
    pd.DataFrame({"text": [f"用户反馈{i}号：{'好' * (i % 5 + 1)}" for i in range(rows)]}).to_csv(path, index=False)
    home = tmp_path / "home"
    with FakeZhipuServer(latency_s=0.3) as server:
        env = {
            **os.environ,
            "OPENAUTOGLM_HOME": str(home),
            "PREFECT_HOME": str(tmp_path / "prefect"),
            "ZHIPUAI_API_KEY": server.api_key,
        }
        command = [
            sys.executable,
            "-m",
            "openautoglm.cli",
            "run",
            str(path),
            "--model",
            "glm-4",
            "--base-url",
            server.base_url,
            "--labels",
            "正面,负面,中性",
            "--batch-size",
            "6",
            "--max-concurrency",
            "2",
            "-o",
            str(tmp_path / "out"),
        ]
        first = subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        deadline = time.monotonic() + 180
        while server.answered < 24 and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)  # the CLI, its flow run, its Dask workers
        first.wait(timeout=30)
        assert not (tmp_path / "out" / "summary.json").exists(), "the first run finished before it was killed"
        answered_before = server.answered
        cached = len(CallCache(home / "cache" / "calls.sqlite"))
        server.reset_counts()

        second = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
        assert second.returncode == 0, second.stderr[-3000:]
        summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["rows_predicted"] == rows and summary["status_counts"] == {"ok": rows}
    assert 0 < cached <= answered_before < rows
    assert server.requests == rows - cached  # only the rows without an answer are asked again
    assert summary["calls"] == rows - cached and summary["batches_cached"] >= 1
    (tmp_path.parent / "resume_counts.json").write_text(
        json.dumps(
            {
                "rows": rows,
                "answered_before_kill": answered_before,
                "cached_at_kill": cached,
                "batches_cached_on_rerun": summary["batches_cached"],
                "calls_on_rerun": summary["calls"],
            }
        )
    )
    print(
        f"resume: {answered_before} answered before the kill, {cached} cached; rerun asked "
        f"{server.requests} of {rows}, {summary['batches_cached']} of {summary['batches']} batches from cache"
    )
