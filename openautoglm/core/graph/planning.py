"""From meta-features to a search space with a prior (shared by the SDK and the flow)."""

from __future__ import annotations

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
    """The trained (stack) space for a graph, its family weights from the meta-feature policy.

    The policy's operator weights apply to the families that share a name (gcn, gat, sage); appnp follows gcn
    (it smooths like gcn does).
    """
    space = StackSpace(task=task)
    prior = policy(meta, space.ops) if (meta is not None and use_prior) else None
    if prior is None:
        return space, None
    weights = dict(prior.op_weights)
    weights["appnp"] = policy(meta, ("gcn",)).op_weights["gcn"] if meta is not None else 1.0
    return space.with_prior({"op": weights}), prior
