"""``AutoGraph``: the SDK face of the graph search (runs in this process; the ``graph_search`` flow runs the same
search with trials in parallel on Dask and tracks it in MLflow).

Example::

    from openautoglm import AutoGraph
    auto = AutoGraph(task="node", algo="rl", budget=20).fit("cora")   # or a PyG Data, a networkx graph,
    auto.best_arch, auto.final                                        # (nodes_df, edges_df), a GraphSource
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd
import torch
from torch_geometric.data import Data

from openautoglm.adapters.graph_runner import SearchPlan, in_process_trials
from openautoglm.adapters.graph_specs import named_graph
from openautoglm.adapters.graphs import (
    KarateGraph,
    PlanetoidGraph,
    TableGraph,
    WebKBGraph,
    check_graph,
    from_networkx_graph,
    from_tables,
    graph_meta,
    link_split,
    load_graph,
    node_split,
)
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.graph.candidates import Candidate
from openautoglm.core.graph.hpo import HpoResult
from openautoglm.core.graph.meta import MetaFeatures, SearchPrior
from openautoglm.core.graph.search import History
from openautoglm.core.graph.selection import Selection
from openautoglm.core.graph.trainer import TrainConfig
from openautoglm.usecases.graph import graph_settings, search_graph

log = logging.getLogger(__name__)

#: The settings ``AutoGraph`` also takes by position, in this order (the rest by name).
_POSITIONAL = ("task", "algo", "budget")


@dataclass
class FinalScore:
    """The chosen architecture re-trained with several seeds."""

    val_mean: float
    val_std: float
    test_mean: float
    test_std: float
    seeds: int


class AutoGraph:
    """Search GNN candidates for a graph, baselines first, then pick robustly and report over several seeds.

    Takes the fields of :class:`~openautoglm.usecases.graph.GraphSearch` as keyword arguments (``task``, ``algo``
    and ``budget`` also by position), validated into it: a wrong value raises ``ConfigurationError``.

    Args:
        task: ``node`` classification or ``link`` prediction.
        algo: ``rl`` (LSTM controller, REINFORCE), ``random``, ``tpe`` or ``evolution``.
        budget: Distinct candidates to train, the baselines included.
        space: ``stack`` (layer stacks with per-family recipes) or ``dag`` (NAS-Bench-Graph's macro space).
        baselines: Train published recipes first, in the order the meta-features set (the MLP always; MLP, H2GCN,
            GPR-GNN first on a heterophilic graph; GCN, GAT, APPNP on a homophilic one; GAE for links); they stay
            on the board, and a pick among them is reported as ``kind == "baseline"``.
        parallel: Trials in flight at once (threads of this process).
        seeds: Training runs per candidate during the screening.
        survivors, select_seeds: Best screened candidates (and every baseline) re-trained with ``select_seeds``
            seeds; the pick is the best mean validation.
        resample: Node task: score the survivors on ``select_seeds`` folds (training nodes redrawn from the
            labelled non-test nodes, validation on the rest) rather than on the fixed split; the report stays on it.
        final_seeds: Seeds the pick is reported over (test at each seed's best-validation epoch).
        time_budget_s: Wall-clock budget (the search stops starting trials at 70% of it); None: one that follows
            the graph's size (45 s up to 200 nodes, plus 0.2 s per node above).
        use_prior: Bias the search by the meta-feature policy.
        transfer: Weight operators and links by NAS-Bench-Graph's top 1% (node task, dag space).
        hpo_trials: Optuna trials tuning the best screened candidate (0 = none); the tuned one joins the survivors.
        seed: Seed of the searcher (and of the split when the graph has none and ``split_seed`` is not given).
        lr, weight_decay, max_epochs, patience, split_seed, hpo_timeout_s: As in ``GraphSearch``.
        config: Optimiser and early-stopping settings, in place of ``lr``... (stack candidates bring their own
            recipe; ``max_epochs`` stays an upper bound).
    """

    def __init__(self, *positional: Any, config: TrainConfig | None = None, **settings: Any) -> None:
        if len(positional) > len(_POSITIONAL):
            raise ConfigurationError(
                f"AutoGraph takes at most {len(_POSITIONAL)} positional arguments ({', '.join(_POSITIONAL)}).",
                hint="give the other settings by name",
            )
        given = dict(zip(_POSITIONAL, positional, strict=False))
        if twice := sorted(given.keys() & settings.keys()):
            raise ConfigurationError(f"AutoGraph got {', '.join(twice)} both by position and by name.")
        # The SDK runs trials on threads of this process: one unless asked (the flow keeps two in flight).
        self.settings = graph_settings(**{"parallel": 1, **given, **settings})
        s = self.settings
        self.task, self.algo, self.budget, self.space, self.parallel = s.task, s.algo, s.budget, s.space, s.parallel
        self.use_baselines, self.survivors, self.select_seeds = s.baselines, s.survivors, s.select_seeds
        self.seeds, self.final_seeds, self.time_budget_s = s.seeds, s.final_seeds, s.time_budget_s
        self.resample = s.resample
        self.use_prior, self.transfer, self.hpo_trials, self.seed = s.use_prior, s.transfer, s.hpo_trials, s.seed
        # The split follows ``seed`` unless ``split_seed`` is given (the SDK's split seed before the one model).
        self.split_seed = s.split_seed if "split_seed" in s.model_fields_set else s.seed
        self.config = config or s.train_config()
        self.options = s.options()
        self.meta: MetaFeatures | None = None
        self.prior: SearchPrior | None = None
        self.history: History | None = None
        self.hpo: HpoResult | None = None
        self.selection: Selection | None = None
        self.best_arch: Candidate | None = None
        self.kind: str = ""  # what produced the pick: baseline, searched or tuned
        self.final: FinalScore | None = None
        self.plan: SearchPlan | None = None
        self.pruned = 0  # searched candidates the screening's median stopping cut short

    @staticmethod
    def to_data(graph: Any) -> Data:
        """A PyG ``Data`` from a name (cora, citeseer, pubmed, karate; cornell, texas, wisconsin: Geom-GCN split
        0), a GraphSource, a networkx graph, a ``(nodes, edges)`` pair of DataFrames, or a ``Data``."""
        if isinstance(graph, Data):
            check_graph(graph, "data")
            return graph
        if isinstance(graph, str):
            return load_graph(named_graph(graph))  # one table of names with the CLI (graph_specs.NAMED_GRAPHS)
        if isinstance(graph, PlanetoidGraph | KarateGraph | WebKBGraph | TableGraph):
            return load_graph(graph)
        if isinstance(graph, tuple) and len(graph) == 2 and all(isinstance(g, pd.DataFrame) for g in graph):
            return from_tables(graph[0], graph[1])
        if hasattr(graph, "nodes") and hasattr(graph, "edges"):
            return from_networkx_graph(graph)
        raise ConfigurationError(f"Cannot read a graph from {type(graph).__name__}.")

    def fit(self, graph: Any) -> AutoGraph:
        """Run the search on ``graph`` (see :meth:`to_data`), trials on ``parallel`` threads of this process."""
        torch.set_num_threads(1)
        started = time.monotonic()
        data = self.to_data(graph)
        prepared = node_split(data, self.split_seed) if self.task == "node" else link_split(data, self.split_seed)
        self.meta = graph_meta(data, prepared if isinstance(prepared, Data) else None)
        with in_process_trials(self.task, prepared, self.config, self.seeds, self.parallel) as (trials, pruner):
            plan, outcome = search_graph(
                self.settings,
                self.meta,
                trials,
                config=self.config,
                on_plan=lambda p: log.info("search prior: %s", p.describe_prior()),
                started=started,
            )
        self.prior, self.plan = plan.prior, plan
        self.history, self.hpo, self.selection = outcome.history, outcome.hpo, outcome.selection
        self.config, self.best_arch, self.kind = outcome.config, outcome.arch, outcome.kind
        self.pruned = pruner.stopped if pruner is not None else 0
        log.info("pick (%s): %s", self.kind, outcome.arch.describe())
        final = outcome.final
        self.final = FinalScore(final.val, final.val_std, final.test, final.test_std, len(final.seeds))
        return self

    def leaderboard(self, n: int = 10) -> pd.DataFrame:
        """The best ``n`` trials of the search."""
        if self.history is None:
            raise ConfigurationError("call fit() first")
        rows = self.history.leaderboard(n, with_baselines=True)  # baselines stay on the board
        return pd.DataFrame(
            [
                {
                    "trial": t.index,
                    "baseline": t.baseline,
                    "kind": "baseline" if t.baseline else "searched",
                    "candidate": t.arch.describe(),
                    "val": t.val,
                    "test": t.test,
                    "seconds": round(t.seconds, 2),
                }
                for t in rows
            ]
        )
