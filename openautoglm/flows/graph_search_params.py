"""The ``graph_search`` flow's parameters (a form in the Prefect UI, a deployment's body) and its result."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from openautoglm.adapters.graph_runner import SearchOptions, SearchOutcome, SearchPlan
from openautoglm.adapters.graph_specs import GraphSource, PlanetoidGraph
from openautoglm.core.graph.search import SEARCHERS
from openautoglm.core.graph.trainer import TrainConfig
from openautoglm.flows.runtime import RunTail


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
        default=True,
        description="Train published recipes first, in the order the meta-features set (the MLP always; on a "
        "heterophilic graph MLP, H2GCN, GPR-GNN first; GCN, GAT, APPNP on a homophilic one; GAE for links).",
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
        description="Wall-clock budget: the search stops starting trials at 70% of it, the selection fits its seeds "
        "to what is left. None: one that follows the graph (45 s up to 200 nodes, plus 0.2 s per node above).",
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

    def options(self) -> SearchOptions:
        """The search these parameters describe (the use case ``AutoGraph`` runs too)."""
        fields = SearchOptions.__dataclass_fields__
        return SearchOptions(**{k: v for k, v in self.model_dump(exclude={"graph"}).items() if k in fields})

    def graph_name(self) -> str:
        return (self.nasbench and f"nasbench:{self.nasbench}") or (self.graph.describe() if self.graph else "")

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            lr=self.lr, weight_decay=self.weight_decay, max_epochs=self.max_epochs, patience=self.patience
        )


class GraphSearchResult(RunTail):
    """The search's outcome. ``best_*`` is the pick; ``final_*`` its score over ``final_seeds`` seeds."""

    best_arch: dict[str, Any]
    best_describe: str = ""
    best_baseline: str = Field(default="", description="The baseline's name when a baseline was picked.")
    best_kind: Literal["baseline", "searched", "tuned"] = Field(
        default="searched",
        description="What produced the pick: baseline (a published recipe, APPNP's included), searched (proposed "
        "by the search algorithm) or tuned (the HPO's candidate). A goal met 'by the search' needs searched or tuned.",
    )
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

    @classmethod
    def of(
        cls,
        outcome: SearchOutcome,
        plan: SearchPlan,
        model_path: Path | None,
        tail: dict[str, Any],
    ) -> GraphSearchResult:
        """The result of a finished search (``tail``: the run's folder, MLflow and Prefect runs, time)."""
        history, selection, final = outcome.history, outcome.selection, outcome.final
        return cls(
            best_arch=outcome.arch.as_dict(),
            best_describe=outcome.arch.describe(),
            best_baseline=outcome.baseline,
            best_kind=outcome.kind,  # type: ignore[arg-type]
            best_val=history.best.val,
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
                {"name": t.baseline, "kind": "baseline", "val": t.val, "test": t.test, "seconds": t.seconds}
                for t in history.baselines
            ],
            survivors=selection.survivors if selection is not None else [],
            select_seeds=selection.select_seeds if selection is not None else 0,
            resampled=selection.resampled if selection is not None else False,
            selection_seconds=selection.seconds if selection is not None else 0.0,
            prior=plan.describe_prior(),
            meta=plan.meta.as_dict() if plan.meta else None,
            hpo=hpo_summary(outcome),
            model_path=model_path,
            **tail,
        )

    def headline(self) -> dict[str, float | int | None]:
        """The figures pushed to the Prometheus Pushgateway."""
        return {k: getattr(self, k) for k in ("best_val", "final_test_mean", "trials", "search_seconds", "seconds")}


def hpo_summary(outcome: SearchOutcome) -> dict[str, Any] | None:
    """The tuning's best validation, trial counts, time and best values (None when there was no tuning)."""
    if outcome.hpo is None:
        return None
    hpo = outcome.hpo
    return {"val": hpo.val, "trials": len(hpo.trials), "pruned": hpo.pruned, "seconds": hpo.seconds, **hpo.params}
