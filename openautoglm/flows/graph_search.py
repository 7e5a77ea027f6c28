"""Flow ``graph_search``: meta-features -> prior -> baselines first, then the search with ``parallel`` trials in
flight on Dask -> optional HPO -> robust selection (survivors re-trained with more seeds, pick by mean validation)
-> the pick reported over ``final_seeds`` seeds -> best model saved; MLflow parent run with a nested run per
trial."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

import mlflow
import torch
from mlflow.tracking import MlflowClient
from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import BaseModel, ConfigDict, Field, model_validator

from openautoglm.adapters.graphs import GraphSource, PlanetoidGraph
from openautoglm.adapters.plots import search_curve_png
from openautoglm.adapters.tracking import (
    ParentRun,
    log_child_run,
    log_metrics,
    log_params,
    supports_parallel_writers,
)
from openautoglm.core.graph.candidates import Candidate
from openautoglm.core.graph.evaluate import TrainingEvaluator
from openautoglm.core.graph.hpo import tune
from openautoglm.core.graph.meta import MetaFeatures
from openautoglm.core.graph.planning import plan_space, plan_stack_space
from openautoglm.core.graph.search import SEARCHERS, History, Score, Trial, run_search
from openautoglm.core.graph.selection import Selection, select
from openautoglm.core.graph.stack import BASELINES, WARM_STARTS
from openautoglm.core.graph.trainer import TrainConfig
from openautoglm.flows.runtime import RunTail, task_runner, tracked_flow
from openautoglm.flows.stages import write_json
from openautoglm.settings import get_settings
from openautoglm.tasks.graph import TaskExecutor, meta_task, prepared_graph, train_task, trial_params


class GraphSearchParams(BaseModel):
    """Parameters of the ``graph_search`` flow (a form in the Prefect UI)."""

    model_config = ConfigDict(extra="forbid")

    graph: GraphSource | None = Field(default=PlanetoidGraph(), description="The graph (ignored with nasbench).")
    nasbench: str | None = Field(
        default=None, description="Search NAS-Bench-Graph's table for this dataset instead of training (cora...)."
    )
    task: Literal["node", "link"] = Field(default="node", description="node classification or link prediction")
    space: Literal["stack", "dag"] = Field(
        default="stack",
        description="Trained space: stack (1-4 layers of one family, per-layer widths, heads, dropouts, skips, "
        "feature normalisation, per-family recipe) or dag (NAS-Bench-Graph's macro space, one recipe).",
    )
    algo: str = Field(
        default="rl",
        description="Search algorithm: rl, random, tpe, evolution, or surrogate (NAS-Bench-Graph's transfer prior "
        "and a ridge surrogate; space=dag or nasbench, node task).",
    )
    budget: int = Field(
        default=20, ge=1, le=5000, description="Distinct candidates to train, the baselines (trained first) included."
    )
    parallel: int = Field(default=2, ge=1, le=256, description="Trials kept in flight at once.")
    baselines: bool = Field(
        default=True, description="Train the textbook baselines first (GCN and GAT for nodes, GAE for links)."
    )
    seeds: int = Field(default=1, ge=1, le=10, description="Training runs per candidate during the screening.")
    survivors: int = Field(
        default=4, ge=0, le=50, description="Best screened candidates re-trained with select_seeds (baselines too)."
    )
    select_seeds: int = Field(default=5, ge=1, le=20, description="Seeds of the survivors; the pick is by mean val.")
    resample: bool = Field(
        default=True,
        description="Node task: score the survivors on select_seeds folds (training nodes redrawn from the labelled "
        "non-test nodes, validation on the rest) rather than on the fixed split; the report stays on the split.",
    )
    final_seeds: int = Field(default=10, ge=1, le=20, description="Seeds the pick's test score is reported over.")
    time_budget_s: float | None = Field(
        default=None,
        gt=0,
        description="Wall-clock budget: the search stops starting trials at 70% of it, the selection trains no "
        "more seeds past it; the best so far is reported.",
    )
    use_prior: bool = Field(default=True, description="Bias the search with the meta-feature policy.")
    transfer: bool = Field(
        default=True, description="Weight operators and links by how often they appear in NAS-Bench-Graph's top 1%."
    )
    hpo_trials: int = Field(
        default=0, ge=0, le=500, description="Optuna trials tuning the best screened candidate (a survivor then)."
    )
    hpo_timeout_s: float | None = Field(default=None, gt=0, description="Time budget of the tuning.")
    lr: float = Field(default=0.01, gt=0)
    weight_decay: float = Field(default=5e-4, ge=0)
    max_epochs: int = Field(default=300, ge=1)
    patience: int = Field(default=20, ge=1)
    split_seed: int = Field(default=0, description="Seed of the node or link split (when the graph has none).")
    seed: int = Field(default=0, description="Seed of the search algorithm.")
    output_dir: Path | None = None
    experiment: str = Field(default="graph_search", min_length=1)

    @model_validator(mode="after")
    def _check(self) -> GraphSearchParams:
        if getattr(SEARCHERS.resolve(self.algo), "needs_pool", False) and (
            self.task != "node" or (self.space != "dag" and self.nasbench is None)
        ):
            raise ValueError(f"algo {self.algo} searches NAS-Bench-Graph's macro space: use space=dag or nasbench=")
        if self.nasbench is None and self.graph is None:
            raise ValueError("give a graph, or nasbench=<dataset> to search the lookup table")
        if self.nasbench is not None and self.task != "node":
            raise ValueError("NAS-Bench-Graph holds node classification only")
        return self

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            lr=self.lr, weight_decay=self.weight_decay, max_epochs=self.max_epochs, patience=self.patience
        )


class GraphSearchResult(RunTail):
    """The search's outcome. ``best_*`` is the pick; ``final_*`` its score over ``final_seeds`` seeds."""

    best_arch: dict[str, Any]
    best_describe: str = ""
    best_baseline: str = Field(default="", description="The baseline's name when a baseline was picked.")
    best_val: float
    final_val_mean: float
    final_val_std: float
    final_test_mean: float
    final_test_std: float
    trials: int
    search_seconds: float
    stopped: str = "budget"
    resubmitted: int = 0
    max_in_flight: int = 0
    baselines: list[dict[str, Any]] = Field(default_factory=list)
    survivors: list[dict[str, Any]] = Field(default_factory=list)
    select_seeds: int = 0
    resampled: bool = Field(default=False, description="Whether the survivors were scored on resampled folds.")
    selection_seconds: float = 0.0
    prior: str
    meta: dict[str, Any] | None
    hpo: dict[str, Any] | None
    model_path: Path | None


