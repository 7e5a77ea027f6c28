"""Search algorithms, one file each, behind :data:`SEARCHERS` (importing this package registers them all)."""

from openautoglm.core.graph.search import evolution, random_search, rl, surrogate, tpe  # noqa: F401  (registration)
from openautoglm.core.graph.search.base import (
    SEARCHERS,
    BatchEvaluator,
    BatchExecutor,
    Executor,
    History,
    PoolExecutor,
    Score,
    Searcher,
    Trial,
    TrialLostError,
    run_search,
    search,
)

__all__ = [
    "SEARCHERS",
    "BatchEvaluator",
    "BatchExecutor",
    "Executor",
    "History",
    "PoolExecutor",
    "Score",
    "Searcher",
    "Trial",
    "TrialLostError",
    "run_search",
    "search",
]
