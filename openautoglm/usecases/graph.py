"""The graph search use case: its one settings model, :class:`GraphSearch`, and its one function,
:func:`search_graph`.

``GraphSearch`` is torch-free (the catalogue imports it to draw the stage's form without loading torch or PyG):
the search algorithms, ``TrainConfig`` and ``SearchOptions`` are imported where they are built. The
``graph_search`` flow's parameters extend it (adding the graph, the output folder and the experiment), the
``graph-search`` stage's parameters are it, and ``AutoGraph(**settings)`` validates its keyword arguments into it.
All three call :func:`search_graph`; only where the trials run differs (threads of this process for the SDK,
``train-architecture`` task runs for the flow and the stage), given as ``Trials``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from openautoglm.core.errors import ConfigurationError, OpenAutoGLMError

if TYPE_CHECKING:
    from openautoglm.adapters.graph_runner import SearchOptions, SearchOutcome, SearchPlan, Trials
    from openautoglm.core.graph.meta import MetaFeatures
    from openautoglm.core.graph.search import Trial
    from openautoglm.core.graph.trainer import TrainConfig


class GraphSearch(BaseModel):
    """What to search and how: the searcher, the budget, the seeds, the selection, the tuning, the training."""

    model_config = ConfigDict(extra="forbid")

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
    lr: float = Field(
        default=0.01, gt=0, description="Learning rate of candidates without their own recipe (DAG candidates)."
    )
    weight_decay: float = Field(
        default=5e-4, ge=0, description="Weight decay of candidates without their own recipe (DAG candidates)."
    )
    max_epochs: int = Field(
        default=300, ge=1, description="Most training epochs of any candidate (an upper bound on every recipe)."
    )
    patience: int = Field(
        default=20, ge=1, description="Evaluations without a better validation score before a training run stops."
    )
    split_seed: int = Field(default=0, description="Seed of the node or link split (when the graph has none).")
    seed: int = Field(default=0, description="Seed of the search algorithm.")

    def lookup(self) -> str | None:
        """The NAS-Bench-Graph dataset whose table is searched instead of training (the flow's ``nasbench``)."""
        return None

    @model_validator(mode="after")
    def _check_searcher(self) -> GraphSearch:
        from openautoglm.core.graph.search import SEARCHERS  # torch: only when a model is validated

        if getattr(SEARCHERS.resolve(self.algo), "needs_pool", False) and (
            self.task != "node" or (self.space != "dag" and self.lookup() is None)
        ):
            raise ValueError(f"algo {self.algo} searches NAS-Bench-Graph's macro space: use space=dag or nasbench=")
        return self

    def options(self) -> SearchOptions:
        """The search these settings describe, as the runner takes it."""
        from openautoglm.adapters.graph_runner import SearchOptions

        fields = SearchOptions.__dataclass_fields__
        given = {k: getattr(self, k) for k in type(self).model_fields if k in fields}
        return SearchOptions(**given | {"nasbench": self.lookup()})

    def train_config(self) -> TrainConfig:
        """The optimiser and early-stopping settings of candidates without their own recipe."""
        from openautoglm.core.graph.trainer import TrainConfig

        return TrainConfig(
            lr=self.lr, weight_decay=self.weight_decay, max_epochs=self.max_epochs, patience=self.patience
        )


def graph_settings(**settings: Any) -> GraphSearch:
    """``settings`` validated into :class:`GraphSearch` (what ``AutoGraph`` takes as keyword arguments); a wrong
    value raises :class:`ConfigurationError` naming the field."""
    try:
        return GraphSearch.model_validate(settings)
    except ValidationError as error:
        first = error.errors()[0]
        raised = first.get("ctx", {}).get("error")
        if isinstance(raised, OpenAutoGLMError):  # an unknown algo: the registry's error lists the choices
            raise raised from None
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigurationError(f"{where}: {first['msg']}", hint="see GraphSearch's fields") from None


def search_graph(
    settings: GraphSearch,
    meta: MetaFeatures | None,
    trials: Trials,
    *,
    config: TrainConfig | None = None,
    on_trial: Callable[[Trial], None] | None = None,
    on_plan: Callable[[SearchPlan], None] | None = None,
    started: float | None = None,
) -> tuple[SearchPlan, SearchOutcome]:
    """Plan the space from the graph's meta-features, then search (baselines first), tune and select robustly.

    Args:
        settings: The search's settings (a flow's parameters or a stage's are a ``GraphSearch`` too).
        meta: The graph's meta-features (None: no prior from the graph, e.g. a lookup table without them).
        trials: Where the trials run (threads of this process, or task runs of a flow).
        config: The training recipe of candidates without their own (default: ``settings.train_config()``).
        on_trial: Called with each finished screening trial (the flow logs it to MLflow).
        on_plan: Called with the plan before the search starts (the callers log its prior).
        started: ``time.monotonic()`` when the run began: the time budget counts from it.

    Returns:
        The plan (space, prior, baselines, cost) and the outcome (every trial, the selection, the pick).
    """
    from openautoglm.adapters.graph_runner import plan_search, run_graph_search

    options = settings.options()
    plan = plan_search(options, meta)
    if on_plan is not None:
        on_plan(plan)
    recipe = config if config is not None else settings.train_config()
    outcome = run_graph_search(options, plan, recipe, trials, on_trial=on_trial, started=started)
    return plan, outcome


def describe_pick(outcome: SearchOutcome) -> dict[str, Any]:
    """The figures a stage reports for the pick (validation, test over the final seeds, what it is)."""
    return {
        "best_val": outcome.history.best.val,
        "final_test_mean": outcome.final.test,
        "final_test_std": outcome.final.test_std,
        "trials": len(outcome.history.trials),
        "best": outcome.arch.describe() or outcome.baseline,
    }
