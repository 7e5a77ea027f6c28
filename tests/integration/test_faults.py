"""Fault tests with numbers, on local processes: the project's nginx config in front of two `openautoglm serve`
replicas with one killed under load, and the rate-limit Redis restarted under a running API.

Each prints one ``FAULT {...}`` line with its figures (the README's "Faults" rows come from these lines).
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
import pytest

from openautoglm.serve.testing import Signer, keys_json
from tests.conftest import REPO, require_binary
from tests.integration.servers import BIN, free_port, start, stop, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNER = Signer.rsa("fault-1")
BODY = {"text": "物流很快，包装也很好", "labels": ["正面", "负面", "中性"]}


def _api(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    command = [str(BIN / "openautoglm"), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    process = start(command, {"OMP_NUM_THREADS": "1", **env}, log)
    wait_for(f"http://127.0.0.1:{port}/readyz", 120, process, log)
    return process


def _nginx_conf(tmp_path: Path, ports: tuple[int, int], listen: int) -> Path:
    conf = (REPO / "infra" / "nginx" / "nginx.conf").read_text()
    conf = conf.replace("api-1:8000", f"127.0.0.1:{ports[0]}").replace("api-2:8000", f"127.0.0.1:{ports[1]}")
    conf = conf.replace("listen 8080;", f"listen 127.0.0.1:{listen};")
    # The per-address limit is nginx's own feature, not under test here: on an idle machine 8 clients pass it.
    conf = conf.replace("rate=200r/s", "rate=100000r/s")
    conf = conf.replace("pid /tmp/nginx.pid;", f"pid {tmp_path}/nginx.pid;")
    conf = re.sub(r"(\w+_temp_path) /tmp/", rf"\1 {tmp_path}/", conf)
    path = tmp_path / "nginx.conf"
    path.write_text(conf)
    return path


def test_a_replica_killed_behind_nginx_fails_no_request(tmp_path: Path) -> None:
    nginx = require_binary("nginx", install="apt-get install nginx")
    env = {
        "OPENAUTOGLM_HOME": str(tmp_path / "home"),
        "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(SIGNER),
        "OPENAUTOGLM_SERVE_RATE_LIMIT": "100000/minute",
    }
    ports = (free_port(), free_port())
    listen = free_port()
    replicas = [_api(p, env, tmp_path / f"api-{i}.log") for i, p in enumerate(ports)]
    proxy = start(
        [nginx, "-c", str(_nginx_conf(tmp_path, ports, listen)), "-g", "daemon off;", "-e", str(tmp_path / "e.log")],
        {},
        tmp_path / "nginx.log",
    )
    base = f"http://127.0.0.1:{listen}"
    headers = {"Authorization": f"Bearer {SIGNER.token('load', ['viewer'])}"}
    lock = threading.Lock()
    in_flight = 0
    outcomes: list[tuple[float, int]] = []
    stop_at = 0.0  # set when the load starts; the load is bounded in time (12 s) and in count
    killed: dict[str, float] = {}

    def client() -> None:
        nonlocal in_flight
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < stop_at and len(outcomes) < 5000:
                with lock:
                    in_flight += 1
                try:
                    status = http.post(f"{base}/api/v1/classify", json=BODY, headers=headers).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    in_flight -= 1
                    outcomes.append((time.monotonic(), status))

    try:
        wait_for(f"{base}/nginx-health", 30, proxy, tmp_path / "nginx.log")
        for port in ports:  # the first request of a replica warms its model up: not part of the fault
            warm = httpx.post(f"http://127.0.0.1:{port}/api/v1/classify", json=BODY, headers=headers, timeout=60)
            assert warm.status_code == 200, warm.text
        stop_at = time.monotonic() + 12.0
        clients = [threading.Thread(target=client) for _ in range(8)]
        for thread in clients:
            thread.start()
        time.sleep(4.0)
        with lock:
            killed["in_flight"] = in_flight
            killed["at"] = time.monotonic()
        stop(replicas[1], signal.SIGKILL)
        for thread in clients:
            thread.join(timeout=60)
    finally:
        for process in (proxy, *replicas):
            stop(process)
    after = [s for t, s in outcomes if t > killed["at"]]
    failed_after = [s for s in after if s != 200]
    figures = {
        "fault": "api replica SIGKILL behind nginx",
        "requests": len(outcomes),
        "after_kill": len(after),
        "in_flight_at_kill": killed["in_flight"],
        "failed_after_kill": len(failed_after),
        "failed_before_kill": sum(1 for t, s in outcomes if t <= killed["at"] and s != 200),
    }
    print("FAULT " + json.dumps(figures))
    assert figures["failed_before_kill"] == 0, figures
    assert figures["requests"] - figures["after_kill"] > 20, figures  # both replicas served before the kill
    assert len(after) > 20, figures  # the surviving replica kept serving
    # The model routes have no side effects, so nginx resends a request the dead replica cut off: none fails.
    assert failed_after == [], figures


def test_redis_restart_rate_limit_fails_open_and_readiness_recovers(tmp_path: Path) -> None:
    redis = require_binary("redis-server", install="apt-get install redis-server")
    port = free_port()
    redis_cmd = [redis, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    store = start(redis_cmd, {}, tmp_path / "redis.log")
    api_port = free_port()
    env = {
        "OPENAUTOGLM_HOME": str(tmp_path / "home"),
        "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(SIGNER),
        "OPENAUTOGLM_SERVE_RATE_LIMIT": "1000/minute",
        "OPENAUTOGLM_SERVE_RATE_LIMIT_STORAGE": f"redis://127.0.0.1:{port}/0",
    }
    headers = {"Authorization": f"Bearer {SIGNER.token('r', ['viewer'])}"}
    api = None
    try:
        time.sleep(0.5)
        api = _api(api_port, env, tmp_path / "api.log")
        base = f"http://127.0.0.1:{api_port}"
        assert httpx.post(f"{base}/api/v1/classify", json=BODY, headers=headers, timeout=30).status_code == 200
        stop(store, signal.SIGKILL)
        down = [httpx.post(f"{base}/api/v1/classify", json=BODY, headers=headers, timeout=30) for _ in range(5)]
        ready_down = httpx.get(f"{base}/readyz", timeout=30)
        store = start(redis_cmd, {}, tmp_path / "redis2.log")
        restarted = time.monotonic()
        while httpx.get(f"{base}/readyz", timeout=30).status_code != 200:
            assert time.monotonic() - restarted < 60, "readiness did not recover"
            time.sleep(0.2)
        recovered_s = time.monotonic() - restarted
        back = httpx.post(f"{base}/api/v1/classify", json=BODY, headers=headers, timeout=30)
    finally:
        if api is not None:
            stop(api)
        stop(store)
    figures = {
        "fault": "rate-limit Redis killed and restarted",
        "requests_while_down_ok": sum(r.status_code == 200 for r in down),
        "requests_while_down": len(down),
        "readyz_while_down": ready_down.status_code,
        "readiness_recovered_s": round(recovered_s, 2),
    }
    print("FAULT " + json.dumps(figures))
    assert figures["requests_while_down_ok"] == len(down), figures  # fails open
    assert ready_down.status_code == 503 and ready_down.json()["code"] == 50302
    assert back.status_code == 200


def test_postgres_connection_dropped_during_a_read_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the reading session mid-stream (pg_terminate_backend once 5,000 rows are in): one clear
    error naming the source, and no partial data set comes back."""
    import sqlalchemy as sa

    from openautoglm import DataLoader
    from openautoglm.adapters.sources import sql as sql_source
    from openautoglm.core.errors import DataSourceError
    from tests.conftest import require_service

    require_service("PostgreSQL", "127.0.0.1", 5432)
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    table = f"oag_fault_{free_port()}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(f"CREATE TABLE {table} AS SELECT g AS id, md5(g::text) AS text FROM generate_series(1, 200000) g")
        )
        conn.execute(sa.text(f"ALTER TABLE {table} ADD PRIMARY KEY (id)"))
    ended: list[int] = []

    class Dropping(sql_source.RowCollector):  # type: ignore[misc,name-defined]
        def good(self, *args: object, **kwargs: object) -> None:
            super().good(*args, **kwargs)
            if self.count == 5000 and not ended:  # the server, not the client, ends the session
                with engine.begin() as admin:
                    ended.extend(
                        admin.execute(
                            sa.text(
                                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = 'oag-fault-read'"
                            )
                        ).scalars()
                    )

    monkeypatch.setattr(sql_source, "RowCollector", Dropping)
    try:
        started = time.monotonic()
        with pytest.raises(DataSourceError) as caught:
            DataLoader.from_sql(f"{url}?application_name=oag-fault-read", table).load()
        seconds = time.monotonic() - started
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        engine.dispose()
    message = caught.value.message
    figures = {"fault": "PostgreSQL session terminated mid-read", "error_after_s": round(seconds, 2)}
    print("FAULT " + json.dumps({**figures, "message": message[:100]}))
    assert ended == [True], "the reading session was not found"
    assert "\n" not in message and table in message, message  # one line, naming what was being read


