"""The transfer-prior surrogate search: it proposes from its pool without repeats, corrects a wrong prior with the
rewards it is told, and its prior is learnt from other datasets' validation columns only."""

from __future__ import annotations

import itertools
import statistics
from typing import Any

import numpy as np
import pytest

from openautoglm.adapters import nasbench
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.graph.search import run_search
from openautoglm.core.graph.search.base import Score
from openautoglm.core.graph.search.surrogate import SurrogateSearcher
from openautoglm.core.graph.space import Architecture, SearchSpace

OPS = ("gcn", "gat", "sage", "skip")
POOL = [Architecture(link=(0, 1, 2, 3), ops=ops) for ops in itertools.product(OPS, repeat=4)]


def reward(arch: Architecture) -> float:
    """This dataset likes gat everywhere and dislikes skip."""
    return sum({"gat": 1.0, "gcn": 0.5, "sage": 0.3, "skip": 0.0}[op] for op in arch.ops) / 4


def test_a_wrong_prior_is_corrected_by_the_rewards_and_nothing_is_proposed_twice() -> None:
    space = SearchSpace(ops=OPS)
    prior = [sum(op == "skip" for op in a.ops) / 4 for a in POOL]  # the other datasets liked skip: wrong here
    searcher = SurrogateSearcher(space, 0, candidates=POOL, prior=prior, warm=5, explore=0.0)
    history = run_search(searcher, lambda archs: [Score(val=reward(a), test=0.0) for a in archs], 40)
    proposed = [t.arch for t in history.trials]
    assert len(set(proposed)) == len(proposed) == 40
    assert history.best.arch.ops == ("gat",) * 4  # found within 40 of 256 although the prior points away
    later = [reward(t.arch) for t in history.trials[20:]]
    assert statistics.mean(later) > statistics.mean(reward(a) for a in POOL)
    with pytest.raises(ConfigurationError, match="prior scores"):
        SurrogateSearcher(space, 0, candidates=POOL, prior=prior[:3])


def test_per_source_scores_let_the_surrogate_follow_the_source_that_agrees_with_this_dataset() -> None:
    """Rewards no decision explains (one value per candidate); one source ranks like this dataset, one against it,
    and the prior (their average) says nothing: the ridge must learn which source to trust from the rewards."""
    rng = np.random.default_rng(0)
    rewards = dict(zip(POOL, rng.random(len(POOL)), strict=True))
    ranks = np.argsort(np.argsort([rewards[a] for a in POOL])) / (len(POOL) - 1)
    agreeing = np.clip(ranks + rng.normal(0, 0.05, len(POOL)), 0, 1)
    sources = np.column_stack([1 - ranks, agreeing])  # the misleading source first
    space, flat = SearchSpace(ops=OPS), np.full(len(POOL), 0.5)

    def best_rank(**kwargs: Any) -> float:
        found = []
        for seed in range(3):
            searcher = SurrogateSearcher(space, seed, candidates=POOL, prior=flat, warm=5, explore=0.0, **kwargs)
            history = run_search(searcher, lambda archs: [Score(val=rewards[a], test=0.0) for a in archs], 20)
            found.append(history.best.val)
        return float(np.mean(found))

    with_sources, without = best_rank(sources=sources), best_rank()
    assert with_sources >= sorted(rewards.values())[-3]  # one of the 3 best of 256 within 20 proposals, every seed
    assert with_sources > without
    with pytest.raises(ConfigurationError, match="source scores"):
        SurrogateSearcher(space, 0, candidates=POOL, prior=flat, sources=sources[:10])


class ValidationOnly(dict[int, dict[str, Any]]):
    """A table whose entries refuse to give up their test accuracy."""

    def __init__(self, source: dict[int, dict[str, Any]]) -> None:
        super().__init__({k: Guarded(v) for k, v in source.items()})


class Guarded(dict[str, Any]):
    def __getitem__(self, key: str) -> Any:
        if key == "perf":
            raise AssertionError("the transfer prior read a test accuracy")
        return super().__getitem__(key)


def test_the_transfer_prior_reads_validation_columns_only_and_leaves_the_target_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = nasbench.table
    read: list[str] = []

    def guarded(name: str) -> dict[int, dict[str, Any]]:
        read.append(name)
        return ValidationOnly(real(name))

    monkeypatch.setattr(nasbench, "table", guarded)
    nasbench._validation_percentiles.cache_clear()
    keys = sorted(real("cora"))[:500]
    try:
        scores = nasbench.transfer_scores(keys, nasbench.published_meta("cora"), exclude=["cora"])
        sources, per_source = nasbench.source_percentiles(keys, exclude=["cora"])
    finally:
        nasbench._validation_percentiles.cache_clear()
    assert "cora" not in read and "proteins" not in read and len(set(read)) == 7
    assert scores.shape == (500,) and 0.0 <= scores.min() <= scores.max() <= 1.0
    assert per_source.shape == (500, 7) and "cora" not in sources
    assert np.all(scores >= per_source.min(axis=1) - 1e-12) and np.all(scores <= per_source.max(axis=1) + 1e-12)


SEEDS = 3
BUDGET = 30


@pytest.mark.slow
def test_on_every_nasbench_table_the_surrogate_beats_random_picking_with_the_target_left_out() -> None:
    """All nine tables, none picked: per table the mean, over three seeds, of (surrogate's best validation - random
    search's best validation) after 30 queries, the target's table left out of the prior. Every table's mean must be
    above zero; the runs where the surrogate loses are printed (run with -s), and named in a failure. Measured
    2026-12-07: every table gains on average (+0.3 to +2.0 points); one run of 27 loses (pubmed, seed 1, -0.4)."""
    from openautoglm.core.graph.search import SEARCHERS

    gains: dict[str, list[float]] = {}
    for dataset in nasbench.DATASETS:
        evaluator, space = nasbench.LookupEvaluator(dataset), nasbench.nasbench_space(dataset)
        pool = nasbench.transfer_pool(dataset, nasbench.published_meta(dataset))  # what surrogate_searcher builds
        gains[dataset] = [
            run_search(SurrogateSearcher(space, seed, **pool), evaluator, BUDGET).best.val
            - run_search(SEARCHERS.resolve("random")(space, seed=seed), evaluator, BUDGET).best.val
            for seed in range(SEEDS)
        ]
    losses = [f"{d} seed {s}: {100 * g:+.2f}" for d, runs in gains.items() for s, g in enumerate(runs) if g < 0]
    print("\nsurrogate - random, best validation after 30 queries, points (mean of 3 seeds):")
    for dataset, runs in gains.items():
        print(f"  {dataset:<10} {100 * statistics.mean(runs):+.2f}   runs {', '.join(f'{100 * g:+.2f}' for g in runs)}")
    print(f"  loses in {len(losses)} of {SEEDS * len(gains)} runs: {'; '.join(losses) or 'none'}")
    assert set(gains) == set(nasbench.DATASETS) and len(gains) == 9
    behind = {d: round(100 * statistics.mean(runs), 2) for d, runs in gains.items() if statistics.mean(runs) <= 0}
    assert behind == {}, f"no gain on average on {behind}; losing runs: {losses}"
    assert len(losses) <= 3, f"the surrogate loses to random picking in {len(losses)} runs: {losses}"
