"""Graph stages: name a graph, read its meta-features, search GNN architectures (with tuning) on it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from openautoglm.adapters.graph_specs import GraphSource, PlanetoidGraph
from openautoglm.stages import Port, PortType, StageContext, stage
from openautoglm.usecases.graph import GraphSearch, describe_pick, search_graph

GRAPH_IN = Port("graph", PortType.GRAPH, "The graph")


class GraphLoadParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    graph: GraphSource = Field(default=PlanetoidGraph(), description="Planetoid graph, karate club, or CSV files.")


@stage(
    "graph-load",
    "Check that a graph can be read (Planetoid raw files, karate club, or node/edge CSV files) and pass it on.",
    params=GraphLoadParams,
    outputs=(GRAPH_IN,),
    tags=["io"],
)
def graph_load(inputs: Mapping[str, Any], params: GraphLoadParams, context: StageContext) -> dict[str, Any]:
    from openautoglm.adapters.graphs import load_graph  # torch and PyG: imported when a graph stage runs

    load_graph(params.graph)  # fails here, naming the file, rather than in every trial
    return {"graph": params.graph}


class MetaParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


@stage(
    "meta-features",
    "Read the graph's meta-features (size, density, degrees, homophily, clustering, feature sparsity).",
    params=MetaParams,
    inputs=(GRAPH_IN,),
    outputs=(Port("metrics", PortType.METRICS, "The meta-features"),),
)
def meta(inputs: Mapping[str, Any], params: MetaParams, context: StageContext) -> dict[str, Any]:
    from openautoglm.adapters.graph_runner import read_meta  # torch and PyG: imported when a graph stage runs

    return {"metrics": read_meta(inputs["graph"]).as_dict()}


@stage(
    "graph-search",
    "Search GNN architectures on the graph (baselines first, robust selection), tune the pick, save the model. "
    "Trials run on threads of the stage's task run (parallel of them).",
    params=GraphSearch,
    inputs=(GRAPH_IN,),
    outputs=(
        Port("model", PortType.MODEL, "The saved model folder"),
        Port("metrics", PortType.METRICS, "Validation and test scores of the pick"),
    ),
)
def graph_search(inputs: Mapping[str, Any], params: GraphSearch, context: StageContext) -> dict[str, Any]:
    # The use case itself, not the graph_search flow: trials on threads here, no MLflow run of its own.
    import time

    import torch

    from openautoglm.adapters.graph_runner import in_process_trials, prepared_graph, read_meta, save_model

    started, graph = time.monotonic(), inputs["graph"]
    torch.set_num_threads(1)
    meta = read_meta(graph, params.task, params.split_seed)
    prepared = prepared_graph(graph, params.task, params.split_seed)
    config = params.train_config()
    with in_process_trials(params.task, prepared, config, params.seeds, params.parallel) as (trials, _):
        _, outcome = search_graph(params, meta, trials, config=config, started=started)
    path = save_model(
        outcome.arch.to_json(), graph, params.task, outcome.config, params.split_seed, context.folder / context.node
    )
    return {"model": str(path), "metrics": describe_pick(outcome)}
