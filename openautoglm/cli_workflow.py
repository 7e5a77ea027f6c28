"""The ``openautoglm pipeline`` and ``openautoglm workflow`` commands: check, run and export workflow graphs of
catalogue stages (the generic pipeline flow)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape

from openautoglm import __version__
from openautoglm.cli_inputs import GraphFileArg, read_workflow, read_workflow_file, run_flow
from openautoglm.cli_output import console, err, errors, fail, invalid, print_pipeline
from openautoglm.core.errors import OpenAutoGLMError

pipeline_app = typer.Typer(
    help="Workflow graphs of catalogue stages, run as one Prefect flow (the generic pipeline flow).",
    no_args_is_help=True,
)


DataRootOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-root",
        help="Folder the workflow's relative paths start from, as the API's first data root is for the canvas "
        "(default: the current folder; the starters in examples/workflows: examples).",
    ),
]


@contextlib.contextmanager
def in_data_root(root: Path | None) -> Iterator[None]:
    """Relative paths of the workflow resolve under ``root`` inside the block (the current folder when None)."""
    if root is None:
        yield
        return
    if not root.is_dir():
        raise OpenAutoGLMError(f"--data-root {root}: no such folder.", hint="name the folder that holds the data")
    with contextlib.chdir(root):
        yield


@pipeline_app.command("check")
def pipeline_check(file: GraphFileArg, data_root: DataRootOpt = None) -> None:
    """Check a workflow graph without running it: stages, parameters, ports, inputs, cycles, input files."""
    with errors():
        from openautoglm.stages import check_workflow

        graph = read_workflow(file)
        with in_data_root(data_root):
            order = check_workflow(graph)
    console.print(f"ok: {len(order)} nodes, in order: {' -> '.join(n.id for n in order)}", highlight=False)


@pipeline_app.command("run")
def pipeline_run(
    file: GraphFileArg,
    output: Annotated[Path | None, typer.Option(help="Output folder (default: a new one under ~/runs).")] = None,
    experiment: Annotated[str, typer.Option(help="MLflow experiment name.")] = "pipeline",
    data_root: DataRootOpt = None,
) -> None:
    """Run a workflow graph as a Prefect flow run: one task run per node, every edge a data dependency.

    Example: openautoglm workflow run examples/workflows/seed-classification.json --data-root examples
    """
    with errors():
        from openautoglm.flows.pipeline import PipelineParams, pipeline
        from openautoglm.stages import check_workflow

        graph = read_workflow(file)
        output = output.resolve() if output is not None else None  # from here, not from the data root
        with in_data_root(data_root):
            check_workflow(graph)  # before the flow run starts: one line, no traceback
            params = PipelineParams(graph=graph, output_dir=output, experiment=experiment)
            result = run_flow(pipeline, params)
    print_pipeline(result)


workflow_app = typer.Typer(
    help="Saved workflow files (format v1, as the canvas saves them; bare v0 graphs are read too).",
    no_args_is_help=True,
)
# check and run are the pipeline commands: they read v1 workflow files and bare graphs alike.
workflow_app.command("check")(pipeline_check)
workflow_app.command("run")(pipeline_run)


@workflow_app.command("export")
def workflow_export(
    file: GraphFileArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the code here (default: stdout).")
    ] = None,
    data_root: DataRootOpt = None,
) -> None:
    """Write a workflow as a Python file: a Prefect flow calling the stage task once per node; run it with python
    from any folder (its relative paths start from the data root it names; --data-root DIR when run to change it).

    Example: openautoglm workflow export examples/workflows/ingest.json --data-root examples -o ingest.py
    """
    try:
        from openautoglm.core.workflow import check_graph
        from openautoglm.core.workflow_codegen import export_code
        from openautoglm.stages import export_stages, signatures

        workflow = read_workflow_file(file)
        check_graph(workflow.graph, signatures())
        if not workflow.app_version:
            workflow = workflow.model_copy(update={"app_version": __version__})
        code = export_code(workflow, export_stages(), data_root=(data_root or Path.cwd()).resolve())
        if output is not None:
            output.write_text(code, encoding="utf-8")
    except OpenAutoGLMError as error:
        fail(error)
        return
    except ValidationError as error:
        invalid(error)
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
