"""From meta-features to a search space with a prior (shared by the SDK and the flow)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from openautoglm.core.graph.meta import MetaFeatures, SearchPrior, policy
from openautoglm.core.graph.ops import NASBENCH_OPS
from openautoglm.core.graph.space import SearchSpace
from openautoglm.core.graph.stack import StackSpace


def plan_space(
    meta: MetaFeatures | None,
    *,
    use_prior: bool = True,
    ops: tuple[str, ...] = NASBENCH_OPS,
    hidden: tuple[int, ...] | None = None,
) -> tuple[SearchSpace, SearchPrior | None]:
    """The space to search and the prior chosen for the graph (``None`` without meta-features or prior)."""
    prior = policy(meta, ops) if (meta is not None and use_prior) else None
    weights: dict[str, dict[Any, float]] = {}
    if prior is not None:
        weights["op"] = dict(prior.op_weights)
    # Width stays fixed while architectures are compared; tuning it (over prior.hidden) is the HPO step's job.
    return SearchSpace(ops=ops, hidden=hidden or (64,), prior=weights), prior


def plan_stack_space(
    meta: MetaFeatures | None, *, task: str = "node", use_prior: bool = True
) -> tuple[StackSpace, SearchPrior | None]:
    """The trained (stack) space for a graph, its family weights from the meta-feature policy (which also orders
    the published recipes the search trains first: ``prior.baselines``)."""
    space = StackSpace(task=task)
    prior = policy(meta, space.ops) if (meta is not None and use_prior) else None
    if prior is None:
        return space, None
    return space.with_prior({"op": dict(prior.op_weights)}), prior


#: The default time budget: this many seconds, plus PER_NODE_S for every node above BASE_NODES (Cornell's 183
#: nodes get 45 s, Wisconsin's 251 get 55 s, Cora's 2,708 get 547 s).
BASE_S, BASE_NODES, PER_NODE_S = 45.0, 200, 0.2


@dataclass(frozen=True)
class CostPlan:
    """How much search a graph gets: a wall-clock budget and a candidate budget, with the reasons."""

    time_budget_s: float | None
    budget: int
    reasons: tuple[str, ...]


def plan_cost(
    meta: MetaFeatures | None, *, budget: int, time_budget_s: float | None, prior: SearchPrior | None
) -> CostPlan:
    """The search's cost for a graph: the caller's time budget, else one that grows with the node count (a small
    graph gets a small search); the candidate budget capped by the prior's (``prior.budget``). The selection then
    fits its survivors and seeds into what is left, by each candidate's measured cost (``selection.fit_selection``),
    and the screening stops searched candidates that fall below the median (``pruning.MedianStopping``)."""
    reasons: list[str] = []
    if prior is not None and prior.budget < budget:
        reasons.append(f"candidate budget {budget} capped at the prior's {prior.budget}")
        budget = prior.budget
    if time_budget_s is None and meta is not None:
        time_budget_s = BASE_S + PER_NODE_S * max(0, meta.nodes - BASE_NODES)
        reasons.append(
            f"time budget {time_budget_s:.0f} s for {meta.nodes:,} nodes ({BASE_S:.0f} s + {PER_NODE_S} s per node "
            f"above {BASE_NODES}); survivors and seeds fitted to the time left by measured cost"
        )
    return CostPlan(time_budget_s=time_budget_s, budget=budget, reasons=tuple(reasons))
