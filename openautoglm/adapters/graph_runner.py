"""The graph search use case, written once: plan the space from the meta-features, search (baselines first), tune,
select robustly (survivors on more seeds or resampled folds), report the pick over more seeds.

``AutoGraph`` runs it in this process (trials on threads); the ``graph_search`` flow runs it with every trial a
``train-architecture`` task run on Dask, and tracks it. Only *where trials run* differs, given as :class:`Trials`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from openautoglm.core.graph.candidates import Candidate
from openautoglm.core.graph.hpo import HpoResult, tune
from openautoglm.core.graph.meta import MetaFeatures, SearchPrior
from openautoglm.core.graph.planning import CostPlan, plan_cost, plan_space, plan_stack_space
from openautoglm.core.graph.search import SEARCHERS, BatchEvaluator, Executor, History, Score, Trial, run_search
from openautoglm.core.graph.selection import SeedEvaluator, Selection, select
from openautoglm.core.graph.stack import BASELINES, WARM_STARTS, baselines_by_name
from openautoglm.core.graph.trainer import TrainConfig

GraphTask = Literal["node", "link"]


@dataclass(frozen=True)
class SearchOptions:
    """What to search and how (the knobs ``AutoGraph`` and ``GraphSearchParams`` share)."""

    task: GraphTask = "node"
    space: Literal["stack", "dag"] = "stack"
    algo: str = "rl"
    budget: int = 20
    parallel: int = 1
    baselines: bool = True
    survivors: int = 4
    select_seeds: int = 5
    resample: bool = True
    final_seeds: int = 10
    time_budget_s: float | None = None
    use_prior: bool = True
    transfer: bool = True
    hpo_trials: int = 0
    hpo_timeout_s: float | None = None
    seed: int = 0
    nasbench: str | None = None  # search NAS-Bench-Graph's table for this dataset (lookups, no training)


@dataclass(frozen=True)
class SearchPlan:
    """The space to search, with the meta-feature prior that shaped it and what was transferred into it."""

    meta: MetaFeatures | None
    space: Any
    prior: SearchPrior | None
    transfer: str | None = None  # "nasbench-top1%" or "nasbench-surrogate" when a transfer prior is in use
    searcher_kwargs: dict[str, Any] = field(default_factory=dict)
    baselines: tuple[Candidate, ...] = ()  # published recipes trained first, in the prior's order
    cost: CostPlan | None = None  # the time and candidate budgets the graph gets

    def describe_prior(self) -> str:
        text = self.prior.describe() if self.prior is not None else "no prior (uninformed search)"
        if self.baselines and (self.prior is None or not self.prior.baselines):
            text += " Baselines first: " + ", ".join(b.name for b in self.baselines) + "."
        if self.cost is not None and self.cost.reasons:
            text += " Cost: " + "; ".join(self.cost.reasons) + "."
        return text

    @property
    def time_budget_s(self) -> float | None:
        return self.cost.time_budget_s if self.cost is not None else None


def plan_search(options: SearchOptions, meta: MetaFeatures | None) -> SearchPlan:
    """The space for ``options`` and the graph's meta-features (NAS-Bench-Graph's macro space for a lookup)."""
    node_meta = meta if options.task == "node" else None
    space: Any
    if options.nasbench:
        from openautoglm.adapters.nasbench import nasbench_space

        space, prior = plan_space(meta, use_prior=options.use_prior)
        space = nasbench_space(options.nasbench, prior=dict(space.prior))
    elif options.space == "stack":
        space, prior = plan_stack_space(node_meta, task=options.task, use_prior=options.use_prior)
    else:
        space, prior = plan_space(node_meta, use_prior=options.use_prior)
    transfer = None
    if options.transfer and options.task == "node" and (options.nasbench or options.space == "dag"):
        from openautoglm.adapters.nasbench import transfer_weights

        space = space.with_prior(transfer_weights(exclude=[options.nasbench] if options.nasbench else []))
        transfer = "nasbench-top1%"
    kwargs: dict[str, Any] = {}
    if getattr(SEARCHERS.resolve(options.algo), "needs_pool", False):
        from openautoglm.adapters.nasbench import transfer_pool

        kwargs, transfer = transfer_pool(options.nasbench, meta), "nasbench-surrogate"
    baselines: tuple[Candidate, ...] = ()
    if options.baselines and not options.nasbench:
        ordered = options.task == "node" and prior is not None and prior.baselines
        baselines = baselines_by_name(prior.baselines) if ordered and prior else BASELINES[options.task]
    cost = None
    if not options.nasbench:
        cost = plan_cost(meta, budget=options.budget, time_budget_s=options.time_budget_s, prior=prior)
    return SearchPlan(meta, space, prior, transfer, kwargs, baselines, cost)


@dataclass(frozen=True)
class Trials:
    """Where the trials run.

    Attributes:
        screen: The screening's evaluator (an :class:`Executor` keeping trials in flight, or a batch evaluator).
        seeds: ``seeds(config) -> SeedEvaluator`` for the selection's re-training (None: no selection, e.g. a
            lookup table, whose scores are exact).
        train: ``train(candidate, config, seed, report)`` for the tuning's trials (None: no tuning).
    """

    screen: Executor | BatchEvaluator
    seeds: Callable[[TrainConfig], SeedEvaluator] | None = None
    train: Callable[[Candidate, TrainConfig, int, Any], Any] | None = None


@dataclass(frozen=True)
class SearchOutcome:
    """A finished search: every trial, the tuning and the selection (when run), and the pick with its score."""

    history: History
    arch: Candidate
    final: Score
    config: TrainConfig  # the recipe of candidates without their own (the tuned one after HPO)
    selection: Selection | None = None
    hpo: HpoResult | None = None

    @property
    def baseline(self) -> str:
        """The pick's baseline name ('' when the pick is not a baseline)."""
        return self.selection.baseline if self.selection is not None else self.history.best.baseline

    @property
    def kind(self) -> str:
        """What produced the pick: ``baseline`` (a published recipe), ``searched``, or ``tuned`` (the HPO's)."""
        if self.selection is not None:
            return self.selection.kind
        return "baseline" if self.history.best.baseline else "searched"


