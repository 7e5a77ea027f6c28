"""Tasks of the graph search: load a graph once per worker, train one architecture with K seeds."""

from __future__ import annotations

import functools
import json
import queue
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import torch
from prefect import task
from prefect.cache_policies import NO_CACHE
from torch_geometric.data import Data

from openautoglm.adapters.graphs import GraphSource, link_split, load_graph, node_split
from openautoglm.adapters.tracking import ParentRun, log_child_run
from openautoglm.core.graph.candidates import Candidate, candidate_from_dict
from openautoglm.core.graph.evaluate import TrainingEvaluator
from openautoglm.core.graph.meta import MetaFeatures, meta_features
from openautoglm.core.graph.search.base import Executor, Outcome, Score
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
    arch_json: str,
    spec: Any,
    task_kind: GraphTask,
    config: TrainConfig,
    seeds: tuple[int, ...],
    split_seed: int,
    parent: ParentRun | None = None,
    resample: bool = False,
) -> Score:
    """Train one candidate (one run per seed) in this worker; one thread, as the cores are the workers.

    With ``parent`` (a tracking store that takes parallel writers), the trial logs its own nested MLflow run here
    and returns its id in ``extra["mlflow_run_id"]``. ``resample``: each seed trains on its fold (a redrawn
    train/validation split of the node task), for the selection's scores.
    """
    torch.set_num_threads(1)
    arch = candidate_from_dict(json.loads(arch_json))
    data = prepared_graph(spec, task_kind, split_seed)
    score = TrainingEvaluator(task=task_kind, data=data, config=config, seeds=seeds).score(arch, resample=resample)
    if parent is None:
        return score
    metrics = {
        "val": score.val,
        "test": score.test,
        "val_std": score.val_std,
        "test_std": score.test_std,
        "seconds": score.seconds,
        **{k: v for k, v in score.extra.items() if isinstance(v, int | float)},
    }
    run_id = log_child_run(parent, f"trial-{arch.key()[:40]}", trial_params(arch), metrics)
    return replace(score, extra={**score.extra, "mlflow_run_id": run_id})


def trial_params(arch: Candidate) -> dict[str, Any]:
    """MLflow params of a trial's candidate: its fields, its key, and its baseline name if it is one."""
    fields = {k: v for k, v in arch.as_dict().items() if k != "name"}
    return {**fields, "arch": arch.key(), **({"baseline": arch.name} if arch.name else {})}


class TaskExecutor(Executor):
    """Trials as ``train_task`` runs on the flow's task runner (Dask): each finished future is queued by its done
    callback, so the search proposes the next candidate as soon as any trial ends.

    Args:
        submit: ``submit(arch) -> PrefectFuture`` (the flow binds the graph, config and seeds).
    """

    def __init__(self, submit: Callable[[Candidate], Any]) -> None:
        self._submit = submit
        self._done: queue.Queue[tuple[Candidate, Any]] = queue.Queue()

    def submit(self, arch: Candidate) -> None:
        future = self._submit(arch)
        future.add_done_callback(lambda f, a=arch: self._done.put((a, f)))

    def wait(self) -> list[tuple[Candidate, Outcome]]:
        finished = [self._done.get()]
        while not self._done.empty():
            finished.append(self._done.get_nowait())
        out: list[tuple[Candidate, Outcome]] = []
        for arch, future in finished:
            try:
                out.append((arch, future.result()))
            except Exception as error:  # a crashed task run, a worker lost for good: the search re-runs it
                out.append((arch, error))
        return out