def _record_trial(trial: Trial, parent: ParentRun) -> None:
    """Mark a trial's nested run with its index (logged by the worker), or log it here (SQLite store)."""
    child = trial.extra.get("mlflow_run_id")
    if child:
        MlflowClient(parent.tracking_uri).set_tag(str(child), "trial_index", str(trial.index))
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
        tags={"trial_index": str(trial.index)},
    )


@flow(name="graph_search", task_runner=task_runner())
def graph_search(params: GraphSearchParams) -> GraphSearchResult:
    """Search GNN candidates for a graph (or NAS-Bench-Graph's tables), baselines first, and pick robustly."""
    logger = get_run_logger()
    deadline = time.monotonic() + params.time_budget_s if params.time_budget_s else None
    config = params.train_config()
    name = (params.nasbench and f"nasbench:{params.nasbench}") or (params.graph.describe() if params.graph else "")
    with tracked_flow(
        "graph_search",
        params.experiment,
        output_dir=params.output_dir,
        params={k: v for k, v in params.model_dump(mode="json").items() if k not in ("graph",)} | {"graph": name},
        tags={"openautoglm.graph": name},
        what=f"graph_search on {name}",
    ) as tracked:
        folder, run = tracked.folder, tracked.run
        parent = ParentRun(get_settings().tracking_uri, run.experiment_id, run.run_id)
        in_workers = parent if supports_parallel_writers(parent.tracking_uri) and not params.nasbench else None

        meta, space, prior, evaluate = _plan(params, config, in_workers)
        prior_text = prior.describe() if prior is not None else "no prior (uninformed search)"
        logger.info("search prior: %s", prior_text)
        if meta is not None:
            log_params({f"meta_{k}": v for k, v in meta.as_dict().items()})
        mlflow.set_tag("openautoglm.prior", prior_text[:5000])

        baselines = BASELINES[params.task] if params.baselines and not params.nasbench else ()
        warm = WARM_STARTS[params.task] if params.space == "stack" and not params.nasbench else ()
        kind = SEARCHERS.resolve(params.algo)
        pool = _transfer_pool(params, meta) if getattr(kind, "needs_pool", False) else {}
        searcher = kind(space, seed=params.seed, warm_start=warm, **pool)
        history: History = run_search(
            searcher,
            evaluate,
            params.budget,
            parallel=params.parallel,
            on_trial=lambda t: _record_trial(t, parent),
            time_budget_s=params.time_budget_s * 0.7 if params.time_budget_s else None,
            baselines=baselines,
        )
        best = history.best
        logger.info(
            "best of %d (%s): %s val %.4f; at most %d in flight, %d re-run after a failure",
            len(history.trials),
            history.stopped,
            best.arch.describe(),
            best.val,
            history.max_in_flight,
            history.resubmitted,
        )

        hpo_summary: dict[str, Any] | None = None
        model_path: Path | None = None
        selection: Selection | None = None
        if params.nasbench:
            final, final_arch, final_config = Score(val=best.val, test=best.test), best.arch, config
        else:
            extra: list[Candidate] = []
            if params.hpo_trials:
                hpo_summary, tuned = _tune(params, best.arch, config, prior)
                extra.append(tuned)
            selection = select(
                history,
                _seed_evaluator(params, config),
                survivors=params.survivors,
                select_seeds=params.select_seeds,
                report_seeds=params.final_seeds,
                deadline=deadline,
                extra=extra,
                parallel=params.parallel,
                resample=params.resample and params.task == "node",
            )
            final, final_arch, final_config = selection.final, selection.arch, config
            logger.info(
                "pick by mean validation over %d seeds: %s (val %.4f); test over %d seeds %.4f +- %.4f",
                selection.select_seeds,
                final_arch.describe(),
                selection.val_mean,
                selection.report_seeds,
                final.test,
                final.test_std,
            )
            model_path = _save_model(params, final_arch, final_config, folder)
            mlflow.log_artifact(str(model_path))

        log_metrics(
            {
                "best_val": best.val,
                "best_test": best.test,
                "final_val_mean": final.val,
                "final_val_std": final.val_std,
                "final_test_mean": final.test,
                "final_test_std": final.test_std,
                "trials": len(history.trials),
                "search_seconds": history.seconds,
                "max_in_flight": history.max_in_flight,
                "resubmitted": history.resubmitted,
            }
        )
        curve = search_curve_png(
            history.best_so_far(),
            history.test_of_best_so_far(),
            folder / "search_curve.png",
            title=f"{params.algo} on {name}",
        )
        mlflow.log_artifact(str(curve))
        board = [
            {
                "rank": i + 1,
                "trial": t.index,
                "baseline": t.baseline,
                "val": round(t.val, 4),
                "test": round(t.test, 4),
                "candidate": t.arch.describe(),
                "seconds": round(t.seconds, 2),
            }
            for i, t in enumerate(_leaderboard(history, 10))
        ]
        create_table_artifact(key="leaderboard", table=board, description=f"Top candidates on {name}")
        if selection is not None:
            create_table_artifact(
                key="selection",
                table=[
                    {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
                    for row in selection.survivors
                ],
                description=f"Survivors re-trained with {selection.select_seeds} "
                + ("folds (resampled splits)" if selection.resampled else "seeds")
                + "; the pick is the best mean val",
            )
        create_markdown_artifact(
            key="search-prior",
            markdown=f"# Search on {name}\n\n**Prior**: {prior_text}\n\n"
            f"**Meta-features**: `{json.dumps(meta.as_dict() if meta else {})}`\n",
        )
        write_json(
            folder / "history.json",
            [
                {
                    "index": t.index,
                    "round": t.round,
                    "baseline": t.baseline,
                    "attempts": t.attempts,
                    "arch": t.arch.as_dict(),
                    "val": t.val,
                    "test": t.test,
                    "seconds": t.seconds,
                }
                for t in history.trials
            ],
        )
        mlflow.log_artifact(str(folder / "history.json"))
        result = GraphSearchResult(
            best_arch=final_arch.as_dict(),
            best_describe=final_arch.describe(),
            best_baseline=selection.baseline if selection is not None else best.baseline,
            best_val=best.val,
            final_val_mean=final.val,
            final_val_std=final.val_std,
            final_test_mean=final.test,
            final_test_std=final.test_std,
            trials=len(history.trials),
            search_seconds=history.seconds,
            stopped=history.stopped,
            resubmitted=history.resubmitted,
            max_in_flight=history.max_in_flight,
            baselines=[
                {"name": t.baseline, "val": t.val, "test": t.test, "seconds": t.seconds} for t in history.baselines
            ],
            survivors=selection.survivors if selection is not None else [],
            select_seeds=selection.select_seeds if selection is not None else 0,
            resampled=selection.resampled if selection is not None else False,
            selection_seconds=selection.seconds if selection is not None else 0.0,
            prior=prior_text,
            meta=meta.as_dict() if meta else None,
            hpo=hpo_summary,
            model_path=model_path,
            **tracked.tail(),
        )
        tracked.summarise(result)
    tracked.push(
        {
            "best_val": result.best_val,
            "final_test_mean": result.final_test_mean,
            "trials": result.trials,
            "search_seconds": result.search_seconds,
            "seconds": result.seconds,
        }
    )
    return result


def _leaderboard(history: History, n: int) -> list[Trial]:
    """The best ``n`` trials, and every baseline (they stay on the board)."""
    top = history.leaderboard(n)
    return top + [t for t in history.baselines if t not in top]


def _plan(
    params: GraphSearchParams, config: TrainConfig, in_workers: ParentRun | None
) -> tuple[MetaFeatures | None, Any, Any, Any]:
    """Meta-features, the space with its prior, and where trials run (a lookup, or train tasks on Dask)."""
    logger = get_run_logger()
    meta: MetaFeatures | None
    space: Any
    if params.nasbench:
        from openautoglm.adapters.nasbench import PUBLISHED, LookupEvaluator, nasbench_space, published_meta

        meta = published_meta(params.nasbench) if params.nasbench in PUBLISHED else None
        space, prior = plan_space(meta, use_prior=params.use_prior)
        space = nasbench_space(params.nasbench, prior=dict(space.prior))
        evaluate: Any = LookupEvaluator(params.nasbench)
    else:
        meta = meta_task(params.graph)
        node_meta = meta if params.task == "node" else None
        if params.space == "stack":
            space, prior = plan_stack_space(node_meta, task=params.task, use_prior=params.use_prior)
        else:
            space, prior = plan_space(node_meta, use_prior=params.use_prior)
        seeds = tuple(range(params.seeds))

        def submit(arch: Candidate) -> Any:
            return train_task.submit(
                arch.to_json(), params.graph, params.task, config, seeds, params.split_seed, in_workers
            )

        evaluate = TaskExecutor(submit)
    if params.transfer and params.task == "node" and (params.nasbench or params.space == "dag"):
        from openautoglm.adapters.nasbench import transfer_weights

        space = space.with_prior(transfer_weights(exclude=[params.nasbench] if params.nasbench else []))
        logger.info("transfer prior: operator and link frequencies of NAS-Bench-Graph's top 1%")
        mlflow.set_tag("openautoglm.transfer", "nasbench-top1%")
    return meta, space, prior, evaluate


def _transfer_pool(params: GraphSearchParams, meta: MetaFeatures | None) -> dict[str, Any]:
    """A pool searcher's candidates and transferred prior (the NAS-Bench-Graph tables; the target's left out)."""
    from openautoglm.adapters.nasbench import transfer_pool

    mlflow.set_tag("openautoglm.transfer", "nasbench-surrogate")
    return transfer_pool(params.nasbench, meta)


def _seed_evaluator(params: GraphSearchParams, config: TrainConfig) -> Any:
    """``[(candidate, seeds), ...] -> [Score, ...]`` as train tasks on the flow's runner, all in flight at once."""

    def evaluate(requests: Any, resample: bool) -> list[Score]:
        futures = train_task.map(
            [arch.to_json() for arch, _ in requests],
            unmapped(params.graph),
            unmapped(params.task),
            unmapped(config),
            [seeds for _, seeds in requests],
            unmapped(params.split_seed),
            resample=unmapped(resample),
        )
        return [f.result() for f in futures]

    return evaluate


def _tune(
    params: GraphSearchParams, arch: Candidate, config: TrainConfig, prior: Any
) -> tuple[dict[str, Any], Candidate]:
    data = prepared_graph(params.graph, params.task, params.split_seed)

    def train(candidate: Candidate, cfg: TrainConfig, seed: int, report: Any) -> Any:
        return TrainingEvaluator(task=params.task, data=data, config=cfg, seeds=(seed,)).run(candidate, seed, report)

    hidden = prior.hidden if prior is not None else (32, 64, 128, 256)
    result = tune(
        arch,
        train,
        base=config,
        trials=params.hpo_trials,
        timeout_s=params.hpo_timeout_s,
        seed=params.seed,
        hidden=hidden,
    )
    summary = {"val": result.val, "trials": len(result.trials), "pruned": result.pruned, "seconds": result.seconds}
    summary.update(result.params)
    log_metrics({f"hpo_{k}": v for k, v in summary.items() if isinstance(v, int | float)})
    return summary, result.arch


def _save_model(params: GraphSearchParams, arch: Candidate, config: TrainConfig, folder: Path) -> Path:
    """Train the chosen candidate once (seed 0) and save its weights, description and settings."""
    data = prepared_graph(params.graph, params.task, params.split_seed)
    trained = TrainingEvaluator(task=params.task, data=data, config=config).run(arch, 0, keep_model=True)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "best_model.pt"
    torch.save(
        {
            "arch": arch.as_dict(),
            "config": arch.train_config(config).__dict__,
            "val": trained.val,
            "test": trained.test,
            "state_dict": trained.model.state_dict() if trained.model is not None else {},
        },
        path,
    )
    return path
