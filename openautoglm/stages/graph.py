"""Graph stages: name a graph, read its meta-features, search GNN architectures (with tuning) on it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from openautoglm.adapters.graph_specs import GraphSource, PlanetoidGraph
from openautoglm.stages import Port, PortType, StageContext, stage

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
    from openautoglm.tasks.graph import meta_task

    return {"metrics": meta_task.fn(inputs["graph"]).as_dict()}


class GraphSearchStageParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: Literal["node", "link"] = Field(default="node", description="node classification or link prediction")
    space: Literal["stack", "dag"] = Field(default="stack", description="Trained space: stack or dag.")
    algo: str = Field(default="rl", description="Search algorithm: rl, random, tpe, evolution or surrogate (dag).")
    budget: int = Field(default=20, ge=1, le=5000, description="Distinct candidates to train, baselines included.")
    parallel: int = Field(default=2, ge=1, le=256, description="Trials kept in flight at once.")
    final_seeds: int = Field(default=10, ge=1, le=20, description="Seeds the pick's test score is reported over.")
    hpo_trials: int = Field(default=0, ge=0, le=500, description="Optuna trials tuning the best candidate.")
    time_budget_s: float | None = Field(default=None, gt=0, description="Wall-clock budget of the search.")
    seed: int = Field(default=0, description="Seed of the search algorithm.")


@stage(
    "graph-search",
    "Search GNN architectures on the graph (baselines first, robust selection), tune the pick, save the model. "
    "Runs the graph_search flow as a subflow, with its own MLflow run and trials.",
    params=GraphSearchStageParams,
    inputs=(GRAPH_IN,),
    outputs=(
        Port("model", PortType.MODEL, "The saved model folder"),
        Port("metrics", PortType.METRICS, "Validation and test scores of the pick"),
    ),
)
def graph_search(inputs: Mapping[str, Any], params: GraphSearchStageParams, context: StageContext) -> dict[str, Any]:
    # The search runs as a subflow: trials as task runs on its runner, its own MLflow run with a nested run each.
    from openautoglm.flows.graph_search import GraphSearchParams
    from openautoglm.flows.graph_search import graph_search as search_flow

    result = search_flow(
        GraphSearchParams(graph=inputs["graph"], output_dir=context.folder / context.node, **params.model_dump())
    )
    metrics = {
        "best_val": result.best_val,
        "final_test_mean": result.final_test_mean,
        "final_test_std": result.final_test_std,
        "trials": result.trials,
        "best": result.best_describe or result.best_baseline,
        "mlflow_run_id": result.mlflow_run_id,
    }
    return {"model": str(result.model_path) if result.model_path else None, "metrics": metrics}
