"""Random search: independent samples from the space (prior-weighted), without repeats."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from openautoglm.core.graph.candidates import Space
from openautoglm.core.graph.search.base import SEARCHERS, Searcher


@SEARCHERS.register("random")
class RandomSearch(Searcher):
    """Samples architectures at random; never proposes one twice (until the space is exhausted)."""

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        warm_start: Sequence[Any] = (),
        use_prior: bool = True,
        **_: Any,
    ) -> None:
        super().__init__(space, seed, warm_start)
        self.use_prior = use_prior
        self.seen: set[Any] = set()

    def propose(self, n: int) -> list[Any]:
        out: list[Any] = []
        for _ in range(n):
            for _ in range(200):
                arch = self.space.sample(self.rng, self.use_prior)
                if arch not in self.seen:
                    break
            self.seen.add(arch)
            out.append(arch)
        return out

    def tell(self, arch: Any, reward: float) -> None:
        self.seen.add(arch)