def run_graph_search(
    options: SearchOptions,
    plan: SearchPlan,
    config: TrainConfig,
    trials: Trials,
    *,
    on_trial: Callable[[Trial], None] | None = None,
    started: float | None = None,
) -> SearchOutcome:
    """Search ``plan.space`` with ``options`` and pick; ``started`` (``time.monotonic()``) starts the time budget
    (the caller's, else the plan's, which follows the graph's size)."""
    began = started or time.monotonic()
    time_budget = options.time_budget_s or plan.time_budget_s
    deadline = began + time_budget if time_budget else None
    lookup = options.nasbench is not None
    warm = WARM_STARTS[options.task] if options.space == "stack" and not lookup else ()
    searcher = SEARCHERS.resolve(options.algo)(plan.space, seed=options.seed, warm_start=warm, **plan.searcher_kwargs)
    history = run_search(
        searcher,
        trials.screen,
        plan.cost.budget if plan.cost is not None else options.budget,
        parallel=options.parallel,
        on_trial=on_trial,
        # The screening gets 70% of what is left when it starts (the meta-features and split came first).
        time_budget_s=max(0.0, (deadline - time.monotonic()) * 0.7) if deadline else None,
        baselines=plan.baselines,
    )
    best = history.best
    if trials.seeds is None:
        return SearchOutcome(history, best.arch, Score(val=best.val, test=best.test), config)
    hpo: HpoResult | None = None
    extra: list[Candidate] = []
    if options.hpo_trials and trials.train is not None:
        hidden = plan.prior.hidden if plan.prior is not None else (32, 64, 128, 256)
        hpo = tune(
            best.arch,
            trials.train,
            base=config,
            trials=options.hpo_trials,
            timeout_s=options.hpo_timeout_s,
            seed=options.seed,
            hidden=hidden,
        )
        extra.append(hpo.arch)
        config = hpo.config  # DAG candidates take their tuned lr / weight decay from here
    selection = select(
        history,
        trials.seeds(config),
        survivors=options.survivors,
        select_seeds=options.select_seeds,
        report_seeds=options.final_seeds,
        deadline=deadline,
        extra=extra,
        parallel=options.parallel,
        resample=options.resample and options.task == "node",
    )
    return SearchOutcome(history, selection.arch, selection.final, config, selection, hpo)


