"""Benchmark: ``openautoglm run`` streamed from source to sink (issue 35): peak memory of every process, time as
the rows grow, and a run killed at about half and started again.

The model is a saved learned classifier (``local:<folder>``: char TF-IDF + logistic regression, the
``learned-classifier`` folder kind ``TaskPipeline.save`` writes), fitted here on 2,000 waimai_10k rows, so the model
does not dominate. The data: waimai_10k replicated to N rows, copy k > 0 of each review ending in `` #k`` (no copy
repeats another; the original's own repeats stay and are quarantined). Each run is the CLI in a subprocess with the
defaults (a Dask LocalCluster), its process tree's resident memory sampled every 0.2 s with psutil.

Reports per size: wall seconds, the peak RSS of the largest process and of the tree, rows/s; the time at the
largest size against the smallest scaled linearly; a run killed once half its chunks are written and rerun (rows the
rerun sent to the model / rows not yet written at the kill); and whether chunked and whole-file runs on waimai_10k
give the same results file, quarantine and accuracy. Writes ``bench/results/stream.json`` with ``goals``.
Run: ``OMP_NUM_THREADS=1 nice -n 5 .venv/bin/python bench/stream.py [--sizes 100000,1000000] [--chunk-rows 20000]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

from bench.common import REPO, data_root, write_result

LABELS = {"1": "正面", "0": "负面"}
#: Rows per model batch (each batch is one task run on the task runner); 0: the CLI's default.
BATCH_SIZE = 0
#: One Prefect home for every run (its database is set up once).
PREFECT_HOME = Path(tempfile.mkdtemp(prefix="oag-bench-stream-prefect-"))
#: The issue's goals (issue 35).
GOAL_RSS_MB = 1024
GOAL_TIME_RATIO = 1.2
GOAL_RERUN_RATIO = 1.05


def replicate(source: Path, rows: int, out: Path) -> Path:
    """``rows`` rows of waimai_10k (label as 正面/负面, review as text), copy k > 0 suffixed `` #k``."""
    with source.open(encoding="utf-8", newline="") as handle:
        base = [(LABELS[r["label"]], r["review"]) for r in csv.DictReader(handle)]
    with out.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "text"])
        for i in range(rows):
            copy, at = divmod(i, len(base))
            label, text = base[at]
            writer.writerow([label, f"{text} #{copy}" if copy else text])
    return out


def fit_model(source: Path, folder: Path) -> Path:
    """A learned classifier on 2,000 shuffled waimai_10k rows (seed 0), saved as a model folder."""
    from openautoglm.adapters.models import ModelSpec
    from openautoglm.adapters.models.learned import LearnedClassifier
    from openautoglm.core.nlp.learn import FewLabelClassifier

    with source.open(encoding="utf-8", newline="") as handle:
        rows = [(LABELS[r["label"]], r["review"]) for r in csv.DictReader(handle)]
    random.Random(0).shuffle(rows)
    texts, labels = [t for _, t in rows[:2000]], [label for label, _ in rows[:2000]]
    head = FewLabelClassifier().fit(texts, labels, (), [t for _, t in rows])
    return LearnedClassifier(ModelSpec(model="local-use"), head).save(folder)


