"""From meta-features to a search space with a prior (shared by the SDK and the flow)."""

from __future__ import annotations

from typing import Any

from openautoglm.core.graph.meta import MetaFeatures, SearchPrior, policy
from openautoglm.core.graph.ops import NASBENCH_OPS
from openautoglm.core.graph.space import SearchSpace


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
