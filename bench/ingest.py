"""Benchmark: what Prefect, Dask and MLflow cost on top of the bare data pipeline.

The same work (load the 52,774-row online_shopping_9_cats CSV, clean, validate with Great Expectations, write
Parquet) in one process: the bare functions; the ``ingest`` flow on a thread runner; the ``ingest`` flow on a Dask
LocalCluster (2 workers) — both as the CLI runs flows, without flow-run heartbeats — and the flow on threads with
Prefect's default heartbeats (as a worker runs a deployment). Then the bare functions and the flow on threads again
on the file replicated ``--replicas`` times (a temporary CSV: copy k > 0 of a non-empty review ends in `` #k``, so
the copies are no duplicates of each other and the quarantine is the original's, times the copies). Reports the
median of N runs, rows/s, each flow's overhead over the bare pipeline, the issue's goals (``goals``: flow minus bare
per run <= 0.30 s on the file, flow/bare <= 1.3x on the replicated file) and the load average before and after.
Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/ingest.py [--runs 5] [--replicas 10]``.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")
_tmp = Path(tempfile.mkdtemp(prefix="oag-bench-ingest-"))
os.environ["OPENAUTOGLM_HOME"] = str(_tmp / "home")  # a throwaway MLflow store and run folders

from bench.common import data_root, median_of, write_result  # noqa: E402

#: The issue's goals (issue 32, part 6): the flow's cost per run over the bare functions, and its ratio to them on
#: a file ten times the size.
GOAL_OVERHEAD_S = 0.30
GOAL_RATIO_REPLICATED = 1.3
REVIEW = "review"


def replicate_csv(path: Path, copies: int, out: Path) -> Path:
    """``path`` written ``copies`` times into ``out``; in copy k > 0 a non-empty review ends in `` #k`` (unique texts,
    so the cleaning quarantines no copy as a duplicate of another; empty reviews stay empty)."""
    with path.open(encoding="utf-8", newline="") as source, out.open("w", encoding="utf-8", newline="") as target:
        reader = csv.reader(source)
        header = next(reader)
        rows = list(reader)
        writer = csv.writer(target)
        writer.writerow(header)
        column = header.index(REVIEW)
        for k in range(copies):
            for row in rows:
                if k and len(row) == len(header) and row[column].strip():
                    row = [*row[:column], f"{row[column]} #{k}", *row[column + 1 :]]
                writer.writerow(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=10, help="copies of the file for the second part; 0: skip it")
    args = parser.parse_args()
    load_before = [round(x, 2) for x in os.getloadavg()]

    from prefect.testing.utilities import prefect_test_harness

    from openautoglm import DataLoader
    from openautoglm.adapters.sinks import write_frame
    from openautoglm.adapters.sources import CsvSource
    from openautoglm.adapters.validation import apply_gate, validate_dataset
    from openautoglm.core.data.clean import clean_frame
    from openautoglm.flows.ingest import IngestParams, ingest
    from openautoglm.flows.runtime import task_runner, without_flow_heartbeats
    from openautoglm.settings import Settings

    path = data_root() / "text" / "online_shopping_9_cats" / "online_shopping_9_cats.csv"
    params = IngestParams(
        source=CsvSource(path=path, on_error="quarantine"),
        rename={"review": "text"},
        label_column="cat",
        labels=["书籍", "平板", "手机", "水果", "洗发水", "热水器", "蒙牛", "衣服", "计算机"],
        gate="quarantine",
        output_dir=_tmp / "out",
        chunk_rows=20_000,
    )
    rows = {}

    def bare_of(given: IngestParams, counts: dict[str, tuple[int, int]]):  # type: ignore[no-untyped-def]
        def run() -> float:
            start = time.perf_counter()
            data = DataLoader(given.source).load(rename=given.rename, progress=False)
            _, rejected, _ = clean_frame(data.frame, given.clean_config())
            data = data.reject(rejected)
            data = apply_gate(data, validate_dataset(data, given.validation_config()), "quarantine")
            write_frame(data.frame, _tmp / "bare", "data", "parquet")
            write_frame(data.quarantine, _tmp / "bare", "quarantine", "csv")
            counts["bare"] = (data.rows_read, len(data))
            return time.perf_counter() - start

        return run

    def flow_of(given: IngestParams, counts: dict[str, tuple[int, int]], runner_name: str):  # type: ignore[no-untyped-def]
        runner = task_runner(Settings(task_runner=runner_name, dask_workers=2))
        configured = ingest.with_options(task_runner=runner)

        def run() -> float:
            start = time.perf_counter()
            result = configured(given)
            counts[runner_name] = (result.rows_read, result.rows_out)
            return time.perf_counter() - start

        return run

    bare = bare_of(params, rows)

    def flow_with(runner_name: str):  # type: ignore[no-untyped-def]
        return flow_of(params, rows, runner_name)

    bare()  # warm imports (pandas, Great Expectations) so the first timed run is not penalised
    t0 = time.perf_counter()
    with prefect_test_harness(server_startup_timeout=90):
        server_start = time.perf_counter() - t0
        flow_with("threads")()  # warm the Prefect client and MLflow store
        # As the CLI runs flows (no flow-run heartbeats in this process), then as Prefect's default does (a worker's
        # runs): its heartbeat thread sleeps in 1-s steps and is joined at the end of every run.
        with without_flow_heartbeats():
            results = {
                "bare": median_of(args.runs, bare),
                "flow_threads": median_of(args.runs, flow_with("threads")),
                "flow_dask": median_of(args.runs, flow_with("dask")),
            }
        results["flow_threads_heartbeats"] = median_of(args.runs, flow_with("threads"))
        replicated: dict[str, Any] = {}
        if args.replicas > 1:
            big = replicate_csv(path, args.replicas, _tmp / f"{path.stem}_x{args.replicas}.csv")
            big_params = params.model_copy(update={"source": CsvSource(path=big, on_error="quarantine")})
            big_rows: dict[str, tuple[int, int]] = {}
            with without_flow_heartbeats():
                bare_of(big_params, big_rows)()  # warm the page cache with the larger file
                replicated = {
                    "bare": median_of(args.runs, bare_of(big_params, big_rows)),
                    "flow_threads": median_of(args.runs, flow_of(big_params, big_rows, "threads")),
                }
            if len(set(big_rows.values())) != 1:
                sys.exit(f"the ways disagree on the rows of the replicated file: {big_rows}")
    if len(set(rows.values())) != 1:
        sys.exit(f"the three ways disagree on the rows: {rows}")
    rows_read, rows_out = rows["bare"]
    table = _table(results, rows_read)
    _print(f"ingest of {path.name}: {rows_read} rows read, {rows_out} kept; median of {args.runs} runs", table)
    print(f"Prefect test server start (once per session): {server_start:.1f} s")
    overhead = _way(table, "flow_threads")["overhead_s"]
    goals: dict[str, dict[str, Any]] = {
        "flow_minus_bare_per_run_s": {"goal": GOAL_OVERHEAD_S, "measured": overhead, "met": overhead <= GOAL_OVERHEAD_S}
    }
    payload: dict[str, Any] = {}
    if replicated:
        big_read, big_out = big_rows["bare"]
        big_table = _table(replicated, big_read)
        _print(f"the file x{args.replicas}: {big_read} rows read, {big_out} kept", big_table)
        ratio = _way(big_table, "flow_threads")["ratio_to_bare"]
        goals[f"flow_to_bare_ratio_x{args.replicas}"] = {
            "goal": GOAL_RATIO_REPLICATED,
            "measured": ratio,
            "met": ratio <= GOAL_RATIO_REPLICATED,
        }
        payload["replicated"] = {
            "copies": args.replicas,
            "how": "the CSV written that many times; in copy k > 0 a non-empty review ends in ' #k' (no copy is a "
            "duplicate of another)",
            "rows_read": big_read,
            "rows_out": big_out,
            "results": big_table,
        }
    for name, goal in goals.items():
        print(f"goal {name}: {goal['measured']} (goal <= {goal['goal']}: {'met' if goal['met'] else 'missed'})")
    load_after = [round(x, 2) for x in os.getloadavg()]
    print(f"load average (1, 5, 15 min) before {load_before}, after {load_after} on {os.cpu_count()} cores")
    out = write_result(
        "ingest",
        {
            "dataset": path.name,
            "rows_read": rows_read,
            "rows_out": rows_out,
            "runs": args.runs,
            "prefect_server_start_s": round(server_start, 1),
            "load_average": {"before": load_before, "after": load_after, "cores": os.cpu_count()},
            "results": table,
            **payload,
            "goals": goals,
        },
        packages=("prefect", "prefect-dask", "dask", "great-expectations", "mlflow", "pandas"),
    )
    print(f"written {out}")
    shutil.rmtree(_tmp, ignore_errors=True)


def _table(results: dict[str, tuple[float, list[float]]], rows_read: int) -> list[dict[str, Any]]:
    base = results["bare"][0]
    return [
        {
            "way": name,
            "median_s": round(m, 2),
            "runs_s": [round(v, 2) for v in values],
            "rows_per_s": round(rows_read / m),
            "overhead_s": round(m - base, 2),
            "ratio_to_bare": round(m / base, 2),
        }
        for name, (m, values) in results.items()
    ]


def _way(table: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(row for row in table if row["way"] == name)


def _print(title: str, table: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    print(f"{'way':<24}{'median s':>10}{'rows/s':>10}{'overhead s':>12}{'x bare':>8}")
    for row in table:
        print(
            f"{row['way']:<24}{row['median_s']:>10}{row['rows_per_s']:>10}{row['overhead_s']:>12}"
            f"{row['ratio_to_bare']:>8}"
        )


if __name__ == "__main__":
    main()
