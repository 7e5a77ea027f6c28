"""Flow ``run_task``: ingest -> clean -> validate -> infer (batches on Dask) -> evaluate -> write.

Each batch of rows is one task run on the task runner; model calls go through the on-disk call cache, and a
finished batch's result is persisted, so a rerun (or a resumed crashed run) calls the model only for what is
missing.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel, ConfigDict, Field, model_validator

from openautoglm import __version__
from openautoglm.adapters.cache import CacheMode
from openautoglm.adapters.compute import worker_processes
from openautoglm.adapters.models import ModelSpec, default_batch_size
from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.models.run import check_supported, model_identity
from openautoglm.adapters.plots import confusion_matrix_png
from openautoglm.adapters.sinks import OutputFormat, write_sql
from openautoglm.adapters.sources import SourceSpec
from openautoglm.adapters.tracking import log_metrics
from openautoglm.adapters.validation import GateMode, ValidationConfig
from openautoglm.core.data.clean import CleanConfig
from openautoglm.core.data.schema import ROW_ID
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.types import RowResult, TaskConfig
from openautoglm.flows.runtime import RunTail, task_runner, tracked_flow
from openautoglm.flows.stages import prepare, row_counts, write_json
from openautoglm.settings import get_settings
from openautoglm.tasks.nlp import (
    IncompleteBatchError,
    batch_rows_task,
    evaluate_task,
    infer_batch_task,
    write_results_task,
)


class RunTaskParams(BaseModel):
    """Parameters of the ``run_task`` flow (a form in the Prefect UI)."""

    model_config = ConfigDict(extra="forbid")

    source: SourceSpec = Field(description="Where the data is: a CSV, JSONL or Parquet file, or an SQL table/query.")
    columns: list[str] | None = Field(default=None, description="Source columns to keep (default: all).")
    rename: dict[str, str] | None = Field(default=None, description="Renames applied after loading, old -> new.")
    task: TaskConfig = Field(description="The task: type, labels, prompt template, few-shot examples.")
    prompt: str | None = Field(
        default=None,
        description="An optimised prompt: the path of an optimised_prompt.json, the MLflow run id of an "
        "optimize_prompt run, or a registered prompt (prompts:/<name>/<version> or prompts:/<name>@<alias>). It "
        "replaces task (template, labels, verbalisers, few-shot examples).",
    )
    model: ModelSpec = Field(
        default=ModelSpec(model="local-use"),
        description="The model and how to call it. For API models max_concurrency is the account's limit: it is "
        "shared out between the Dask worker processes.",
    )
    credentials_block: str | None = Field(
        default=None, description="ZhipuAICredentials block with the API key (default: ZHIPUAI_API_KEY)."
    )
    text_column: str = Field(default="text", description="Column with the text (the first sentence for matching).")
    text_pair_column: str | None = Field(default=None, description="Column with the second sentence (matching).")
    label_column: str | None = Field(
        default=None, description="Column with gold answers; when given, the run is evaluated against it."
    )
    batch_size: int | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description="Rows per task run; default 64 for API and chat models (their calls overlap inside a batch), "
        "1024 for local encoders and taggers (fewer, larger tasks).",
    )
    cache: CacheMode = Field(default="use", description="use: reuse earlier answers; off: call the model again.")
    gate: GateMode = Field(default="quarantine", description="What to do with rows that fail validation.")
    max_length: int = Field(default=8000, ge=1, description="Longest valid text, in characters.")
    truncate_at: int | None = Field(default=None, ge=1, description="Cut texts to this length while cleaning.")
    output_dir: Path | None = Field(default=None, description="Output folder (default: a new one under home).")
    output_format: OutputFormat = Field(default="csv", description="Format of the results file.")
    output_sql_url: str | None = Field(default=None, description="Also write results to this database (no password).")
    output_table: str | None = Field(default=None, description="Table for the results in output_sql_url.")
    output_password_env: str | None = Field(default=None, description="Environment variable with its password.")
    experiment: str = Field(default="run_task", min_length=1, description="MLflow experiment name.")

    @model_validator(mode="after")
    def _check(self) -> RunTaskParams:
        if self.task.task_type == "semantic_matching" and not self.text_pair_column:
            raise ValueError("semantic_matching needs text_pair_column (the second sentence)")
        if bool(self.output_sql_url) != bool(self.output_table):
            raise ValueError("give both output_sql_url and output_table, or neither")
        if self.output_sql_url:
            from openautoglm.adapters.sources import SqlSource

            SqlSource(url=self.output_sql_url, query=self.output_table or "t")  # rejects a password in the URL
        return self

    def effective_batch_size(self) -> int:
        """The batch size in use (see ``batch_size``)."""
        return self.batch_size if self.batch_size is not None else default_batch_size(self.model)

    def text_columns(self) -> list[str]:
        return [self.text_column, *([self.text_pair_column] if self.text_pair_column else [])]

    def validation_config(self) -> ValidationConfig:
        labels = self.task.labels if self.task.task_type == "text_classification" else None
        return ValidationConfig(
            task=self.task.task_type,
            text_columns=tuple(self.text_columns()),
            label_column=self.label_column if labels else None,
            labels=labels,
            max_length=self.max_length,
        )

    def clean_config(self) -> CleanConfig:
        return CleanConfig(text_columns=tuple(self.text_columns()), max_length=self.truncate_at)

    def tracking_params(self) -> dict[str, Any]:
        """Flat, secret-free parameters for MLflow."""
        return {
            "source": self.source.describe(),
            "source_kind": self.source.kind,
            "task_type": self.task.task_type,
            "labels": self.task.labels,
            "prompt_template": self.task.template,
            "verbalizers": self.task.verbalizers,
            "few_shot": len(self.task.few_shot),
            "entity_types": self.task.entity_types,
            "threshold": self.task.threshold,
            "model": self.model.model,
            "backend": self.model.backend,
            "base_url": self.model.base_url,
            "max_concurrency": self.model.max_concurrency,
            "temperature": self.model.temperature,
            "batch_size": self.effective_batch_size(),
            "cache": self.cache,
            "gate": self.gate,
            "text_column": self.text_column,
            "text_pair_column": self.text_pair_column,
            "label_column": self.label_column,
            "credentials_block": self.credentials_block,
            "prompt": self.prompt,
        }


class RunTaskResult(RunTail):
    """What a run produced and where."""

    rows_read: int
    rows_quarantined: int
    rows_predicted: int
    status_counts: dict[str, int]
    metrics: dict[str, Any]
    calls: int
    cache_hits: int
    batches: int
    batches_cached: int
    tokens: int
    retries: int
    errors: dict[str, int]
    results_path: Path
    quarantine_path: Path
    metrics_path: Path
    infer_seconds: float


def _gather(futures: list[Any]) -> tuple[list[Any], list[RowResult], BatchStats, int]:
    """What each batch gave (its future, or a failed batch's partial results), all results in order, this run's
    counts, and how many batches came from Prefect's result cache.

    A cached batch's stored counts describe the run that computed it, so here it counts as zero calls and one
    cache hit per row.
    """
    outputs: list[Any] = []
    results: list[RowResult] = []
    stats = BatchStats()
    cached_batches = 0
    for future in futures:
        try:
            batch, counts = future.result()
            outputs.append(future)  # handed on as the future: Prefect records the batch as a data dependency
        except IncompleteBatchError as incomplete:  # failed rows after retries: keep them with their reasons
            batch, counts = incomplete.results, incomplete.stats
            outputs.append((batch, counts))
        results.extend(batch)
        if future.state.name == "Cached":
            cached_batches += 1
            stats = stats.merge(BatchStats(cache_hits=len(batch)))
            continue
        stats = stats.merge(
            BatchStats(
                calls=counts["calls"],
                cache_hits=counts["cache_hits"],
                tokens=counts["tokens"],
                retries=counts["retries"],
            )
        )
        stats.errors.update(counts.get("errors") or {})
    return outputs, results, stats, cached_batches


def per_worker(spec: ModelSpec) -> ModelSpec:
    """An API model's concurrency limit split between the worker processes (each process has its own limiter)."""
    if not spec.remote:
        return spec
    workers = worker_processes(get_settings())
    if not workers or workers == 1:
        return spec
    return spec.model_copy(update={"max_concurrency": max(1, spec.max_concurrency // workers)})


def _numeric(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            flat[f"{prefix}{key}"] = float(value)
        elif isinstance(value, dict) and key != "confusion_matrix":
            flat.update(_numeric(value, f"{prefix}{key}."))
    return flat


@flow(name="run_task", task_runner=task_runner())
def run_task(params: RunTaskParams) -> RunTaskResult:
    """Run a text classification, NER or matching task over a data source with a GLM or local model."""
    logger = get_run_logger()
    registered: str | None = None  # the prompt registry version in use, listed on the MLflow run
    if params.prompt:
        from openautoglm.adapters.prompt_search import OptimisedPrompt

        optimised = OptimisedPrompt.load(params.prompt)
        registered = optimised.registered
        params = params.model_copy(update={"task": optimised.task_config(params.task.task_type)})
        logger.info(
            "prompt from %s (%s, dev score %.4f): %r",
            params.prompt,
            optimised.optimizer,
            optimised.dev_score,
            params.task.template,
        )
    check_supported(params.model, params.task)
    with tracked_flow(
        "run_task",
        params.experiment,
        output_dir=params.output_dir,
        params=params.tracking_params(),
        tags={"openautoglm.model": params.model.model},
        what=f"run_task ({params.task.task_type}, {params.model.model})",
    ) as tracked:
        folder = tracked.folder
        if registered:
            from openautoglm.adapters.prompt_registry import link_prompt

            link_prompt(tracked.run.run_id, registered)
        prepared = prepare(
            params.source,
            columns=params.columns,
            rename=params.rename,
            clean=params.clean_config(),
            validation=params.validation_config(),
            gate=params.gate,
            chunk_rows=20_000,
            folder=folder,
        )
        dataset = prepared.dataset
        model = per_worker(params.model)
        batch_size = params.effective_batch_size()
        work = batch_rows_task(dataset, params.text_column, params.text_pair_column, batch_size)
        rows = sum(len(batch) for batch in work)
        logger.info("%d rows in %d batches of up to %d -> %s", rows, len(work), batch_size, params.model.model)
        infer_started = time.perf_counter()
        infer = infer_batch_task.with_options(refresh_cache=params.cache != "use")
        futures = infer.map(
            work,
            unmapped(params.task),
            unmapped(model),
            unmapped(params.credentials_block),
            unmapped(params.cache),
            # A registered model's alias may move and a folder may be saved again: their identity keys the cache.
            unmapped(f"{__version__}|{model_identity(params.model)}"),
        )
        per_batch, results, stats, cached_batches = _gather(list(futures))
        infer_seconds = time.perf_counter() - infer_started
        if len(results) != rows:
            raise ConfigurationError(f"{rows} rows went to the model but {len(results)} results came back")

        results_path, quarantine_path, output = write_results_task(
            dataset, per_batch, params.model, folder, params.output_format
        )
        if params.output_sql_url and params.output_table:
            import os

            password = os.environ.get(params.output_password_env) if params.output_password_env else None
            written = write_sql(output, params.output_sql_url, params.output_table, password=password)
            logger.info("wrote %d rows to table %s", written, params.output_table)

        metrics: dict[str, Any] = {}
        if params.label_column:
            metrics = evaluate_task(params.task, dataset, per_batch, params.text_column, params.label_column)
            if "confusion_matrix" in metrics:
                png = confusion_matrix_png(
                    metrics["confusion_matrix"],
                    folder / "confusion_matrix.png",
                    title=f"{params.model.model}: {params.task.task_type}",
                )
                mlflow.log_artifact(str(png))
        status_counts = {str(k): int(v) for k, v in output["status"].value_counts().items()}
        seconds = time.perf_counter() - tracked.started
        log_metrics(
            {
                **_numeric(metrics),
                "calls": stats.calls,
                "cache_hits": stats.cache_hits,
                "tokens": stats.tokens,
                "retries": stats.retries,
                "seconds": seconds,
                "rows_predicted": len(results),
                "infer_seconds": infer_seconds,
                "batches": len(work),
                "batches_cached": cached_batches,
                **{f"status_{k}": v for k, v in status_counts.items()},
                **{f"errors_{k}": v for k, v in stats.errors.items()},
            }
        )
        metrics_path = write_json(
            folder / "metrics.json", {"metrics": metrics, "stats": stats.as_dict(), "status": status_counts}
        )
        mlflow.log_artifact(str(metrics_path))
        mlflow.log_artifact(str(results_path))
        mlflow.log_artifact(str(quarantine_path))
        _artifacts(params, dataset, prepared, metrics, status_counts, stats, output)
        result = RunTaskResult(
            rows_read=dataset.rows_read,
            rows_quarantined=len(dataset.quarantine),
            rows_predicted=len(results),
            status_counts=status_counts,
            metrics=metrics,
            calls=stats.calls,
            cache_hits=stats.cache_hits,
            batches=len(work),
            batches_cached=cached_batches,
            tokens=stats.tokens,
            retries=stats.retries,
            errors=dict(stats.errors),
            results_path=results_path,
            quarantine_path=quarantine_path,
            metrics_path=metrics_path,
            infer_seconds=infer_seconds,
            **tracked.tail(),
        )
        tracked.summarise(result)
    logger.info(
        "%d rows predicted (%s); %d model calls, %d cache hits -> %s",
        len(results),
        status_counts,
        stats.calls,
        stats.cache_hits,
        results_path,
    )
    tracked.push(
        {
            "rows_read": result.rows_read,
            "rows_quarantined": result.rows_quarantined,
            "rows_predicted": result.rows_predicted,
            "calls": result.calls,
            "cache_hits": result.cache_hits,
            "tokens": result.tokens,
            "seconds": result.seconds,
            **{k: v for k, v in metrics.items() if k in ("accuracy", "macro_f1", "f1", "spearman")},
        }
    )
    return result


def _artifacts(
    params: RunTaskParams,
    dataset: Any,
    prepared: Any,
    metrics: dict[str, Any],
    status_counts: dict[str, int],
    stats: BatchStats,
    output: pd.DataFrame,
) -> None:
    create_table_artifact(
        key="row-counts", table=row_counts(dataset, prepared.clean_report), description="Rows at each step"
    )
    headline = {k: round(v, 4) for k, v in _numeric(metrics).items() if "." not in k}
    lines = "\n".join(f"| {k} | {v} |" for k, v in headline.items()) or "| (no gold column) | |"
    sample = output.head(10)
    sample_rows = "\n".join(
        f"| {r[ROW_ID]} | {str(r[params.text_column])[:40]} | {r['prediction']} | {r['status']} |"
        for _, r in sample.iterrows()
    )
    create_markdown_artifact(
        key="task-results",
        markdown=(
            f"# {params.task.task_type} with {params.model.model}\n\n| metric | value |\n|---|---|\n{lines}\n\n"
            f"rows by status: {status_counts}; model calls {stats.calls}, cache hits {stats.cache_hits}, "
            f"tokens {stats.tokens}, retries {stats.retries}, errors {dict(stats.errors)}\n"
        ),
        description="Metrics and counts (no input rows)",
    )
    # Rows of the input apart from the metrics: the API shows them only to callers who may read the data.
    create_markdown_artifact(
        key="task-sample",
        markdown=f"| row_id | text | prediction | status |\n|---|---|---|---|\n{sample_rows}\n",
        description="The first predictions",
    )
