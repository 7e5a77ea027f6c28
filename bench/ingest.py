"""Benchmark: what Prefect, Dask and MLflow cost on top of the bare data pipeline.

The same work (load the 52,774-row online_shopping_9_cats CSV, clean, validate with Great Expectations, write
Parquet) in one process: the bare functions; the ``ingest`` flow on a thread runner; the ``ingest`` flow on a Dask
LocalCluster (2 workers) — both as the CLI runs flows, without flow-run heartbeats — and the flow on threads with
Prefect's default heartbeats (as a worker runs a deployment). Reports the median of N runs, rows/s and each flow's
overhead over the bare pipeline. Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/ingest.py [--runs 3]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")
_tmp = Path(tempfile.mkdtemp(prefix="oag-bench-ingest-"))
os.environ["OPENAUTOGLM_HOME"] = str(_tmp / "home")  # a throwaway MLflow store and run folders

from bench.common import data_root, median_of, write_result  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

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

    def bare() -> float:
        start = time.perf_counter()
        data = DataLoader(params.source).load(rename=params.rename, progress=False)
        _, rejected, _ = clean_frame(data.frame, params.clean_config())
        data = data.reject(rejected)
        data = apply_gate(data, validate_dataset(data, params.validation_config()), "quarantine")
        write_frame(data.frame, _tmp / "bare", "data", "parquet")
        write_frame(data.quarantine, _tmp / "bare", "quarantine", "csv")
        rows["bare"] = (data.rows_read, len(data))
        return time.perf_counter() - start

    def flow_with(runner_name: str):  # type: ignore[no-untyped-def]
        runner = task_runner(Settings(task_runner=runner_name, dask_workers=2))
        configured = ingest.with_options(task_runner=runner)

        def run() -> float:
            start = time.perf_counter()
            result = configured(params)
            rows[runner_name] = (result.rows_read, result.rows_out)
            return time.perf_counter() - start

        return run

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
    if len(set(rows.values())) != 1:
        sys.exit(f"the three ways disagree on the rows: {rows}")
    rows_read, rows_out = rows["bare"]
    base = results["bare"][0]
    table = [
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
    print(f"\ningest of {path.name}: {rows_read} rows read, {rows_out} kept; median of {args.runs} runs")
    print(f"{'way':<14}{'median s':>10}{'rows/s':>10}{'overhead s':>12}{'x bare':>8}")
    for row in table:
        print(
            f"{row['way']:<14}{row['median_s']:>10}{row['rows_per_s']:>10}{row['overhead_s']:>12}"
            f"{row['ratio_to_bare']:>8}"
        )
    print(f"Prefect test server start (once per session): {server_start:.1f} s")
    out = write_result(
        "ingest",
        {
            "dataset": path.name,
            "rows_read": rows_read,
            "rows_out": rows_out,
            "runs": args.runs,
            "prefect_server_start_s": round(server_start, 1),
            "results": table,
        },
        packages=("prefect", "prefect-dask", "dask", "great-expectations", "mlflow", "pandas"),
    )
    print(f"written {out}")
    shutil.rmtree(_tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
