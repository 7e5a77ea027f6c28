"""Feature normalisations, a choice of the trained space: ``norm(x) -> x`` on a dense feature matrix."""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from openautoglm.core.registry import Registry

FeatureNorm = Callable[[Tensor], Tensor]

#: Feature normalisations by name.
FEATURE_NORMS: Registry[FeatureNorm] = Registry("feature normalisation")


@FEATURE_NORMS.register("none", "identity")
def identity(x: Tensor) -> Tensor:
    """The features as they are."""
    return x


@FEATURE_NORMS.register("row", "normalize_features")
def row(x: Tensor) -> Tensor:
    """Each node's features divided by their sum (PyG's ``NormalizeFeatures``; rows summing to 0 kept).

    Features with negative entries (a user's standardised table) have no meaningful row sum: left as they are.
    """
    total = x.sum(dim=-1, keepdim=True).clamp(min=1e-12)
    return x / total if bool((x >= 0).all()) else x
