"""The ``openautoglm`` command line (Typer + Rich).

The commands that run a use case take their options from its parameter model (:mod:`openautoglm.cli_params`);
what they read is :mod:`openautoglm.cli_inputs`, what they print :mod:`openautoglm.cli_output`. Every command turns
this package's errors into a red message with a hint and exit code 2; no tracebacks unless ``OPENAUTOGLM_DEBUG=1``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from openautoglm import __version__
from openautoglm._env import apply_defaults
from openautoglm.cli_annotate import annotate_app
from openautoglm.cli_inputs import (
    COMMON,
    OUTPUT,
    ColumnsOpt,
    DelimiterOpt,
    EncodingOpt,
    FormatOpt,
    NoCacheOpt,
    PasswordEnvOpt,
    QueryOpt,
    RenameOpt,
    SourceArg,
    named_graph,
    pairs,
    preflight,
    run_flow,
    source_spec,
    split,
    table_graph,
)
from openautoglm.cli_output import (
    console,
    err,
    errors,
    print_deployments,
    print_distilled,
    print_graph_search,
    print_ingest,
    print_optimised,
    print_run,
    print_stages,
    print_validation,
    typed_errors_without_tracebacks,
)
from openautoglm.cli_params import FieldValues, lazy_group, model_command
from openautoglm.cli_workflow import pipeline_app, workflow_app

apply_defaults()
typed_errors_without_tracebacks()

Commands = lazy_group()
app = typer.Typer(
    cls=Commands,
    name="openautoglm",
    help="Open-AutoGLM: load, clean and validate text data, then run GLM tasks and graph searches as Prefect flows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


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

    with errors(values):
        lenient = values["gate"] == "quarantine" if lenient is None else lenient
        spec = source_spec(source, fmt, query, encoding, delimiter, lenient, password_env)
        params = IngestParams.model_validate(values.nested(source=spec))
        preflight(params)
        result = run_flow(ingest_flow, params)
    print_ingest(result)


@model_command(
    Commands,
    "validate",
    "openautoglm.stages.data:ValidateParams",
    rename={"text_columns": "text_column"},
    exclude=("gate",),
)
def validate(
    source: SourceArg,
    fmt: FormatOpt = "auto",
    query: QueryOpt = None,
    columns: ColumnsOpt = None,
    rename: RenameOpt = None,
    encoding: EncodingOpt = None,
    delimiter: DelimiterOpt = None,
    password_env: PasswordEnvOpt = None,
    show: Annotated[int, typer.Option(help="How many failing rows to list.")] = 20,
    *,
    values: FieldValues,
) -> None:
    """Check data against the task's expectations without running a flow; exit 1 if any row fails.

    Malformed records are reported as failures too. Nothing is written.
    """
    from openautoglm.adapters.validation import validate_dataset
    from openautoglm.loader import DataLoader
    from openautoglm.stages.data import ValidateParams

    with errors(values):
        spec = source_spec(source, fmt, query, encoding, delimiter, True, password_env)
        dataset = DataLoader(spec).load(columns=split(columns), rename=pairs(rename))
        outcome = validate_dataset(dataset, ValidateParams.model_validate(values.nested()).validation_config())
    if not print_validation(spec, dataset, outcome, show):
        raise typer.Exit(code=1)


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

    with errors(values):
        sql_url, _, sql_table = (output_sql or "").rpartition("#")
        params = RunTaskParams.model_validate(
            values.nested(
                source=source_spec(source, fmt, query, encoding, delimiter, True, password_env),
                cache="off" if no_cache else "use",
                output_sql_url=sql_url or None,
                output_table=sql_table or None,
                output_password_env=password_env,
            )
        )
        params.with_prompt()  # a bad prompt reference fails here, not inside the flow run
        check_supported(params.model, params.task)
        preflight(params)
        result = run_flow(run_task, params)
    print_run(result)


@model_command(
    Commands,
    "distill",
    "openautoglm.flows.distill_params:DistillParams",
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

    with errors(values):
        spec = source_spec(source, fmt, query, encoding, delimiter, True, password_env)
        params = DistillParams.model_validate(values.nested(source=spec, cache="off" if no_cache else "use"))
        check_supported(params.teacher, params.task)  # before a flow run starts, not inside it
        result = run_flow(distill_flow, params)
    print_distilled(result)


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

    with errors(values):
        spec = source_spec(source, fmt, query, encoding, delimiter, True, password_env)
        params = OptimizePromptParams.model_validate(values.nested(source=spec))
        check_supported(params.model, params.task)
        preflight(params)
        result = run_flow(optimize_prompt, params)
    print_optimised(result)


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
        str | None,
        typer.Option(
            help="Built-in graph: cora, citeseer, pubmed (Planetoid), cornell, texas, wisconsin (WebKB), read from "
            "--root; or karate."
        ),
    ] = None,
    root: Annotated[Path | None, typer.Option(help="Folder holding <Name>/raw (Planetoid) or <name>/ (WebKB).")] = None,
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

    with errors(values):
        if nodes or edges:
            graph = table_graph(
                nodes, edges, db_url, password_env, id_column, label_column, source_column, target_column
            )
        else:
            graph = named_graph(dataset, root, values["nasbench"])
        params = GraphSearchParams.model_validate(values.nested(graph=graph))
        result = run_flow(graph_search, params)
    print_graph_search(result, params.final_seeds)


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
    print_stages(entries)


app.add_typer(pipeline_app, name="pipeline")
app.add_typer(workflow_app, name="workflow")
app.add_typer(annotate_app, name="annotate")


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
    with errors():
        from openautoglm.deploy import DEFAULT_FILE
        from openautoglm.deploy import deploy as run_deploy

        done = run_deploy(file or DEFAULT_FILE, only=only or (), pool=pool, interval_s=interval)
    print_deployments(done, pool)


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

    Settings come from OPENAUTOGLM_SERVE_* variables (models, JWT keys, rate limit, Redis):
    see docs/deployment/serve.md.
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
    main()
