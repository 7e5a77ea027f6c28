"""Regularised evolution (Real et al., AAAI 2019): tournament selection, one-decision mutation, and the oldest
member (not the worst) leaves the population."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any

from openautoglm.core.graph.candidates import Space
from openautoglm.core.graph.search.base import SEARCHERS, Searcher


@SEARCHERS.register("evolution", "regularized_evolution", "regularised_evolution")
class RegularizedEvolution(Searcher):
    """Args: population (size kept), sample (tournament size)."""

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        warm_start: Sequence[Any] = (),
        population: int = 20,
        sample: int = 5,
        **_: Any,
    ) -> None:
        super().__init__(space, seed, warm_start)
        self.population_size = population
        self.sample_size = sample
        self.population: deque[tuple[Any, float]] = deque()
        self.pending = 0

    def propose(self, n: int) -> list[Any]:
        out = []
        for _ in range(n):
            if len(self.population) + self.pending < self.population_size:
                arch = self.space.sample(self.rng)  # fill the first population from the prior
            else:
                members = list(self.population)
                contenders = self.rng.sample(members, min(self.sample_size, len(members)))
                parent = max(contenders, key=lambda m: m[1])[0]
                arch = self.space.mutate(parent, self.rng)
            out.append(arch)
        self.pending += len(out)
        return out

    def tell(self, arch: Any, reward: float) -> None:
        self.pending = max(0, self.pending - 1)
        self.population.append((arch, reward))
        while len(self.population) > self.population_size:
            self.population.popleft()
