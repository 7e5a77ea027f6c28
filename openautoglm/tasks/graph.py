"""Tasks of the graph search: load a graph once per worker, train one architecture with K seeds."""

from __future__ import annotations

import functools
import json
from typing import Any

import torch
from prefect import task
from prefect.cache_policies import NO_CACHE
from torch_geometric.data import Data

from openautoglm.adapters.graphs import GraphSource, link_split, load_graph, node_split
from openautoglm.core.graph.evaluate import TrainingEvaluator
from openautoglm.core.graph.meta import MetaFeatures, meta_features
from openautoglm.core.graph.search.base import Score
from openautoglm.core.graph.space import Architecture
from openautoglm.core.graph.trainer import GraphTask, TrainConfig


@functools.lru_cache(maxsize=4)
def _prepared(spec_json: str, kind: str, task_kind: GraphTask, split_seed: int) -> Data | tuple[Data, Data, Data]:
    from pydantic import TypeAdapter

    spec = TypeAdapter(GraphSource).validate_json(spec_json)
    data = load_graph(spec)
    return node_split(data, split_seed) if task_kind == "node" else link_split(data, split_seed)


def prepared_graph(spec: Any, task_kind: GraphTask, split_seed: int) -> Data | tuple[Data, Data, Data]:
    """The split graph, loaded once per process."""
    return _prepared(spec.model_dump_json(), spec.kind, task_kind, split_seed)


@task(name="graph-meta-features", cache_policy=NO_CACHE)
def meta_task(spec: Any) -> MetaFeatures:
    """Load the graph and compute its meta-features."""
    data = load_graph(spec)
    return meta_features(
        data.edge_index.numpy(), int(data.num_nodes), data.y.numpy() if data.y is not None else None, data.x.numpy()
    )


@task(name="train-architecture", retries=1, retry_delay_seconds=[5], cache_policy=NO_CACHE, tags=["trial"])
def train_task(
    arch_json: str, spec: Any, task_kind: GraphTask, config: TrainConfig, seeds: tuple[int, ...], split_seed: int
) -> Score:
    """Train one architecture (one run per seed) in this worker; one thread, as the cores are the workers."""
    torch.set_num_threads(1)
    arch = Architecture.from_dict(json.loads(arch_json))
    data = prepared_graph(spec, task_kind, split_seed)
    return TrainingEvaluator(task=task_kind, data=data, config=config, seeds=seeds).score(arch)
