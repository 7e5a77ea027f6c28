"""The ``graph_search`` flow's parameters (a form in the Prefect UI, a deployment's body) and its result."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from openautoglm.adapters.graph_runner import SearchOutcome, SearchPlan
from openautoglm.adapters.graph_specs import GraphSource, PlanetoidGraph
from openautoglm.flows.runtime import RunTail
from openautoglm.usecases.graph import GraphSearch


class GraphSearchParams(GraphSearch):
    """Parameters of the ``graph_search`` flow (a form in the Prefect UI): the search's settings
    (:class:`~openautoglm.usecases.graph.GraphSearch`, declared there once) plus the graph, the output folder and
    the MLflow experiment."""

    graph: GraphSource | None = Field(default=PlanetoidGraph(), description="The graph (ignored with nasbench).")
    nasbench: str | None = Field(
        default=None, description="Search NAS-Bench-Graph's table for this dataset instead of training (cora...)."
    )
    output_dir: Path | None = Field(
        default=None,
        description="Folder of the run's report and model (default: <home>/runs/graph_search/<UTC time>-<run>).",
    )
    experiment: str = Field(default="graph_search", min_length=1, description="MLflow experiment of the run.")

    def lookup(self) -> str | None:
        return self.nasbench

    @model_validator(mode="after")
    def _check_graph(self) -> GraphSearchParams:
        if self.nasbench is None and self.graph is None:
            raise ValueError("give a graph, or nasbench=<dataset> to search the lookup table")
        if self.nasbench is not None and self.task != "node":
            raise ValueError("NAS-Bench-Graph holds node classification only")
        return self

    def graph_name(self) -> str:
        return (self.nasbench and f"nasbench:{self.nasbench}") or (self.graph.describe() if self.graph else "")


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
