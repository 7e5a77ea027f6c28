"""Flow runs push their numbers to a real Prometheus Pushgateway; a gateway that is down never fails a run."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.run_metrics import push_run_metrics
from openautoglm.adapters.sources import CsvSource
from openautoglm.core.nlp.types import TaskConfig
from openautoglm.flows.run_task import RunTaskParams, run_task
from tests.conftest import EXAMPLES, require_binary

pytestmark = [pytest.mark.integration]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    binary = require_binary(
        "prometheus-pushgateway", "pushgateway", install="apt-get install prometheus-pushgateway, or a release"
    )
    port = _free_port()
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}"],
        stdout=(tmp_path / "pushgateway.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=1)
            break
        except OSError:
            time.sleep(0.2)
    try:
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def _scrape(url: str) -> str:
    return urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()


def test_run_task_pushes_its_numbers(
    prefect_server: None, pushgateway: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAUTOGLM_PUSHGATEWAY_URL", pushgateway)
    result = run_task(
        RunTaskParams(
            source=CsvSource(path=EXAMPLES / "user_feedback.csv"),
            task=TaskConfig(labels=("正面", "负面", "中性")),
            model=ModelSpec(model="local-use"),
            label_column="label",
            output_dir=tmp_path / "out",
        )
    )
    text = _scrape(pushgateway)
    labels = 'deployment="adhoc",instance="",job="openautoglm_run_task"'
    assert f"openautoglm_flow_rows_predicted{{{labels}}} {result.rows_predicted}" in text
    assert f"openautoglm_flow_accuracy{{{labels}}} {result.metrics['accuracy']}" in text
    stamp = next(line for line in text.splitlines() if line.startswith("openautoglm_flow_last_success_timestamp"))
    assert abs(float(stamp.split()[-1]) - time.time()) < 600


def test_a_gateway_that_is_down_is_logged_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAUTOGLM_PUSHGATEWAY_URL", f"http://127.0.0.1:{_free_port()}")
    assert push_run_metrics("run_task", {"rows_read": 3}) is False
    monkeypatch.delenv("OPENAUTOGLM_PUSHGATEWAY_URL")
    assert push_run_metrics("run_task", {"rows_read": 3}) is False
