"""The ``run_task`` flow's parameters (a form in the Prefect UI, the body of a deployment run) and its result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ConfigDict, Field, model_validator

from openautoglm import __version__
from openautoglm.adapters.models.run import model_identity, per_worker
from openautoglm.adapters.sinks import OutputFormat
from openautoglm.adapters.sources import SourceSpec
from openautoglm.adapters.validation import GateMode, ValidationConfig
from openautoglm.core.data.clean import CleanConfig
from openautoglm.flows.runtime import RunTail
from openautoglm.stages.nlp import InferParams
from openautoglm.usecases.stream import Streamed, StreamParams, digest_of

#: Settings that change no chunk's rows: the run's folder and name, the joined files, the cache, the parallelism.
_NOT_IN_CHUNKS = {
    "output_dir",
    "experiment",
    "output_format",
    "output_sql_url",
    "output_table",
    "output_password_env",
    "cache",
    "chunks_in_flight",
    "prompt",
}


class RunTaskParams(StreamParams, InferParams):
    """Parameters of the ``run_task`` flow (a form in the Prefect UI): the ``infer`` stage's (task, model,
    credentials, text columns, batch size, cache), where the rows come from, how they stream (chunk size, chunks
    in flight), how they are checked and written."""

    model_config = ConfigDict(extra="forbid")

    source: SourceSpec = Field(description="Where the data is: a CSV, JSONL or Parquet file, or an SQL table/query.")
    columns: list[str] | None = Field(default=None, description="Source columns to keep (default: all).")
    rename: dict[str, str] | None = Field(default=None, description="Renames applied after loading, old -> new.")
    prompt: str | None = Field(
        default=None,
        description="An optimised prompt: the path of an optimised_prompt.json, the MLflow run id of an "
        "optimize_prompt run, or a registered prompt (prompts:/<name>/<version> or prompts:/<name>@<alias>). It "
        "replaces task (template, labels, verbalisers, few-shot examples).",
    )
    label_column: str | None = Field(
        default=None, description="Column with gold answers; when given, the run is evaluated against it."
    )
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
    def _check_outputs(self) -> RunTaskParams:
        if bool(self.output_sql_url) != bool(self.output_table):
            raise ValueError("give both output_sql_url and output_table, or neither")
        if self.output_sql_url:
            from openautoglm.adapters.sources import SqlSource

            SqlSource(url=self.output_sql_url, query=self.output_table or "t")  # rejects a password in the URL
        return self

    def with_prompt(self) -> tuple[RunTaskParams, str | None]:
        """These parameters with ``prompt`` (an optimised prompt) loaded into ``task``, and the prompt registry
        version it came from (``None`` when not registered or no prompt was given)."""
        if not self.prompt:
            return self, None
        from openautoglm.adapters.prompt_search import OptimisedPrompt

        optimised = OptimisedPrompt.load(self.prompt)
        return self.model_copy(update={"task": optimised.task_config(self.task.task_type)}), optimised.registered

    def stream_digest(self) -> str:
        """What shapes each chunk's output (the model's identity included, not where the files go nor how many
        chunks run at once): half of the key a finished chunk is found again by when a killed run is started
        again."""
        return digest_of(
            {**self.model_dump(mode="json", exclude=_NOT_IN_CHUNKS), "model_identity": self.infer_args()[-1]}
        )

    def infer_args(self) -> tuple[Any, ...]:
        """What every batch's inference task shares: the task, the model as each worker loads it, the credentials
        block, the cache mode, and the identity that keys the cache (a registered model's alias may move and a
        folder may be saved again)."""
        identity = f"{__version__}|{model_identity(self.model)}"
        return (self.task, per_worker(self.model), self.credentials_block, self.cache, identity)

    def text_columns(self) -> list[str]:
        return [self.text_column, *([self.text_pair_column] if self.text_pair_column else [])]

    def validation_config(self) -> ValidationConfig:
        labels = self.task.labels if self.task.kind.closed_labels else None
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
            "chunk_rows": self.chunk_rows,
            "chunks_in_flight": self.chunks_in_flight,
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
    chunks: int = 0
    chunks_resumed: int = 0
    rows_inferred: int = 0
    tokens: int
    retries: int
    errors: dict[str, int]
    results_path: Path
    quarantine_path: Path
    metrics_path: Path
    infer_seconds: float

    @classmethod
    def of(
        cls,
        totals: Streamed,
        metrics: dict[str, Any],
        paths: tuple[Path, Path, Path],
        counters: dict[str, Any],
        tail: dict[str, Any],
    ) -> RunTaskResult:
        """The result of a run: its rows and the chunks' counts, its files (results, quarantine, metrics)."""
        stats = totals.stats
        return cls(
            rows_read=totals.rows_read,
            rows_quarantined=totals.rows_quarantined,
            rows_predicted=totals.rows_out,
            status_counts=totals.status,
            metrics=metrics,
            calls=stats.calls,
            cache_hits=stats.cache_hits,
            batches=totals.batches,
            batches_cached=totals.batches_cached,
            chunks=totals.chunks,
            chunks_resumed=totals.chunks_resumed,
            rows_inferred=totals.rows_inferred,
            tokens=stats.tokens,
            retries=stats.retries,
            errors=dict(stats.errors),
            results_path=paths[0],
            quarantine_path=paths[1],
            metrics_path=paths[2],
            infer_seconds=counters["infer_seconds"],
            **tail,
        )

    def headline(self) -> dict[str, float | int | None]:
        """The figures pushed to the Prometheus Pushgateway."""
        scores = {k: v for k, v in self.metrics.items() if k in ("accuracy", "macro_f1", "f1", "spearman")}
        counts = ("rows_read", "rows_quarantined", "rows_predicted", "calls", "cache_hits", "tokens", "seconds")
        return {**{name: getattr(self, name) for name in counts}, **scores}
