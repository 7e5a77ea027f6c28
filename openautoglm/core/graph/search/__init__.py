"""Search algorithms, one file each, behind :data:`SEARCHERS` (importing this package registers them all)."""

from openautoglm.core.graph.search import evolution, random_search, rl, tpe  # noqa: F401  (registration)
from openautoglm.core.graph.search.base import (
    SEARCHERS,
    BatchEvaluator,
    History,
    Score,
    Searcher,
    Trial,
    run_search,
    search,
)

__all__ = ["SEARCHERS", "BatchEvaluator", "History", "Score", "Searcher", "Trial", "run_search", "search"]
