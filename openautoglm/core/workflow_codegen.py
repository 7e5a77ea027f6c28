"""Export a workflow file to a readable Python file: a Prefect ``@flow`` that calls the catalogue's stage task once
per node, in dependency order, with the node's parameters written out as literal dicts.

Pure: the caller says each stage's canonical name and Prefect task options (:class:`ExportStage`, from the
catalogue). The exported flow does what the ``pipeline`` flow does with the same graph (same task run names, the
same files, ``summary.json`` and MLflow run, through ``openautoglm.flows.pipeline.finish_pipeline``), so
``python exported.py`` gives what ``openautoglm workflow run FILE.json`` gives. It skips the pipeline flow's
pre-flight check of the whole graph (each node still validates its parameters when it runs).

A workflow's relative paths start from its data root (the API's first data root, as a canvas run resolves them),
so the file names that folder (``DATA_ROOT``) and runs inside it: ``python exported.py`` works from any folder, and
``--data-root DIR`` points it at another copy of the data.
"""

from __future__ import annotations

import keyword
import pprint
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from openautoglm.core.registry import normalize_name
from openautoglm.core.workflow import WorkflowError, inputs_of, topological_order
from openautoglm.core.workflow_file import WorkflowFile, logic_hash

WIDTH = 112


@dataclass(frozen=True)
class ExportStage:
    """What the export needs of a catalogue stage: its name and the Prefect options of its task runs."""

    name: str
    task_options: Mapping[str, Any] = field(default_factory=dict)


def _literal(value: Any, indent: int) -> str:
    """A Python literal of a JSON-like value, wrapped to fit (``pprint`` keeps dict order)."""
    text = pprint.pformat(value, width=WIDTH - indent, sort_dicts=False, compact=True)
    return text.replace("\n", "\n" + " " * indent)


def function_name(name: str) -> str:
    """A Python identifier for the flow function: ``run-task`` -> ``run_task``."""
    ident = re.sub(r"\W", "_", name)
    if not ident or ident[0].isdigit() or keyword.iskeyword(ident):
        ident = f"workflow_{ident}"
    return ident


def export_code(
    file: WorkflowFile, stages: Mapping[str, ExportStage], *, data_root: PurePath | str | None = None
) -> str:
    """The Python source of ``file`` as a Prefect flow (see the module docstring).

    Args:
        file: The workflow.
        stages: Normalised stage name -> :class:`ExportStage` (every stage the graph uses).
        data_root: The absolute folder its relative paths start from; None: the folder the file is run from.

    Raises:
        WorkflowError: a node of an unknown stage, or a cycle.
    """
    order = topological_order(file.graph)
    for node in order:
        if normalize_name(node.stage) not in stages:
            raise WorkflowError(f"Node '{node.id}': unknown stage '{node.stage}'.", hint="openautoglm stages")
    func = function_name(file.name)
    root = f"Path({str(data_root)!r})" if data_root is not None else "Path.cwd()"
    description = file.description.strip() or f"The workflow '{file.name}'."
    version = _one_line(file.app_version) or "(unknown version)"
    run_params = {
        "nodes": [f"{n.id}:{n.stage}" for n in order],
        "edges": [f"{e.source}->{e.target}" for e in file.graph.edges],
    }
    lines = [
        f'"""Workflow {file.name!r}, exported from Open-AutoGLM {version}.',
        "",
        *_docstring_lines(description),
        "",
        "The pipeline flow's run of this graph, written out: one task run per node (named after the node), each edge",
        "a data dependency; the same files, summary.json and MLflow run as `openautoglm workflow run` of the file.",
        "",
        f"    python {file.name}.py [OUTPUT_DIR] [--data-root DIR]",
        "",
        f"Logic hash: {logic_hash(file)}",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import argparse",
        "import contextlib",
        "from pathlib import Path",
        "from typing import Any",
        "",
        "from prefect import flow",
        "",
        "from openautoglm.flows.pipeline import PipelineResult, finish_pipeline, stage_task",
        "from openautoglm.flows.runtime import task_runner, tracked_flow",
        "",
        "#: The folder the workflow's relative paths start from (its data root); --data-root DIR changes it.",
        f"DATA_ROOT = {root}",
        "#: Node id -> stage, in the order the nodes run.",
        f"STAGES = {_literal({n.id: n.stage for n in order}, 9)}",
        "#: What the run logs to MLflow as its parameters (as the pipeline flow does).",
        f"RUN_PARAMS = {_literal(run_params, 13)}",
        "",
        "",
        f"@flow(name={file.name!r}, task_runner=task_runner(coarse=True), log_prints=True)",
        f"def {func}(",
        '    output_dir: Path | None = None, experiment: str = "pipeline", data_root: Path = DATA_ROOT',
        ") -> PipelineResult:",
        '    """Run the workflow; its relative paths start from data_root, its files go to output_dir (default: a new',
        '    folder under the home)."""',
        "    output_dir = output_dir.resolve() if output_dir is not None else None",
        "    with (",
        "        contextlib.chdir(data_root),",
        '        tracked_flow("pipeline", experiment, output_dir=output_dir, params=RUN_PARAMS) as tracked,',
        "    ):",
        "        folder = tracked.folder",
        "        nodes: dict[str, Any] = {}",
    ]
    for node in order:
        entry = stages[normalize_name(node.stage)]
        options = "".join(f", {k}={v!r}" for k, v in entry.task_options.items())
        inputs = ", ".join(
            f"{port!r}: (nodes[{src!r}], {out!r})" for port, (src, out) in inputs_of(file.graph, node.id).items()
        )
        lines += [
            f"        # {node.id}: {node.stage}",
            f"        nodes[{node.id!r}] = stage_task.with_options(",
            f"            name={entry.name!r}, task_run_name={node.id!r}{options}",
            "        ).submit(",
            f"            {node.stage!r},",
            f"            {node.id!r},",
            f"            {_literal(node.params, 12)},",
            f"            {{{inputs}}},",
            "            folder,",
            "        )",
        ]
    lines += [
        "        return finish_pipeline(tracked, STAGES, nodes)",
        "",
        "",
        'if __name__ == "__main__":',
        "    cli = argparse.ArgumentParser(description=__doc__.splitlines()[0])",
        '    cli.add_argument("output_dir", nargs="?", type=Path, help="default: a new folder under the home")',
        '    cli.add_argument("--data-root", type=Path, default=DATA_ROOT, help="default: %(default)s")',
        "    args = cli.parse_args()",
        f"    result = {func}(args.output_dir, data_root=args.data_root.resolve())",
        '    print(f"folder: {result.folder}")',
        '    print(f"summary: {result.summary_path}")',
        "",
    ]
    return "\n".join(lines)


def _one_line(text: str) -> str:
    """Text safe inside a triple-quoted docstring: one line, backslashes and double quotes escaped."""
    return " ".join(text.split()).replace("\\", "\\\\").replace('"', '\\"')


def _docstring_lines(text: str) -> list[str]:
    return textwrap.wrap(_one_line(text), width=WIDTH, break_long_words=False, break_on_hyphens=False) or [""]
