"""The ``openautoglm`` command line (Typer + Rich).

Every command turns this package's errors into a red message with a hint and exit code 2; no tracebacks
unless ``OPENAUTOGLM_DEBUG=1``.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from openautoglm import __version__
from openautoglm._env import apply_defaults
from openautoglm.cli_params import FieldValues, lazy_group, model_command
from openautoglm.core.errors import OpenAutoGLMError

apply_defaults()


def _typed_errors_without_tracebacks() -> None:
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


_typed_errors_without_tracebacks()

Commands = lazy_group()
app = typer.Typer(
    cls=Commands,
    name="openautoglm",
    help="Open-AutoGLM: load, clean and validate text data, then run GLM tasks and graph searches as Prefect flows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def _version(value: bool) -> None:
    if value:
        console.print(f"openautoglm {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Open-AutoGLM command line."""


def _run_flow(flow: Any, params: Any) -> Any:
    """Run a flow in this process (no flow-run heartbeats: see flows.runtime.without_flow_heartbeats)."""
    from openautoglm.flows.runtime import without_flow_heartbeats

    with without_flow_heartbeats():
        return flow(params)


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def _pairs(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    pairs: dict[str, str] = {}
    for item in value.split(","):
        if "=" not in item:
            raise typer.BadParameter(f"'{item}' is not old=new", param_hint="--rename")
        old, new = item.split("=", 1)
        pairs[old.strip()] = new.strip()
    return pairs


def _fail(error: OpenAutoGLMError) -> None:
    if os.environ.get("OPENAUTOGLM_DEBUG"):
        raise error
    from openautoglm.adapters.sources.specs import redact_url

    # A source argument may be a mistyped database URL with a password in it: never echo that password.
    err.print(f"[bold red]error:[/] {escape(redact_url(error.message))}", highlight=False, markup=True)
    if error.hint:
        err.print(f"[yellow]hint:[/] {escape(redact_url(error.hint))}", highlight=False)
    raise typer.Exit(code=2)


def _source_spec(
    source: str,
    fmt: str,
    query: str | None,
    encoding: str | None,
    delimiter: str | None,
    lenient: bool,
    password_env: str | None,
) -> Any:
    from openautoglm.adapters.sources import SUFFIX_KINDS, SqlSource
    from openautoglm.core.errors import ConfigurationError

    on_error = "quarantine" if lenient else "raise"
    kind = fmt
    if kind == "auto":
        kind = "sql" if "://" in source else SUFFIX_KINDS.get(Path(source).suffix.lower(), "")
        if not kind:
            raise ConfigurationError(
                f"Cannot tell the format of '{source}' from its suffix.",
                hint="pass --format csv|jsonl|parquet|sql",
            )
    if kind == "sql":
        if not query:
            raise ConfigurationError("An SQL source needs --query TABLE or --query 'SELECT ...'.")
        return SqlSource(url=source, query=query, password_env=password_env, on_error=on_error)
    from openautoglm.adapters.sources.base import existing_file
    from openautoglm.adapters.sources.load import spec_from_path

    path = existing_file(source)  # fail before a flow run starts, not inside it
    options = {"encoding": encoding, "delimiter": delimiter} if kind in ("csv", "tsv", "jsonl") else {}
    if kind == "jsonl":
        options.pop("delimiter")
    return spec_from_path(path, format=kind, on_error=on_error, **options)


def _preflight(params: Any) -> None:
    """Before a flow run starts: the columns the run needs are in the source, the database answers."""
    from openautoglm.adapters.sources.preflight import check_source

    needed = [getattr(params, name, None) for name in ("text_column", "text_pair_column", "label_column", "id_column")]
    text_columns = getattr(params, "text_columns", None)  # ingest's list (run_task's is a method)
    check_source(
        params.source,
        columns=getattr(params, "columns", None),
        rename=getattr(params, "rename", None),
        needed=[*needed, *(text_columns if isinstance(text_columns, list) else [])],
    )


SourceArg = Annotated[str, typer.Argument(help="A data file (.csv .tsv .jsonl .parquet) or a database URL.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="auto (from the suffix), csv, jsonl, parquet or sql.")]
QueryOpt = Annotated[str | None, typer.Option(help="For a database URL: a table name or a SELECT statement.")]
ColumnsOpt = Annotated[str | None, typer.Option(help="Comma-separated source columns to keep (default: all).")]
RenameOpt = Annotated[str | None, typer.Option(help="Renames after loading: old=new,old2=new2.")]
EncodingOpt = Annotated[str | None, typer.Option(help="Text encoding of CSV/JSONL (default: detected).")]
DelimiterOpt = Annotated[str | None, typer.Option(help="CSV field separator (default ',' or tab for .tsv).")]
TextOpt = Annotated[str, typer.Option(help="Comma-separated text column(s); two for semantic matching.")]
LabelColOpt = Annotated[str | None, typer.Option(help="Column with gold labels.")]
LabelsOpt = Annotated[str | None, typer.Option(help="Comma-separated label set, e.g. 正面,负面,中性.")]
IdOpt = Annotated[str | None, typer.Option(help="A source id column that must be unique.")]
TaskOpt = Annotated[str, typer.Option(help="text_classification, ner, semantic_matching or generic.")]
PasswordEnvOpt = Annotated[
    str | None,
    typer.Option(help="Environment variable holding the database password (keep it out of the URL)."),
]
MaxLenOpt = Annotated[int, typer.Option(help="Longest valid text in characters.")]
NoCacheOpt = Annotated[bool, typer.Option("--no-cache", help="Call the model again; ignore earlier answers.")]
#: The option names every command gives the same fields (the model's field name is the flow's).
COMMON = {"output_dir": "output", "credentials_block": "credentials", "task.task_type": "task"}
OUTPUT = {"output": ("-o",)}


@contextmanager
def _errors(values: FieldValues | None = None) -> Iterator[None]:
    """Our typed errors and invalid settings as one red line with a hint, exit code 2."""
    try:
        yield
    except OpenAutoGLMError as error:
        _fail(error)
    except ValidationError as error:
        _invalid(error, values)


@model_command(
    Commands,
    "ingest",
    "openautoglm.flows.ingest_params:IngestParams",
    rename={**COMMON, "text_columns": "text_column"},
    exclude=("source",),
    flags={**OUTPUT, "drop_duplicates": ("--drop-duplicates/--keep-duplicates", "--no-keep-duplicates")},
)
def ingest(
    source: SourceArg,
    fmt: FormatOpt = "auto",
    query: QueryOpt = None,
    encoding: EncodingOpt = None,
    delimiter: DelimiterOpt = None,
    password_env: PasswordEnvOpt = None,
    lenient: Annotated[
        bool | None,
        typer.Option(
            "--lenient/--strict",
            help="Quarantine malformed records instead of stopping "
            "(default: lenient with --gate quarantine, strict otherwise).",
        ),
    ] = None,
    *,
    values: FieldValues,
) -> None:
    """Load, clean and validate data as a Prefect flow; write kept rows and a quarantine file with reasons.

    Example: openautoglm ingest examples/user_feedback_dirty.csv --label-column label --labels 正面,负面,中性
    --id-column id --gate quarantine
    """
    from openautoglm.flows.ingest import IngestParams
    from openautoglm.flows.ingest import ingest as ingest_flow

    with _errors(values):
        lenient = values["gate"] == "quarantine" if lenient is None else lenient
        spec = _source_spec(source, fmt, query, encoding, delimiter, lenient, password_env)
        params = IngestParams.model_validate(values.nested(source=spec))
        _preflight(params)
        result = _run_flow(ingest_flow, params)
    _print_ingest(result)


def _print_ingest(result: Any) -> None:
    table = Table(title="ingest", show_header=True)
    table.add_column("rows")
    table.add_column("count", justify="right")
    table.add_row("read", str(result.rows_read))
    for stage, count in sorted(result.quarantined_by_stage.items()):
        table.add_row(f"quarantined at {stage}", str(count))
    table.add_row("kept", str(result.rows_out), style="bold green")
    console.print(table)
    console.print(f"validation: {'passed' if result.passed_validation else 'failed (rows quarantined)'}")
    _print_paths(
        [
            f"kept rows:   {result.data_path}",
            f"quarantine:  {result.quarantine_path}",
            f"validation:  {result.validation_path}",
            f"MLflow run:  {result.mlflow_run_url}",
        ]
        + ([f"Prefect run: {result.flow_run_url}"] if result.flow_run_url else [])
    )


def _print_paths(lines: list[str]) -> None:
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


@app.command()
def validate(
    source: SourceArg,
    fmt: FormatOpt = "auto",
    query: QueryOpt = None,
    columns: ColumnsOpt = None,
    rename: RenameOpt = None,
    encoding: EncodingOpt = None,
    delimiter: DelimiterOpt = None,
    text_column: TextOpt = "text",
    label_column: LabelColOpt = None,
    labels: LabelsOpt = None,
    id_column: IdOpt = None,
    task: TaskOpt = "text_classification",
    max_length: MaxLenOpt = 8000,
    password_env: PasswordEnvOpt = None,
    show: Annotated[int, typer.Option(help="How many failing rows to list.")] = 20,
) -> None:
    """Check data against the task's expectations without running a flow; exit 1 if any row fails.

    Malformed records are reported as failures too. Nothing is written.
    """
    try:
        from openautoglm.adapters.validation import ValidationConfig, validate_dataset
        from openautoglm.loader import DataLoader

        spec = _source_spec(source, fmt, query, encoding, delimiter, True, password_env)
        dataset = DataLoader(spec).load(columns=_split(columns), rename=_pairs(rename))
        config = ValidationConfig(
            task=task,
            text_columns=tuple(_split(text_column) or ["text"]),  # type: ignore[arg-type]
            label_column=label_column,
            labels=tuple(_split(labels) or ()) or None,
            id_column=id_column,
            max_length=max_length,
        )
        outcome = validate_dataset(dataset, config)
    except OpenAutoGLMError as error:
        _fail(error)
        return
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
        raise typer.Exit(code=1)
    console.print(f"[green]{len(dataset)} rows pass every expectation.[/]")


@model_command(
    Commands,
    "run",
    "openautoglm.flows.run_task_params:RunTaskParams",
    rename={**COMMON, "model.model": "model"},
    exclude=("source", "cache", "output_sql_url", "output_table", "output_password_env"),
    flags=OUTPUT,
)
def run(
    source: SourceArg,
    fmt: FormatOpt = "auto",
    query: QueryOpt = None,
    encoding: EncodingOpt = None,
    delimiter: DelimiterOpt = None,
    password_env: PasswordEnvOpt = None,
    no_cache: NoCacheOpt = False,
    output_sql: Annotated[
        str | None, typer.Option(help="Also write results to a table: DATABASE_URL#table (no password in the URL).")
    ] = None,
    *,
    values: FieldValues,
) -> None:
    """Run a text classification, NER or matching task as a Prefect flow; write predictions (and metrics).

    Example: openautoglm run examples/user_feedback.csv --labels 正面,负面,中性 --label-column label
    """
    from openautoglm.adapters.models.run import check_supported
    from openautoglm.flows.run_task import RunTaskParams, run_task

    with _errors(values):
        sql_url, _, sql_table = (output_sql or "").rpartition("#")
        params = RunTaskParams.model_validate(
            values.nested(
                source=_source_spec(source, fmt, query, encoding, delimiter, True, password_env),
                cache="off" if no_cache else "use",
                output_sql_url=sql_url or None,
                output_table=sql_table or None,
                output_password_env=password_env,
            )
        )
        params.with_prompt()  # a bad prompt reference fails here, not inside the flow run
        check_supported(params.model, params.task)
        _preflight(params)
        result = _run_flow(run_task, params)
    _print_run(result)


def _invalid(error: ValidationError, values: FieldValues | None = None) -> None:
    first = error.errors()[0]
    where = (values and values.option_for(first["loc"])) or ".".join(str(p) for p in first["loc"])
    err.print(f"[bold red]error:[/] invalid option {where}: {first['msg']}", highlight=False)
    raise typer.Exit(code=2)


def _print_run(result: Any) -> None:
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
    _print_paths(
        [
            f"results:     {result.results_path}",
            f"quarantine:  {result.quarantine_path}",
            f"metrics:     {result.metrics_path}",
            f"MLflow run:  {result.mlflow_run_url}",
        ]
        + ([f"Prefect run: {result.flow_run_url}"] if result.flow_run_url else [])
    )


@model_command(
    Commands,
    "distill",
    "openautoglm.flows.distill:DistillParams",
    rename={**COMMON, "teacher.model": "teacher"},
    exclude=("source", "cache"),
    flags=OUTPUT,
)
def distill(
    source: SourceArg,
    fmt: FormatOpt = "auto",
    query: QueryOpt = None,
    encoding: EncodingOpt = None,
    delimiter: DelimiterOpt = None,
    password_env: PasswordEnvOpt = None,
    no_cache: NoCacheOpt = False,
    *,
    values: FieldValues,
) -> None:
    """Distil a teacher into a small student registered in the MLflow Model Registry (a Prefect flow).

    Example: openautoglm distill reviews.csv --name reviews-student --labels 正面,负面 --teacher glm-4-flash
    --budget 2000; then: openautoglm run new.csv --model mlflow:/reviews-student/1 --labels 正面,负面.
    NER: --task ner --entity-types PER,LOC,ORG (a crf-ner student; gold --label-column holds entity JSON).
    """
    from openautoglm.adapters.models.run import check_supported
    from openautoglm.flows.distill import DistillParams
    from openautoglm.flows.distill import distill as distill_flow

    with _errors(values):
        spec = _source_spec(source, fmt, query, encoding, delimiter, True, password_env)
        params = DistillParams.model_validate(values.nested(source=spec, cache="off" if no_cache else "use"))
        check_supported(params.teacher, params.task)  # before a flow run starts, not inside it
        result = _run_flow(distill_flow, params)
    table = Table(title=f"distill: {result.model}")
    table.add_column("")
    table.add_column("value", justify="right")
    for key, value in result.metrics.items():
        table.add_row(key, f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    _print_paths(
        [
            f"model:       {result.model}  (labels {', '.join(result.labels)})",
            f"folder:      {result.student_folder}",
            f"summary:     {result.summary_path}",
            f"MLflow run:  {result.mlflow_run_url}",
        ]
        + ([f"Prefect run: {result.flow_run_url}"] if result.flow_run_url else [])
    )


@model_command(
    Commands,
    "optimize-prompt",
    "openautoglm.flows.optimize_prompt_params:OptimizePromptParams",
    rename={**COMMON, "model.model": "model", "budget.max_calls": "budget", "register_prompt": "register"},
    exclude=("source",),
    flags=OUTPUT,
)
def optimize_prompt_command(
    source: SourceArg,
    fmt: FormatOpt = "auto",
    query: QueryOpt = None,
    encoding: EncodingOpt = None,
    delimiter: DelimiterOpt = None,
    password_env: PasswordEnvOpt = None,
    *,
    values: FieldValues,
) -> None:
    """Optimise a prompt (template, verbalisers, instructions, few-shot examples) against labelled data.

    Example: openautoglm optimize-prompt examples/user_feedback.csv --labels 正面,负面,中性 --budget 500
    --dev-size 20 --test-size 20
    """
    from openautoglm.adapters.models.run import check_supported
    from openautoglm.flows.optimize_prompt import OptimizePromptParams, optimize_prompt

    with _errors(values):
        spec = _source_spec(source, fmt, query, encoding, delimiter, True, password_env)
        params = OptimizePromptParams.model_validate(values.nested(source=spec))
        check_supported(params.model, params.task)
        _preflight(params)
        result = _run_flow(optimize_prompt, params)
    _print_optimised(result)


def _print_optimised(result: Any) -> None:
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
    _print_paths(
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


@model_command(
    Commands,
    "graph-search",
    "openautoglm.flows.graph_search_params:GraphSearchParams",
    rename={**COMMON, "time_budget_s": "time_budget", "use_prior": "prior"},
    exclude=("graph",),
    flags=OUTPUT,
)
def graph_search_command(
    dataset: Annotated[
        str | None, typer.Option(help="Built-in graph: cora, citeseer, pubmed (Planetoid, from --root) or karate.")
    ] = None,
    root: Annotated[Path | None, typer.Option(help="Folder holding <Name>/raw for Planetoid graphs.")] = None,
    nodes: Annotated[str | None, typer.Option(help="Your graph: node file (id, label, features) or SQL table.")] = None,
    edges: Annotated[str | None, typer.Option(help="Your graph: edge file (source, target) or SQL table.")] = None,
    db_url: Annotated[str | None, typer.Option(help="Database URL when --nodes/--edges are SQL tables.")] = None,
    id_column: Annotated[str, typer.Option(help="Node id column.")] = "id",
    label_column: Annotated[str | None, typer.Option(help="Node label column ('' for none).")] = "label",
    source_column: Annotated[str, typer.Option(help="Edge source column.")] = "source",
    target_column: Annotated[str, typer.Option(help="Edge target column.")] = "target",
    password_env: PasswordEnvOpt = None,
    *,
    values: FieldValues,
) -> None:
    """Search GNN architectures (GCN/GAT/SAGE/GIN/Cheb/ARMA/...) for a graph as a Prefect flow, tracked in MLflow.

    Example: openautoglm graph-search --dataset karate --budget 10 --algo evolution
    """
    from openautoglm.flows.graph_search import GraphSearchParams, graph_search

    with _errors(values):
        if nodes or edges:
            graph = _table_graph(nodes, edges, db_url, password_env, id_column, label_column, source_column, target_column)
        else:
            graph = _named_graph(dataset, root, values["nasbench"])
        params = GraphSearchParams.model_validate(values.nested(graph=graph))
        result = _run_flow(graph_search, params)
    _print_graph_search(result, params.final_seeds)


def _table_graph(
    nodes: str | None, edges: str | None, db_url: str | None, password_env: str | None, *columns: str | None
) -> Any:
    """The user's graph from --nodes/--edges (files checked before a flow run starts)."""
    from openautoglm.adapters.graph_specs import TableGraph
    from openautoglm.adapters.sources.base import existing_file
    from openautoglm.core.errors import ConfigurationError

    if not (nodes and edges):
        raise ConfigurationError("give both --nodes and --edges")
    for path in [] if db_url else [nodes, edges]:
        existing_file(path)
    id_column, label_column, source_column, target_column = columns
    return TableGraph(
        nodes=nodes,
        edges=edges,
        url=db_url,
        password_env=password_env,
        id_column=id_column or "id",
        label_column=label_column or None,
        source_column=source_column or "source",
        target_column=target_column or "target",
    )


def _named_graph(dataset: str | None, root: Path | None, nasbench: str | None) -> Any:
    """A built-in graph by name (its raw files checked before a flow run starts), or None with --nasbench."""
    from openautoglm.adapters.graph_specs import KarateGraph, PlanetoidGraph
    from openautoglm.core.errors import ConfigurationError

    if not dataset:
        if nasbench:
            return None
        raise ConfigurationError("Say which graph: --dataset NAME, --nodes F --edges F, or --nasbench NAME.")
    names = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
    if dataset.lower() == "karate":
        return KarateGraph()
    if dataset.lower() not in names:
        raise ConfigurationError(
            f"Unknown dataset '{dataset}'.", hint="use cora, citeseer, pubmed or karate, or --nodes/--edges for your own"
        )
    graph = PlanetoidGraph(name=names[dataset.lower()], root=root)  # type: ignore[arg-type]
    graph.raw_root()
    return graph


def _print_graph_search(result: Any, final_seeds: int) -> None:
    table = Table(title="graph_search")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("trials", f"{result.trials} ({result.stopped}; {result.resubmitted} re-run after a failure)")
    for row in result.baselines:
        table.add_row(f"baseline {row['name']} (validation)", f"{row['val']:.4f}")
    table.add_row("pick", result.best_describe + (" (a baseline)" if result.best_baseline else ""))
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
    _print_paths(
        [f"history:     {result.folder / 'history.json'}", f"curve:       {result.folder / 'search_curve.png'}"]
        + ([f"model:       {result.model_path}"] if result.model_path else [])
        + [f"MLflow run:  {result.mlflow_run_url}"]
        + ([f"Prefect run: {result.flow_run_url}"] if result.flow_run_url else [])
    )


@app.command()
def stages(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the catalogue as JSON, with each parameter JSON Schema.")
    ] = False,
) -> None:
    """List the stage catalogue: what each stage does, its typed input and output ports, its parameters.

    These are the steps a workflow graph (openautoglm pipeline run graph.json) and the web canvas are made of.
    """
    from openautoglm.stages import describe_catalogue

    entries = describe_catalogue()
    if as_json:
        sys.stdout.write(json.dumps(entries, ensure_ascii=False, indent=2) + "\n")
        return
    table = Table(title=f"{len(entries)} stages")
    for name in ("stage", "inputs", "outputs", "parameters", "what it does"):
        table.add_column(name)
    for entry in entries:
        ports = [", ".join(f"{p['name']}: {p['type']}" for p in entry[side]) or "-" for side in ("inputs", "outputs")]
        params = ", ".join(entry["params_schema"].get("properties", {})) or "-"
        table.add_row(entry["name"], *ports, params, entry["description"])
    console.print(table)


pipeline_app = typer.Typer(
    help="Workflow graphs of catalogue stages, run as one Prefect flow (the generic pipeline flow).",
    no_args_is_help=True,
)
app.add_typer(pipeline_app, name="pipeline")
GraphFileArg = Annotated[
    Path, typer.Argument(help="A workflow file (v1), or a bare graph {nodes: [{id, stage, params}], edges: [...]}.")
]


def _read_workflow_file(file: Path) -> Any:
    """A workflow file (v1, or a bare v0 graph named by the file's stem), migrated to the current version."""
    from openautoglm.adapters.sources.base import existing_file
    from openautoglm.core.errors import ConfigurationError
    from openautoglm.core.workflow_file import load_workflow

    path = existing_file(file)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigurationError(f"{path}: not a JSON file ({error}).") from None
    return load_workflow(raw, name=path.stem)


def _read_workflow(file: Path) -> Any:
    return _read_workflow_file(file).graph


@pipeline_app.command("check")
def pipeline_check(file: GraphFileArg) -> None:
    """Check a workflow graph without running it: stages, parameters, ports, inputs, cycles, input files."""
    try:
        from openautoglm.stages import check_workflow

        order = check_workflow(_read_workflow(file))
    except OpenAutoGLMError as error:
        _fail(error)
        return
    except ValidationError as error:
        _invalid(error)
        return
    console.print(f"ok: {len(order)} nodes, in order: {' -> '.join(n.id for n in order)}", highlight=False)


@pipeline_app.command("run")
def pipeline_run(
    file: GraphFileArg,
    output: Annotated[Path | None, typer.Option(help="Output folder (default: a new one under ~/runs).")] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "pipeline",
) -> None:
    """Run a workflow graph as a Prefect flow run: one task run per node, every edge a data dependency.

    Example: openautoglm pipeline run examples/pipeline/run_task.json
    """
    try:
        from openautoglm.flows.pipeline import PipelineParams, pipeline
        from openautoglm.stages import check_workflow

        graph = _read_workflow(file)
        check_workflow(graph)  # before the flow run starts: one line, no traceback
        result = _run_flow(pipeline, PipelineParams(graph=graph, output_dir=output, experiment=experiment))
    except OpenAutoGLMError as error:
        _fail(error)
        return
    except ValidationError as error:
        _invalid(error)
        return
    table = Table(title="pipeline")
    table.add_column("node")
    table.add_column("outputs")
    for node in result.order:
        table.add_row(node, json.dumps(result.outputs[node], ensure_ascii=False, default=str)[:200])
    console.print(table)
    _print_paths(
        [f"folder:      {result.folder}", f"MLflow run:  {result.mlflow_run_url}"]
        + ([f"Prefect run: {result.flow_run_url}"] if result.flow_run_url else [])
    )


workflow_app = typer.Typer(
    help="Saved workflow files (format v1, as the canvas saves them; bare v0 graphs are read too).",
    no_args_is_help=True,
)
app.add_typer(workflow_app, name="workflow")
# check and run are the pipeline commands: they read v1 workflow files and bare graphs alike.
workflow_app.command("check")(pipeline_check)
workflow_app.command("run")(pipeline_run)


@workflow_app.command("export")
def workflow_export(
    file: GraphFileArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the code here (default: stdout).")
    ] = None,
) -> None:
    """Write a workflow as a Python file: a Prefect flow calling the stage task once per node; run it with python.

    Example: openautoglm workflow export examples/workflows/ingest.json -o ingest.py && python ingest.py
    """
    try:
        from openautoglm.core.workflow import check_graph
        from openautoglm.core.workflow_codegen import export_code
        from openautoglm.stages import export_stages, signatures

        workflow = _read_workflow_file(file)
        check_graph(workflow.graph, signatures())
        if not workflow.app_version:
            workflow = workflow.model_copy(update={"app_version": __version__})
        code = export_code(workflow, export_stages())
        if output is not None:
            output.write_text(code, encoding="utf-8")
    except OpenAutoGLMError as error:
        _fail(error)
        return
    except ValidationError as error:
        _invalid(error)
        return
    except OSError as error:
        err.print(f"[bold red]error:[/] cannot write {escape(str(output))}: {escape(error.strerror or str(error))}")
        raise typer.Exit(code=2) from None
    if output is None:
        sys.stdout.write(code)
    else:
        console.print(f"wrote {output}", highlight=False)


@workflow_app.command("schema")
def workflow_schema() -> None:
    """Print the JSON Schema of a workflow file (committed as docs/workflow.schema.json)."""
    from openautoglm.core.workflow_file import json_schema

    sys.stdout.write(json.dumps(json_schema(), ensure_ascii=False, indent=2) + "\n")


@app.command()
def deploy(
    file: Annotated[Path | None, typer.Option(help="A prefect.yaml (default: deployments/prefect.yaml).")] = None,
    only: Annotated[list[str] | None, typer.Option(help="Deploy only this deployment (repeatable).")] = None,
    pool: Annotated[str, typer.Option(help="Process work pool (created if absent).")] = "openautoglm-pool",
    interval: Annotated[
        float | None, typer.Option(help="Replace schedules with an interval in seconds (testing).")
    ] = None,
) -> None:
    """Create the work pool if needed and register the deployments on the Prefect server (PREFECT_API_URL).

    Then start a worker (openautoglm worker) and trigger runs from the Prefect UI or `prefect deployment run`.
    """
    try:
        from openautoglm.deploy import DEFAULT_FILE
        from openautoglm.deploy import deploy as run_deploy

        done = run_deploy(file or DEFAULT_FILE, only=only or (), pool=pool, interval_s=interval)
    except OpenAutoGLMError as error:
        _fail(error)
        return
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


@app.command()
def worker(
    pool: Annotated[str, typer.Option(help="Work pool to poll.")] = "openautoglm-pool",
    limit: Annotated[int | None, typer.Option(help="Flow runs at once on this worker.")] = None,
) -> None:
    """Start a Prefect process worker for the pool (creating the pool if absent)."""
    import shutil

    from openautoglm.deploy import ensure_pool

    ensure_pool(pool)
    prefect = Path(sys.executable).parent / "prefect"
    command = [
        str(prefect) if prefect.exists() else (shutil.which("prefect") or "prefect"),
        "worker",
        "start",
        "--pool",
        pool,
    ]
    if limit:
        command += ["--limit", str(limit)]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.execv(command[0], command)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 in a container).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (each loads the models once).")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the REST API (/api/v1/classify, /ner, /match, /jobs; /healthz, /readyz, /metrics).

    Settings come from OPENAUTOGLM_SERVE_* variables (models, JWT keys, rate limit, Redis); see README "Serve".
    """
    import uvicorn

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        err.print("note: with several workers set PROMETHEUS_MULTIPROC_DIR so /metrics adds up every process")
    uvicorn.run(
        "openautoglm.serve.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=True,
        server_header=False,
        # Headers up to 4x the API's own limit reach the app, which answers 431 in the envelope.
        h11_max_incomplete_event_size=4 * 16_384,
    )


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    sys.exit(main())
