"""Tasks of the graph search: load a graph once per worker, train one architecture with K seeds."""

from __future__ import annotations

import json
import queue
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from prefect import task, unmapped
from prefect.cache_policies import NO_CACHE

from openautoglm.adapters.graph_runner import Trials, prepared_graph, read_meta, save_model
from openautoglm.adapters.tracking import ParentRun, log_child_run
from openautoglm.core.graph.candidates import Candidate, candidate_from_dict
from openautoglm.core.graph.evaluate import TrainingEvaluator
from openautoglm.core.graph.meta import MetaFeatures
from openautoglm.core.graph.search.base import Executor, Outcome, Score, Trial
from openautoglm.core.graph.trainer import GraphTask, TrainConfig


@task(name="graph-meta-features", cache_policy=NO_CACHE)
def meta_task(spec: Any, task_kind: GraphTask = "node", split_seed: int = 0) -> MetaFeatures:
    """Load the graph and compute its meta-features (the training nodes' labels only: ``read_meta``)."""
    return read_meta(spec, task_kind, split_seed)


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


def task_trials(
    spec: Any, task_kind: GraphTask, config: TrainConfig, seeds: int, split_seed: int, parent: ParentRun | None
) -> Trials:
    """Trials as ``train-architecture`` task runs on the flow's task runner: the screening keeps them in flight
    (``seeds`` runs each; ``parent``: trials log their own MLflow runs), the selection submits all its re-training
    at once, and the tuning trains in the flow process."""
    screening = tuple(range(seeds))

    def submit(arch: Candidate) -> Any:
        return train_task.submit(arch.to_json(), spec, task_kind, config, screening, split_seed, parent)

    def selection(recipe: TrainConfig) -> Any:
        def evaluate(requests: Any, resample: bool) -> list[Score]:
            futures = train_task.map(
                [arch.to_json() for arch, _ in requests],
                unmapped(spec),
                unmapped(task_kind),
                unmapped(recipe),
                [seeds for _, seeds in requests],
                unmapped(split_seed),
                resample=unmapped(resample),
            )
            return [f.result() for f in futures]

        return evaluate

    def train(candidate: Candidate, recipe: TrainConfig, seed: int, report: Any) -> Any:
        data = prepared_graph(spec, task_kind, split_seed)
        return TrainingEvaluator(task=task_kind, data=data, config=recipe, seeds=(seed,)).run(candidate, seed, report)

    return Trials(screen=TaskExecutor(submit), seeds=selection, train=train)


def record_trial(trial: Trial, parent: ParentRun) -> None:
    """Mark a trial's nested run with its index (logged by the worker), or log it here (SQLite store)."""
    from mlflow.tracking import MlflowClient

    child = trial.extra.get("mlflow_run_id")
    kind = "baseline" if trial.baseline else "searched"
    if child:
        client = MlflowClient(parent.tracking_uri)
        client.set_tag(str(child), "trial_index", str(trial.index))
        client.set_tag(str(child), "openautoglm.kind", kind)
        return
    log_child_run(
        parent,
        f"trial-{trial.index:03d}" + (f"-{trial.baseline}" if trial.baseline else ""),
        {**trial_params(trial.arch), "round": trial.round},
        {
            "val": trial.val,
            "test": trial.test,
            "val_std": trial.val_std,
            "test_std": trial.test_std,
            "seconds": trial.seconds,
            **{k: v for k, v in trial.extra.items() if isinstance(v, int | float)},
        },
        tags={"trial_index": str(trial.index), "openautoglm.kind": kind},
    )


@task(name="save-graph-model", retries=1, retry_delay_seconds=[5], cache_policy=NO_CACHE, tags=["trial"])
def save_model_task(
    arch_json: str, spec: Any, task_kind: GraphTask, config: TrainConfig, split_seed: int, folder: Path
) -> Path:
    """Train the chosen candidate once (seed 0) and save its weights, description and settings."""
    return save_model(arch_json, spec, task_kind, config, split_seed, folder)