@contextmanager
def in_process_trials(
    task: GraphTask, prepared: Any, config: TrainConfig, seeds: int, parallel: int
) -> Iterator[tuple[Trials, Any]]:
    """Trials on ``parallel`` threads of this process (the SDK face and the catalogue stage): the screening with
    ``seeds`` runs per candidate and median stopping on a node task, the selection's re-training on the same
    threads, the tuning in this thread. Yields the trials and the pruner (None for links: its ``stopped`` counts
    the searched candidates cut short)."""
    import concurrent.futures as cf

    from openautoglm.core.graph.evaluate import TrainingEvaluator
    from openautoglm.core.graph.pruning import MedianStopping
    from openautoglm.core.graph.search import PoolExecutor

    # Median stopping in the screening: a searched candidate below the finished ones' median stops early.
    pruner = MedianStopping() if task == "node" else None
    evaluator = TrainingEvaluator(task=task, data=prepared, config=config, seeds=tuple(range(seeds)), pruner=pruner)
    with cf.ThreadPoolExecutor(max_workers=parallel) as pool:

        def seeded(recipe: TrainConfig) -> Any:
            runner = TrainingEvaluator(task, prepared, recipe)
            return lambda requests, resample: list(pool.map(lambda r: runner.score(r[0], r[1], resample), requests))

        yield (
            Trials(
                screen=PoolExecutor(pool, evaluator.score) if parallel > 1 else evaluator,
                seeds=seeded,
                train=lambda a, c, s, r: TrainingEvaluator(task, prepared, c).run(a, s, r),
            ),
            pruner,
        )


@functools.lru_cache(maxsize=4)
def _prepared(spec_json: str, kind: str, task_kind: GraphTask, split_seed: int) -> Any:
    from pydantic import TypeAdapter

    from openautoglm.adapters.graphs import GraphSource, link_split, load_graph, node_split

    spec = TypeAdapter(GraphSource).validate_json(spec_json)
    data = load_graph(spec)
    return node_split(data, split_seed) if task_kind == "node" else link_split(data, split_seed)


def prepared_graph(spec: Any, task_kind: GraphTask, split_seed: int) -> Any:
    """The split graph (a PyG ``Data``, or train/validation/test ``Data`` for links), loaded once per process."""
    return _prepared(spec.model_dump_json(), spec.kind, task_kind, split_seed)


def read_meta(spec: Any, task_kind: GraphTask = "node", split_seed: int = 0) -> MetaFeatures:
    """Load the graph and compute its meta-features; for a node task the label fields (homophily, classes) read
    the training nodes of the search's split only (``split_seed``), never validation or test labels."""
    from torch_geometric.data import Data

    from openautoglm.adapters.graphs import graph_meta, load_graph

    data = load_graph(spec)
    split = prepared_graph(spec, task_kind, split_seed) if task_kind == "node" else None
    return graph_meta(data, split if isinstance(split, Data) else None)


def save_model(
    arch_json: str, spec: Any, task_kind: GraphTask, config: TrainConfig, split_seed: int, folder: Path
) -> Path:
    """Train the chosen candidate once (seed 0) and save its weights, description and settings."""
    import json

    import torch

    from openautoglm.core.graph.candidates import candidate_from_dict
    from openautoglm.core.graph.evaluate import TrainingEvaluator

    torch.set_num_threads(1)
    arch = candidate_from_dict(json.loads(arch_json))
    data = prepared_graph(spec, task_kind, split_seed)
    trained = TrainingEvaluator(task=task_kind, data=data, config=config).run(arch, 0, keep_model=True)
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
