"""What the ``openautoglm`` commands read: the data source options (a source is a union of kinds, so these are
declared here, not in a model), the graph options, workflow files, and how a flow is run in this process."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer


def run_flow(flow: Any, params: Any) -> Any:
    """Run a flow in this process (no flow-run heartbeats: see flows.runtime.without_flow_heartbeats)."""
    from openautoglm.flows.runtime import without_flow_heartbeats

    with without_flow_heartbeats():
        return flow(params)


def split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    return items or None


def pairs(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    pairs: dict[str, str] = {}
    for item in value.split(","):
        if "=" not in item:
            raise typer.BadParameter(f"'{item}' is not old=new", param_hint="--rename")
        old, new = item.split("=", 1)
        pairs[old.strip()] = new.strip()
    return pairs


def source_spec(
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

    on_error: Literal["quarantine", "raise"] = "quarantine" if lenient else "raise"
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


def preflight(params: Any) -> None:
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

COMMON = {"output_dir": "output", "credentials_block": "credentials", "task.task_type": "task"}

OUTPUT = {"output": ("-o",)}


def table_graph(
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


def named_graph(dataset: str | None, root: Path | None, nasbench: str | None) -> Any:
    """A built-in graph by name (its files checked before a flow run starts), or None with --nasbench."""
    from openautoglm.adapters.graph_specs import PlanetoidGraph, WebKBGraph
    from openautoglm.adapters.graph_specs import named_graph as by_name
    from openautoglm.core.errors import ConfigurationError

    if not dataset:
        if nasbench:
            return None
        raise ConfigurationError("Say which graph: --dataset NAME, --nodes F --edges F, or --nasbench NAME.")
    graph = by_name(dataset, root)
    if isinstance(graph, PlanetoidGraph):
        graph.raw_root()
    elif isinstance(graph, WebKBGraph):
        graph.folder()
    return graph


def read_workflow_file(file: Path) -> Any:
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


def read_workflow(file: Path) -> Any:
    return read_workflow_file(file).graph


GraphFileArg = Annotated[
    Path, typer.Argument(help="A workflow file (v1), or a bare graph {nodes: [{id, stage, params}], edges: [...]}.")
]