def test_prefect_server_restarted_during_a_flow_run_loses_no_row(tmp_path: Path) -> None:
    """The Prefect server stops for a few seconds while a run_task flow run is mid-way: the run finishes (its
    client retries), or a rerun completes it from the call cache; either way every row is predicted exactly once."""
    import os
    import sys

    import pandas as pd

    from openautoglm.testing import FakeZhipuServer

    rows = 60
    path = tmp_path / "rows.csv"
    pd.DataFrame({"text": [f"用户反馈{i}号：{'好' * (i % 5 + 1)}" for i in range(rows)]}).to_csv(path, index=False)
    port = free_port()
    server_env = {
        "PREFECT_HOME": str(tmp_path / "prefect-server"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    serve_cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    health = f"http://127.0.0.1:{port}/api/health"
    prefect = start(serve_cmd, server_env, tmp_path / "prefect-1.log")
    with FakeZhipuServer(latency_s=0.3) as glm:
        env = {
            **os.environ,
            "OPENAUTOGLM_HOME": str(tmp_path / "home"),
            "OPENAUTOGLM_TASK_RUNNER": "threads",
            "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
            "PREFECT_HOME": str(tmp_path / "prefect-client"),
            "ZHIPUAI_API_KEY": glm.api_key,
        }
        command = [
            sys.executable, "-m", "openautoglm.cli", "run", str(path), "--model", "glm-4", "--base-url", glm.base_url,
            "--labels", "正面,负面,中性", "--batch-size", "6", "--max-concurrency", "2", "-o", str(tmp_path / "out"),
        ]  # fmt: skip
        try:
            wait_for(health, 120, prefect, tmp_path / "prefect-1.log")
            run = start(command, {**env, "PYTHONUNBUFFERED": "1"}, tmp_path / "run-1.log")
            deadline = time.monotonic() + 180
            while glm.answered < 18 and time.monotonic() < deadline and run.poll() is None:
                time.sleep(0.05)
            assert run.poll() is None, (tmp_path / "run-1.log").read_text(errors="replace")[-3000:]
            stop(prefect)  # the server goes away mid-run ...
            down_at = time.monotonic()
            time.sleep(3.0)
            prefect = start(serve_cmd, server_env, tmp_path / "prefect-2.log")  # ... and comes back on its database
            wait_for(health, 120, prefect, tmp_path / "prefect-2.log")
            downtime = time.monotonic() - down_at
            first_rc = run.wait(timeout=300)
            answered_first = glm.answered
            rerun_calls = 0
            if first_rc != 0:
                glm.reset_counts()
                second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
                assert second.returncode == 0, second.stderr[-3000:]
                rerun_calls = glm.requests
        finally:
            stop(prefect)
    results = pd.read_csv(tmp_path / "out" / "results.csv")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    figures = {
        "fault": "Prefect server stopped and restarted mid-run",
        "server_down_s": round(downtime, 1),
        "first_run_finished": first_rc == 0,
        "answered_in_first_run": answered_first,
        "calls_on_rerun": rerun_calls,
        "rows_predicted": summary["rows_predicted"],
    }
    print("FAULT " + json.dumps(figures))
    assert len(results) == rows and results["row_id"].is_unique, figures
    assert summary["status_counts"] == {"ok": rows}, summary
    assert rerun_calls <= rows - 18, figures  # a rerun asks only for what was not answered before