class TreeSampler:
    """Peak resident memory of a process and its descendants, sampled on a thread."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        self.pid, self.every = pid, every
        self.largest: dict[int, tuple[int, str]] = {}
        self.total = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self._stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for proc in tree:
                try:
                    rss = proc.memory_info().rss
                    name = " ".join(proc.cmdline()[:4])[:80]
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                total += rss
                if rss > self.largest.get(proc.pid, (0, ""))[0]:
                    self.largest[proc.pid] = (rss, name)
            self.total = max(self.total, total)
            time.sleep(self.every)

    def stop(self) -> dict[str, Any]:
        self._stop.set()
        self._thread.join(timeout=5)
        peaks = sorted(self.largest.values(), reverse=True)
        return {
            "peak_rss_largest_mb": round(peaks[0][0] / 2**20, 1) if peaks else None,
            "largest_process": peaks[0][1] if peaks else None,
            "peak_rss_tree_mb": round(self.total / 2**20, 1),
            "processes": len(peaks),
            "per_process_mb": [round(rss / 2**20, 1) for rss, _ in peaks],
        }


def run_cli(
    path: Path,
    out: Path,
    home: Path,
    model: Path,
    chunk_rows: int,
    *,
    label: bool = False,
    kill_at: float | None = None,
) -> dict[str, Any]:
    """``openautoglm run`` on ``path`` in a subprocess; with ``kill_at``, killed (its whole process group) once that
    share of its chunks is written."""
    env = {**os.environ, "OPENAUTOGLM_HOME": str(home), "PREFECT_HOME": str(PREFECT_HOME)}
    env["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "300"  # the machine is shared: a slow start is no failure
    env["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
    command = [sys.executable, "-m", "openautoglm.cli", "run", str(path), "--model", f"local:{model}"]
    command += ["--labels", "正面,负面", "--text-column", "text", "--chunk-rows", str(chunk_rows), "--no-cache"]
    command += ["--batch-size", str(BATCH_SIZE)] if BATCH_SIZE else []
    command += ["-o", str(out), *(["--label-column", "label"] if label else [])]
    total_chunks = -(-sum(1 for _ in path.open(encoding="utf-8")) // chunk_rows)
    started = time.perf_counter()
    proc = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    sampler = TreeSampler(proc.pid)
    written_at_kill = None
    if kill_at is not None:
        while proc.poll() is None:
            markers = list((home / "chunks").glob("*/chunk-*.json"))
            if len(markers) >= kill_at * total_chunks:
                os.killpg(proc.pid, signal.SIGKILL)
                written_at_kill = sum(json.loads(m.read_text())["rows_out"] for m in markers)
                break
            time.sleep(0.1)
    _, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    memory = sampler.stop()
    result: dict[str, Any] = {"seconds": round(seconds, 1), "returncode": proc.returncode, **memory}
    if written_at_kill is not None:
        result["rows_written_at_kill"] = written_at_kill
        return result
    if proc.returncode != 0:
        raise SystemExit(f"run failed ({proc.returncode}): {stderr.decode()[-3000:]}")
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    keep = ("rows_read", "rows_predicted", "rows_quarantined", "rows_inferred", "chunks", "chunks_resumed", "metrics")
    result.update({k: summary.get(k) for k in keep})
    result["rows_per_second"] = round(summary["rows_read"] / seconds, 1)
    return result


def same_files(a: Path, b: Path) -> bool:
    import pandas as pd

    left = pd.read_csv(a / "results.csv", encoding="utf-8-sig").drop(columns=["latency_ms"])
    right = pd.read_csv(b / "results.csv", encoding="utf-8-sig").drop(columns=["latency_ms"])
    q = [
        pd.read_csv(x / "quarantine.csv", encoding="utf-8-sig").sort_values("row_id").reset_index(drop=True)
        for x in (a, b)
    ]
    return bool(left.equals(right) and q[0].equals(q[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000", help="comma-separated row counts, smallest first")
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=0, help="rows per model batch; 0: the CLI's default")
    parser.add_argument("--skip-kill", action="store_true")
    parser.add_argument("--skip-identical", action="store_true", help="skip the chunked vs whole-file runs")
    parser.add_argument("--name", default="stream", help="the result file: bench/results/<name>.json")
    args = parser.parse_args()
    global BATCH_SIZE
    BATCH_SIZE = args.batch_size
    sizes = [int(s) for s in args.sizes.split(",")]
    load_before = [round(x, 2) for x in os.getloadavg()]
    work = Path(tempfile.mkdtemp(prefix="oag-bench-stream-"))
    source = data_root() / "text" / "waimai_10k" / "waimai_10k.csv"
    model = fit_model(source, work / "model")
    payload: dict[str, Any] = {
        "model": "local:<folder> learned-classifier (char TF-IDF + logistic regression), fitted on 2,000 waimai_10k "
        "rows (seed 0)",
        "data": "waimai_10k replicated, copy k > 0 suffixed ' #k'",
        "chunk_rows": args.chunk_rows,
        "chunks_in_flight": 2,
        "batch_size": args.batch_size or "the CLI's default",
        "runner": "the CLI's default (Dask LocalCluster)",
        "sizes": {},
    }

    identical = None
    if not args.skip_identical:  # chunked and whole-file runs on waimai_10k itself: same rows, quarantine, accuracy
        with source.open(encoding="utf-8", newline="") as handle:
            waimai = replicate(source, sum(1 for _ in csv.DictReader(handle)), work / "waimai.csv")
        chunked = run_cli(waimai, work / "w-chunked", work / "home-w1", model, 1_000, label=True)
        whole = run_cli(waimai, work / "w-whole", work / "home-w2", model, 100_000, label=True)
        identical = same_files(work / "w-chunked", work / "w-whole") and chunked["metrics"] == whole["metrics"]
        payload["waimai_10k"] = {"chunked_1000": chunked, "whole_file": whole, "identical": identical}
        print(f"waimai_10k: chunked == whole-file: {identical}; accuracy {whole['metrics'].get('accuracy')}")

    for rows in sizes:
        path = replicate(source, rows, work / f"rows{rows}.csv")
        measured = run_cli(path, work / f"out{rows}", work / f"home{rows}", model, args.chunk_rows)
        payload["sizes"][str(rows)] = measured
        print(
            f"{rows:>9} rows: {measured['seconds']} s, largest process {measured['peak_rss_largest_mb']} MB, tree "
            f"{measured['peak_rss_tree_mb']} MB"
        )
        path.unlink()

    if not args.skip_kill:
        rows = sizes[0]
        path = replicate(source, rows, work / "kill.csv")
        home = work / "home-kill"
        killed = run_cli(path, work / "kill-out", home, model, args.chunk_rows, kill_at=0.5)
        rerun = run_cli(path, work / "kill-out", home, model, args.chunk_rows)
        left = rerun["rows_predicted"] - killed["rows_written_at_kill"]
        payload["kill_and_rerun"] = {
            "rows": rows,
            "killed": killed,
            "rerun": rerun,
            "rows_left": left,
            "ratio": round(rerun["rows_inferred"] / max(left, 1), 4),
        }
        print(
            f"killed at {killed['rows_written_at_kill']} rows written; the rerun sent {rerun['rows_inferred']} "
            f"rows to the model for {left} left"
        )

    goals: dict[str, Any] = {}
    for size, measured in payload["sizes"].items():
        goals[f"peak_rss_largest_process_mb_{size}_csv"] = {
            "goal": f"<= {GOAL_RSS_MB}",
            "measured": measured["peak_rss_largest_mb"],
            "met": measured["peak_rss_largest_mb"] <= GOAL_RSS_MB,
        }
    if len(sizes) > 1:
        small, large = payload["sizes"][str(sizes[0])], payload["sizes"][str(sizes[-1])]
        ratio = large["seconds"] / (small["seconds"] * sizes[-1] / sizes[0])
        goals["time_largest_vs_linear_from_smallest"] = {
            "goal": f"<= {GOAL_TIME_RATIO}",
            "measured": round(ratio, 3),
            "met": ratio <= GOAL_TIME_RATIO,
        }
    if "kill_and_rerun" in payload:
        ratio = payload["kill_and_rerun"]["ratio"]
        goals["rerun_model_rows_over_rows_left"] = {
            "goal": f"<= {GOAL_RERUN_RATIO}",
            "measured": ratio,
            "met": ratio <= GOAL_RERUN_RATIO,
        }
    if identical is not None:
        goals["chunked_equals_whole_file_waimai_10k"] = {"goal": "identical", "measured": identical, "met": identical}
    payload["goals"] = goals
    payload["load_average"] = {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]}
    payload["note"] = "2 cores shared with other sessions; see load_average"
    path = write_result(args.name, payload, packages=("prefect", "dask", "pyarrow", "psutil"))
    print(json.dumps(goals, ensure_ascii=False, indent=1))
    print(f"-> {path}")


if __name__ == "__main__":
    main()
