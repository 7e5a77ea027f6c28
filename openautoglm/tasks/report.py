"""The ``report-run`` task: a prediction run's metrics, files and artifacts, once its results are written.

It runs wherever the task runner puts it (a thread or a Dask worker), so it logs to the flow's MLflow run by id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.plots import confusion_matrix_png
from openautoglm.adapters.sinks import write_json
from openautoglm.adapters.tracking import ParentRun, log_to_run
from openautoglm.core.data.schema import ROW_ID


def numeric_metrics(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The numbers among nested metrics, keys joined with dots (the confusion matrix and flags left out)."""
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            flat[f"{prefix}{key}"] = float(value)
        elif isinstance(value, dict) and key != "confusion_matrix":
            flat.update(numeric_metrics(value, f"{prefix}{key}."))
    return flat


@task(name="report-run", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE, tags=["io"])
def report_run_task(
    run: ParentRun,
    folder: Path,
    title: str,
    metrics: dict[str, Any],
    stats: BatchStats,
    status_counts: dict[str, int],
    counters: dict[str, float | int],
    files: Sequence[Path],
    row_counts: list[dict[str, Any]],
    sample: pd.DataFrame,
    text_column: str,
) -> Path:
    """Write metrics.json (and the confusion matrix), log metrics and files to the MLflow run, and leave the
    row-counts, task-results and task-sample artifacts on the flow run; returns the metrics file's path."""
    logged = [*files]
    if "confusion_matrix" in metrics:
        logged.append(confusion_matrix_png(metrics["confusion_matrix"], folder / "confusion_matrix.png", title=title))
    metrics_path = write_json(
        folder / "metrics.json", {"metrics": metrics, "stats": stats.as_dict(), "status": status_counts}
    )
    log_to_run(
        run,
        {
            **numeric_metrics(metrics),
            **{k: v for k, v in stats.as_dict().items() if k != "errors"},
            **counters,
            **{f"status_{k}": v for k, v in status_counts.items()},
            **{f"errors_{k}": v for k, v in stats.errors.items()},
        },
        [metrics_path, *logged],
    )
    create_table_artifact(key="row-counts", table=row_counts, description="Rows at each step")
    headline = {k: round(v, 4) for k, v in numeric_metrics(metrics).items() if "." not in k}
    lines = "\n".join(f"| {k} | {v} |" for k, v in headline.items()) or "| (no gold column) | |"
    create_markdown_artifact(
        key="task-results",
        markdown=(
            f"# {title}\n\n| metric | value |\n|---|---|\n{lines}\n\n"
            f"rows by status: {status_counts}; model calls {stats.calls}, cache hits {stats.cache_hits}, "
            f"tokens {stats.tokens}, retries {stats.retries}, errors {dict(stats.errors)}\n"
        ),
        description="Metrics and counts (no input rows)",
    )
    sample_rows = "\n".join(
        f"| {r[ROW_ID]} | {str(r[text_column])[:40]} | {r['prediction']} | {r['status']} |"
        for _, r in sample.iterrows()
    )
    # Rows of the input apart from the metrics: the API shows them only to callers who may read the data.
    create_markdown_artifact(
        key="task-sample",
        markdown=f"| row_id | text | prediction | status |\n|---|---|---|---|\n{sample_rows}\n",
        description="The first predictions",
    )
    return metrics_path
