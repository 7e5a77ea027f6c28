"""Surrogate search with a transferred prior: what other data sets say about each candidate, corrected by what this
one shows.

Over a finite pool of candidates, each with a prior score (e.g. its mean validation percentile on other data sets'
tables, weighted by how alike their meta-features are: :func:`openautoglm.adapters.nasbench.transfer_scores`):

1. **Warm start**: the first ``warm`` proposals are drawn (seeded) from the prior's top ``3 * warm`` candidates.
2. **Surrogate**: after that, a ridge regression predicts this data set's validation score from the candidate's
   one-hot decisions (operator and input of each node), its prior score and, when given, its score on each source
   data set separately, fitted on every result told so far; the next proposal is the unproposed candidate it
   ranks first (with probability ``explore``: a random one of its top 200).

The prior is the transfer; the ridge corrects it where this data set disagrees (e.g. an operator that helps here
and not elsewhere) and, with per-source columns, learns from the rewards which sources rank candidates as this
data set does (the prior's fixed meta-feature weights only guess that; RGPE-style transfer learns it too). Pure
numpy; nothing here reads test scores (the searcher is only told validation rewards).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.graph.candidates import Space
from openautoglm.core.graph.search.base import SEARCHERS, Searcher

#: Scale of the prior column against the one-hot ones (a unit of prior weighs as four matching decisions).
PRIOR_WEIGHT = 4.0


def decision_matrix(candidates: Sequence[Any]) -> npt.NDArray[np.float64]:
    """One-hot rows: for each node, its operator and its input, over the values the candidates use."""
    tokens = [
        [f"op{i}={op}" for i, op in enumerate(c.ops)] + [f"link{i}={j}" for i, j in enumerate(c.link)]
        for c in candidates
    ]
    columns = {t: n for n, t in enumerate(sorted({t for row in tokens for t in row}))}
    out = np.zeros((len(candidates), len(columns)))
    for r, row in enumerate(tokens):
        out[r, [columns[t] for t in row]] = 1.0
    return out


@SEARCHERS.register("surrogate")
class SurrogateSearcher(Searcher):
    """Proposes from a fixed pool of candidates by a prior score, then by a ridge surrogate fitted on the rewards.

    Args:
        space: The space (candidates outside it are dropped).
        seed: Seed of the warm start and the exploration.
        warm_start: Candidates to propose first.
        candidates: The pool (e.g. every architecture a benchmark table holds).
        prior: One transferred score per candidate (higher is better).
        sources: Optional ``(candidates, sources)`` scores of each candidate on each source data set (e.g. its
            validation percentile there), in [0, 1] like the one-hot columns, for the surrogate to weigh.
        warm: Proposals drawn from the prior's top before the surrogate takes over.
        ridge: L2 penalty of the surrogate.
        explore: Probability of proposing a random one of the surrogate's top 200 instead of its first.

    ``needs_pool``: a caller gives ``candidates``, ``prior`` and ``sources`` (the ``graph_search`` flow builds them from
    NAS-Bench-Graph with :func:`openautoglm.adapters.nasbench.transfer_pool`).
    """

    needs_pool = True

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        warm_start: Sequence[Any] = (),
        *,
        candidates: Sequence[Any] = (),
        prior: npt.ArrayLike = (),
        sources: npt.ArrayLike | None = None,
        warm: int = 10,
        ridge: float = 1.0,
        explore: float = 0.1,
        **_: Any,
    ) -> None:
        super().__init__(space, seed, warm_start)
        scores = np.asarray(prior, dtype=np.float64)
        if not candidates:
            raise ConfigurationError(
                "The surrogate searcher needs a pool of candidates with prior scores.",
                hint="use it on NAS-Bench-Graph's macro space: graph_search with space=dag or nasbench=<dataset>",
            )
        if len(candidates) != len(scores) or not candidates:
            raise ConfigurationError(f"{len(candidates)} candidates but {len(scores)} prior scores.")
        keep = [i for i, c in enumerate(candidates) if space.contains(c)]
        self.candidates = [candidates[i] for i in keep]
        self.prior = scores[keep]
        columns = [decision_matrix(self.candidates), PRIOR_WEIGHT * self.prior[:, None]]
        if sources is not None:
            per_source = np.asarray(sources, dtype=np.float64)
            if per_source.ndim != 2 or len(per_source) != len(scores):
                raise ConfigurationError(
                    f"{len(candidates)} candidates but source scores of shape {per_source.shape}: one row each."
                )
            columns.append(per_source[keep])
        self.features = np.hstack(columns)
        self.index = {c: i for i, c in enumerate(self.candidates)}
        self.warm, self.ridge, self.explore = warm, ridge, explore
        self.np_rng = np.random.default_rng(seed)
        top = np.argsort(-self.prior, kind="stable")[: 3 * warm]
        self.warm_queue = [int(i) for i in self.np_rng.permutation(top)[:warm]]
        self.proposed = np.zeros(len(self.candidates), dtype=bool)
        self.told: dict[int, float] = {}

    def _next(self) -> int:
        while self.warm_queue:
            i = self.warm_queue.pop(0)
            if not self.proposed[i]:
                return i
        free = np.flatnonzero(~self.proposed)
        if not len(free):
            raise ConfigurationError("The surrogate has proposed every candidate of its pool.")
        if not self.told:
            return int(free[np.argmax(self.prior[free])])
        rows = list(self.told)
        x = self.features[rows]
        y = np.array([self.told[r] for r in rows])
        mean = y.mean()
        weights = np.linalg.solve(x.T @ x + self.ridge * np.eye(x.shape[1]), x.T @ (y - mean))
        predicted = self.features[free] @ weights
        if self.np_rng.random() < self.explore:
            return int(self.np_rng.choice(free[np.argsort(-predicted, kind="stable")[:200]]))
        return int(free[int(np.argmax(predicted))])

    def propose(self, n: int) -> list[Any]:
        out = []
        for _ in range(min(n, int((~self.proposed).sum()))):
            i = self._next()
            self.proposed[i] = True
            out.append(self.candidates[i])
        return out

    def tell(self, arch: Any, reward: float) -> None:
        i = self.index.get(arch)
        if i is not None:
            self.proposed[i] = True
            self.told[i] = float(reward)
