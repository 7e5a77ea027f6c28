"""What the ``openautoglm`` commands print: result tables, file paths, and errors as one red line with a hint.

Every command turns this package's errors into a red message with a hint and exit code 2; no tracebacks unless
``OPENAUTOGLM_DEBUG=1``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from openautoglm.cli_params import FieldValues
from openautoglm.core.errors import OpenAutoGLMError

console = Console()
err = Console(stderr=True)


def typed_errors_without_tracebacks() -> None:
    """Prefect logs a failed task's or flow's exception with its traceback. For our typed errors (bad input: a
    missing column or file, a refused query) the CLI prints one clear line with a hint instead, so the traceback
    is dropped from Prefect's records in this process (the message stays; OPENAUTOGLM_DEBUG keeps everything)."""
    if os.environ.get("OPENAUTOGLM_DEBUG"):
        return
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, OpenAutoGLMError) and record.name.startswith("prefect"):
            record.exc_info, record.exc_text = None, None
        return record

    logging.setLogRecordFactory(factory)


def fail(error: OpenAutoGLMError) -> None:
    if os.environ.get("OPENAUTOGLM_DEBUG"):
        raise error
    from openautoglm.adapters.sources.specs import redact_url

    # A source argument may be a mistyped database URL with a password in it: never echo that password.
    err.print(f"[bold red]error:[/] {escape(redact_url(error.message))}", highlight=False, markup=True)
    if error.hint:
        err.print(f"[yellow]hint:[/] {escape(redact_url(error.hint))}", highlight=False)
    raise typer.Exit(code=2)


def invalid(error: ValidationError, values: FieldValues | None = None) -> None:
    first = error.errors()[0]
    where = (values and values.option_for(first["loc"])) or ".".join(str(p) for p in first["loc"])
    err.print(f"[bold red]error:[/] invalid option {where}: {first['msg']}", highlight=False)
    raise typer.Exit(code=2)


@contextmanager
def errors(values: FieldValues | None = None) -> Iterator[None]:
    """Our typed errors and invalid settings as one red line with a hint, exit code 2."""
    try:
        yield
    except OpenAutoGLMError as error:
        fail(error)
    except ValidationError as error:
        invalid(error, values)


def print_ingest(result: Any) -> None:
    table = Table(title="ingest", show_header=True)
    table.add_column("rows")
    table.add_column("count", justify="right")
    table.add_row("read", str(result.rows_read))
    for stage, count in sorted(result.quarantined_by_stage.items()):
        table.add_row(f"quarantined at {stage}", str(count))
    table.add_row("kept", str(result.rows_out), style="bold green")
    console.print(table)
    console.print(f"validation: {'passed' if result.passed_validation else 'failed (rows quarantined)'}")
    print_paths(
        [
            f"kept rows:   {result.data_path}",
            f"quarantine:  {result.quarantine_path}",
            f"validation:  {result.validation_path}",
            f"MLflow run:  {result.mlflow_run_url}",
        ]
        + ([f"Prefect run: {result.flow_run_url}"] if result.flow_run_url else [])
    )


def print_paths(lines: list[str]) -> None:
    from openautoglm.settings import get_settings

    for line in lines:
        console.print(line, soft_wrap=True, highlight=False)
    settings = get_settings()
    console.print(
        "\nBrowse the runs:\n"
        "  Prefect UI: prefect server start   (then http://127.0.0.1:4200)\n"
        f"  MLflow UI:  mlflow ui --backend-store-uri {settings.tracking_uri} --port 5000",
        highlight=False,
        soft_wrap=True,
    )


def print_run(result: Any) -> None:
    table = Table(title="run_task")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("rows read", str(result.rows_read))
    table.add_row("rows quarantined", str(result.rows_quarantined))
    for status, count in sorted(result.status_counts.items()):
        table.add_row(f"predicted: {status}", str(count))
    table.add_row("model calls", str(result.calls))
    table.add_row("cache hits", str(result.cache_hits))
    for key in ("accuracy", "macro_f1", "precision", "recall", "f1", "spearman", "pearson"):
        if key in result.metrics:
            table.add_row(key, f"{result.metrics[key]:.4f}", style="bold green")
    console.print(table)
    print_paths(
        [
            f"results:     {result.results_path}",
            f"quarantine:  {result.quarantine_path}",
            f"metrics:     {result.metrics_path}",
            f"MLflow run:  {result.mlflow_run_url}",
        ]
        + ([f"Prefect run: {result.flow_run_url}"] if result.flow_run_url else [])
    )


def print_optimised(result: Any) -> None:
    prompt = result.prompt
    learned = result.learned
    table = Table(title=f"optimize_prompt ({prompt.optimizer}, {prompt.model})")
    table.add_column("")
    table.add_column("starting prompt", justify="right")
    table.add_column("optimised", justify="right")
    if learned is not None:
        table.add_column(f"learned ({learned.learner})", justify="right")

    def score_row(name: str, start: float | None, best: float | None, learnt: float | None) -> None:
        cells = [name, *("-" if v is None else f"{v:.4f}" for v in (start, best))]
        table.add_row(*cells, *([] if learned is None else ["-" if learnt is None else f"{learnt:.4f}"]))

    score_row("dev score", prompt.start_dev_score, prompt.dev_score, learned and learned.dev_score)
    if prompt.test_score is not None and prompt.start_test_score is not None:
        score_row("test score", prompt.start_test_score, prompt.test_score, learned and learned.test_score)
    console.print(table)
    console.print(
        f"rows: {result.rows}; {prompt.candidates} candidates; {prompt.calls} of {prompt.budget.max_calls} calls "
        f"({prompt.fresh_calls} sent to the model, the rest from the cache); stopped: {prompt.stop_reason}",
        highlight=False,
    )
    console.print(f"template: {prompt.config.template!r}", highlight=False)
    print_paths(
        [
            f"prompt:      {result.prompt_path}",
            f"MLflow run:  {result.mlflow_run_url}",
            *([f"registered:  {result.registered_prompt}"] if result.registered_prompt else []),
            f"use it:      openautoglm run DATA --prompt {result.registered_prompt or result.mlflow_run_id} ...",
            *(
                [
                    f"learned:     {learned.model} ({' x '.join(learned.views)}, {learned.labelled_rows} labelled "
                    f"rows); the pick on dev: {result.winner}",
                    f"use it:      openautoglm run DATA --model {learned.model} ...",
                ]
                if learned
                else []
            ),
        ]
        + ([f"Prefect run: {result.flow_run_url}"] if result.flow_run_url else [])
    )


