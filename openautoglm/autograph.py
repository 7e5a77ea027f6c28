"""``AutoGraph``: the SDK face of the graph search (runs in this process; the ``graph_search`` flow runs the same
search with trials in parallel on Dask and tracks it in MLflow).

Example::

    from openautoglm import AutoGraph
    auto = AutoGraph(task="node", algo="rl", budget=20).fit("cora")   # or a PyG Data, a networkx graph,
    auto.best_arch, auto.final                                        # (nodes_df, edges_df), a GraphSource
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd
import torch
from torch_geometric.data import Data

from openautoglm.adapters.graphs import (
    KarateGraph,
    PlanetoidGraph,
    TableGraph,
    check_graph,
    from_networkx_graph,
    from_tables,
    link_split,
    load_graph,
    node_split,
)
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.graph.evaluate import TrainingEvaluator
from openautoglm.core.graph.hpo import HpoResult, tune
from openautoglm.core.graph.meta import MetaFeatures, SearchPrior, meta_features
from openautoglm.core.graph.planning import plan_space
from openautoglm.core.graph.search import SEARCHERS, History, Score, run_search
from openautoglm.core.graph.space import Architecture
from openautoglm.core.graph.trainer import TrainConfig

log = logging.getLogger(__name__)

_NAMED: dict[str, PlanetoidGraph | KarateGraph] = {
    "cora": PlanetoidGraph(name="Cora"),
    "citeseer": PlanetoidGraph(name="CiteSeer"),
    "pubmed": PlanetoidGraph(name="PubMed"),
    "karate": KarateGraph(),
}


@dataclass
class FinalScore:
    """The chosen architecture re-trained with several seeds."""

    val_mean: float
    val_std: float
    test_mean: float
    test_std: float
    seeds: int


class AutoGraph:
    """Search GNN architectures for a graph, then tune and re-evaluate the best.

    Args:
        task: ``node`` classification or ``link`` prediction.
        algo: ``rl`` (LSTM controller, REINFORCE), ``random``, ``tpe`` or ``evolution``.
        budget: Distinct architectures to train.
        seeds: Training runs per candidate during the search.
        final_seeds: Runs of the best architecture at the end (mean and std reported).
        use_prior: Bias the search by the meta-feature policy.
        transfer: Weight operators and links by NAS-Bench-Graph's top 1% (node task).
        hpo_trials: Optuna trials tuning the best architecture (0 = none).
        seed: Seed of the searcher (and of the split when the graph has none).
        config: Optimiser and early-stopping settings.
    """

    def __init__(
        self,
        task: Literal["node", "link"] = "node",
        algo: str = "rl",
        budget: int = 20,
        *,
        seeds: int = 1,
        final_seeds: int = 3,
        use_prior: bool = True,
        transfer: bool = True,
        hpo_trials: int = 0,
        seed: int = 0,
        config: TrainConfig | None = None,
    ) -> None:
        SEARCHERS.resolve(algo)
        if budget < 1:
            raise ConfigurationError("budget must be at least 1")
        self.task, self.algo, self.budget = task, algo, budget
        self.seeds, self.final_seeds = seeds, final_seeds
        self.use_prior, self.transfer, self.hpo_trials, self.seed = use_prior, transfer, hpo_trials, seed
        self.config = config or TrainConfig()
        self.meta: MetaFeatures | None = None
        self.prior: SearchPrior | None = None
        self.history: History | None = None
        self.hpo: HpoResult | None = None
        self.best_arch: Architecture | None = None
        self.final: FinalScore | None = None

    @staticmethod
    def to_data(graph: Any) -> Data:
        """A PyG ``Data`` from a name (cora, citeseer, pubmed, karate), a GraphSource, a networkx graph, a
        ``(nodes, edges)`` pair of DataFrames, or a ``Data``."""
        if isinstance(graph, Data):
            check_graph(graph, "data")
            return graph
        if isinstance(graph, str):
            if graph.lower() not in _NAMED:
                raise ConfigurationError(f"Unknown graph '{graph}'.", hint=f"use one of {sorted(_NAMED)}, or pass data")
            return load_graph(_NAMED[graph.lower()])
        if isinstance(graph, PlanetoidGraph | KarateGraph | TableGraph):
            return load_graph(graph)
        if isinstance(graph, tuple) and len(graph) == 2 and all(isinstance(g, pd.DataFrame) for g in graph):
            return from_tables(graph[0], graph[1])
        if hasattr(graph, "nodes") and hasattr(graph, "edges"):
            return from_networkx_graph(graph)
        raise ConfigurationError(f"Cannot read a graph from {type(graph).__name__}.")

    def fit(self, graph: Any) -> AutoGraph:
        """Run the search on ``graph`` (see :meth:`to_data`)."""
        torch.set_num_threads(1)
        data = self.to_data(graph)
        self.meta = meta_features(
            data.edge_index.numpy(), int(data.num_nodes), data.y.numpy() if data.y is not None else None, data.x.numpy()
        )
        space, self.prior = plan_space(self.meta if self.task == "node" else None, use_prior=self.use_prior)
        if self.prior is not None:
            log.info("search prior: %s", self.prior.describe())
        prepared = node_split(data, self.seed) if self.task == "node" else link_split(data, self.seed)
        evaluator = TrainingEvaluator(task=self.task, data=prepared, config=self.config, seeds=tuple(range(self.seeds)))
        if self.transfer and self.task == "node":
            from openautoglm.adapters.nasbench import transfer_weights

            space = space.with_prior(transfer_weights())
        searcher = SEARCHERS.resolve(self.algo)(space, seed=self.seed)

        def evaluate(archs: Sequence[Architecture]) -> list[Score]:
            return evaluator(archs)

        self.history = run_search(searcher, evaluate, self.budget)
        best, config = self.history.best.arch, self.config
        if self.hpo_trials:
            hidden = self.prior.hidden if self.prior is not None else (32, 64, 128, 256)
            self.hpo = tune(
                best,
                lambda a, c, s, r: TrainingEvaluator(self.task, prepared, c).run(a, s, r),
                base=config,
                trials=self.hpo_trials,
                seed=self.seed,
                hidden=hidden,
            )
            best, config = self.hpo.arch, self.hpo.config
        self.best_arch, self.config = best, config
        final = TrainingEvaluator(
            task=self.task, data=prepared, config=config, seeds=tuple(range(self.final_seeds))
        ).score(best)
        self.final = FinalScore(final.val, final.val_std, final.test, final.test_std, self.final_seeds)
        return self

    def leaderboard(self, n: int = 10) -> pd.DataFrame:
        """The best ``n`` trials of the search."""
        if self.history is None:
            raise ConfigurationError("call fit() first")
        return pd.DataFrame(
            [
                {
                    "trial": t.index,
                    "val": t.val,
                    "test": t.test,
                    "link": t.arch.link,
                    "ops": t.arch.ops,
                    "seconds": round(t.seconds, 2),
                }
                for t in self.history.leaderboard(n)
            ]
        )