def print_graph_search(result: Any, final_seeds: int) -> None:
    table = Table(title="graph_search")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("trials", f"{result.trials} ({result.stopped}; {result.resubmitted} re-run after a failure)")
    for row in result.baselines:
        table.add_row(f"baseline {row['name']} (validation)", f"{row['val']:.4f}")
    table.add_row("pick", f"{result.best_describe} ({result.best_kind})")
    table.add_row("best screened validation", f"{result.best_val:.4f}")
    if result.select_seeds:
        how = "folds (redrawn train/validation splits)" if result.resampled else "seeds"
        table.add_row("pick by mean validation over", f"{result.select_seeds} {how}")
    table.add_row(
        f"final validation ({final_seeds} seeds)", f"{result.final_val_mean:.4f} ± {result.final_val_std:.4f}"
    )
    table.add_row(
        f"final test ({final_seeds} seeds)",
        f"{result.final_test_mean:.4f} ± {result.final_test_std:.4f}",
        style="bold green",
    )
    console.print(table)
    console.print(f"prior: {result.prior}", soft_wrap=True, highlight=False)
    print_paths(
        [f"history:     {result.folder / 'history.json'}", f"curve:       {result.folder / 'search_curve.png'}"]
        + ([f"model:       {result.model_path}"] if result.model_path else [])
        + [f"MLflow run:  {result.mlflow_run_url}"]
        + ([f"Prefect run: {result.flow_run_url}"] if result.flow_run_url else [])
    )


def print_distilled(result: Any) -> None:
    table = Table(title=f"distill: {result.model}")
    table.add_column("")
    table.add_column("value", justify="right")
    for key, value in result.metrics.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    print_paths(
        [
            f"model:       {result.model}  (labels {', '.join(result.labels)})",
            f"folder:      {result.student_folder}",
            f"summary:     {result.summary_path}",
            f"MLflow run:  {result.mlflow_run_url}",
        ]
        + ([f"Prefect run: {result.flow_run_url}"] if result.flow_run_url else [])
    )


def print_stages(entries: list[dict[str, Any]]) -> None:
    table = Table(title=f"{len(entries)} stages")
    for name in ("stage", "inputs", "outputs", "parameters", "what it does"):
        table.add_column(name)
    for entry in entries:
        ports = [", ".join(f"{p['name']}: {p['type']}" for p in entry[side]) or "-" for side in ("inputs", "outputs")]
        params = ", ".join(entry["params_schema"].get("properties", {})) or "-"
        table.add_row(entry["name"], *ports, params, entry["description"])
    console.print(table)


def print_pipeline(result: Any) -> None:
    table = Table(title="pipeline")
    table.add_column("node")
    table.add_column("outputs")
    for node in result.order:
        table.add_row(node, json.dumps(result.outputs[node], ensure_ascii=False, default=str)[:200])
    console.print(table)
    print_paths(
        [f"folder:      {result.folder}", f"MLflow run:  {result.mlflow_run_url}"]
        + ([f"Prefect run: {result.flow_run_url}"] if result.flow_run_url else [])
    )


def print_deployments(done: list[Any], pool: str) -> None:
    table = Table(title=f"deployments on pool {pool}")
    for name in ("flow/deployment", "schedules", "id"):
        table.add_column(name)
    for d in done:
        table.add_row(f"{d.flow}/{d.name}", str(d.schedules), d.deployment_id)
    console.print(table)
    console.print(
        f"Start a worker:   openautoglm worker --pool {pool}\n"
        f"Run one:          prefect deployment run '{done[0].flow}/{done[0].name}' --watch",
        highlight=False,
    )


def print_validation(spec: Any, dataset: Any, outcome: Any, show: int) -> bool:
    """The expectations' table and the failing rows (the first ``show``); True when every row passed."""
    table = Table(title=f"validation of {spec.describe()}")
    for name in ("expectation", "column", "passed", "failing rows", "examples"):
        table.add_column(name)
    for e in outcome.expectations:
        table.add_row(
            e.expectation,
            e.column,
            "yes" if e.success else "[red]no[/]",
            str(e.failed),
            ", ".join(e.examples),
        )
    console.print(table)
    bad = dataset.reject(outcome.failures).quarantine
    if len(bad):
        listing = Table(title=f"{len(bad)} failing row(s)" + (f", first {show}" if len(bad) > show else ""))
        for name in ("where", "stage", "reason"):
            listing.add_column(name)
        for row in bad.head(show).itertuples():
            listing.add_row(str(row.location), str(row.stage), str(row.reason)[:200])
        console.print(listing)
        return False
    console.print(f"[green]{len(dataset)} rows pass every expectation.[/]")
    return True
