"""NAS-Bench-Graph (Qin et al., NeurIPS 2022 datasets track; pip ``nas-bench-graph``): lookup tables of all
26,206 architectures of its macro space on 9 datasets, read only from the installed package.

Our search space is the same macro space (4-node DAG, 9 ops), so an :class:`Architecture` maps onto its key with
``Arch(link, ops).valid_hash()``. Hidden size and other hyper-parameters are fixed by the benchmark and ignored.
The tables hold validation and test accuracy, latency and parameters as fractions.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.graph.meta import MetaFeatures
from openautoglm.core.graph.ops import NASBENCH_OPS
from openautoglm.core.graph.search.base import Score
from openautoglm.core.graph.search.surrogate import SurrogateSearcher
from openautoglm.core.graph.space import Architecture, SearchSpace

DATASETS = ("cora", "citeseer", "pubmed", "cs", "physics", "photo", "computers", "arxiv", "proteins")
PROTEINS_OPS = ("gcn", "sage", "arma", "fc", "skip")

#: Published statistics of the benchmark's graphs (PyG / OGB dataset pages and the NAS-Bench-Graph paper),
#: used as their meta-features because the graphs themselves are not shipped. Cora's agree with the ones
#: computed from ../shared/datasets (2,708 / 5,278 / 0.81). Homophily is edge homophily.
PUBLISHED: dict[str, dict[str, float]] = {
    "cora": {
        "nodes": 2708,
        "edges": 5278,
        "feature_dim": 1433,
        "classes": 7,
        "edge_homophily": 0.81,
        "feature_sparsity": 0.987,
        "clustering": 0.24,
    },
    "citeseer": {
        "nodes": 3327,
        "edges": 4552,
        "feature_dim": 3703,
        "classes": 6,
        "edge_homophily": 0.74,
        "feature_sparsity": 0.991,
        "clustering": 0.14,
    },
    "pubmed": {
        "nodes": 19717,
        "edges": 44324,
        "feature_dim": 500,
        "classes": 3,
        "edge_homophily": 0.80,
        "feature_sparsity": 0.900,
        "clustering": 0.06,
    },
    "cs": {
        "nodes": 18333,
        "edges": 81894,
        "feature_dim": 6805,
        "classes": 15,
        "edge_homophily": 0.81,
        "feature_sparsity": 0.991,
        "clustering": 0.34,
    },
    "physics": {
        "nodes": 34493,
        "edges": 247962,
        "feature_dim": 8415,
        "classes": 5,
        "edge_homophily": 0.93,
        "feature_sparsity": 0.995,
        "clustering": 0.38,
    },
    "photo": {
        "nodes": 7650,
        "edges": 119081,
        "feature_dim": 745,
        "classes": 8,
        "edge_homophily": 0.83,
        "feature_sparsity": 0.65,
        "clustering": 0.40,
    },
    "computers": {
        "nodes": 13752,
        "edges": 245861,
        "feature_dim": 767,
        "classes": 10,
        "edge_homophily": 0.78,
        "feature_sparsity": 0.65,
        "clustering": 0.34,
    },
    "arxiv": {
        "nodes": 169343,
        "edges": 1166243,
        "feature_dim": 128,
        "classes": 40,
        "edge_homophily": 0.66,
        "feature_sparsity": 0.0,
        "clustering": 0.23,
    },
    "proteins": {
        "nodes": 132534,
        "edges": 39561252,
        "feature_dim": 8,
        "classes": 2,
        "edge_homophily": 0.5,
        "feature_sparsity": 0.0,
        "clustering": 0.28,
    },
}


def published_meta(name: str) -> MetaFeatures:
    """:class:`MetaFeatures` of a benchmark dataset from :data:`PUBLISHED` (unknown fields neutral)."""
    p = PUBLISHED[name]
    nodes, edges = int(p["nodes"]), int(p["edges"])
    return MetaFeatures(
        nodes=nodes,
        edges=edges,
        density=edges / (nodes * (nodes - 1) / 2),
        degree_mean=2 * edges / nodes,
        degree_max=0,
        degree_gini=0.5,
        clustering=p["clustering"],
        components=1,
        largest_component=1.0,
        feature_dim=int(p["feature_dim"]),
        feature_sparsity=p["feature_sparsity"],
        edge_homophily=p["edge_homophily"],
        classes=int(p["classes"]),
    )


@functools.lru_cache(maxsize=9)
def table(name: str) -> dict[int, dict[str, Any]]:
    """The installed package's lookup table for ``name`` (never from a user path: it is a pickle)."""
    if name not in DATASETS:
        raise ConfigurationError(f"NAS-Bench-Graph has no dataset '{name}'", hint=f"choose from {list(DATASETS)}")
    try:
        from nas_bench_graph import light_read
    except ImportError:
        raise ConfigurationError("NAS-Bench-Graph is not installed.", hint="pip install nas-bench-graph") from None
    return dict(light_read(name))


def nasbench_space(name: str = "cora", prior: dict[str, dict[Any, float]] | None = None) -> SearchSpace:
    """The benchmark's space for ``name`` (proteins has its own op list)."""
    return SearchSpace(ops=PROTEINS_OPS if name == "proteins" else NASBENCH_OPS, prior=prior or {})


def arch_key(arch: Architecture, dataset: str) -> int:
    """The benchmark's key of an architecture."""
    from nas_bench_graph import Arch

    # Every table, proteins included, is keyed by valid_hash() over the full op list (checked: proteins' 2,021
    # keys are hit by valid_hash of its 5-op architectures; hash_arch(use_proteins=True) misses them).
    return int(Arch(list(arch.link), list(arch.ops)).valid_hash())


@dataclass(frozen=True)
class LookupEvaluator:
    """Scores architectures from the table: validation and test accuracy at zero training cost.

    An architecture the table does not hold (e.g. an isomorph the benchmark pruned) scores 0.
    """

    dataset: str

    def score(self, arch: Architecture) -> Score:
        entry = table(self.dataset).get(arch_key(arch, self.dataset))
        if entry is None:
            return Score(val=0.0, test=0.0, extra={"missing": True})
        return Score(
            val=float(entry["valid_perf"]),
            test=float(entry["perf"]),
            extra={"latency": float(entry["latency"]), "params": float(entry["para"])},
        )

    def __call__(self, archs: Sequence[Architecture]) -> list[Score]:
        return [self.score(a) for a in archs]

    def optimum(self) -> float:
        """The best test accuracy in the table."""
        return max(float(v["perf"]) for v in table(self.dataset).values())

    def best_by_validation(self) -> tuple[float, float]:
        """(validation, test) of the table's best-validation architecture."""
        best = max(table(self.dataset).values(), key=lambda v: v["valid_perf"])
        return float(best["valid_perf"]), float(best["perf"])


def _decode(key: int, ops: Sequence[str]) -> Architecture:
    from nas_bench_graph.architecture import link_list

    b = len(ops) + 1
    digits = []
    for _ in range(4):
        digits.append(key % b)
        key //= b
    return Architecture(link=tuple(link_list[key]), ops=tuple(ops[d] for d in reversed(digits)))


def top_architectures(dataset: str, n: int = 10) -> list[Architecture]:
    """The ``n`` best architectures of a dataset by validation accuracy."""
    ranked = sorted(table(dataset).items(), key=lambda kv: -kv[1]["valid_perf"])
    return [_decode(k, NASBENCH_OPS) for k, _ in ranked[:n]]


def transfer_weights(
    exclude: Sequence[str] = (), top: float = 0.01, smoothing: float = 1.0
) -> dict[str, dict[Any, float]]:
    """A prior learnt from the benchmark: how often each operator and link appears, per node, among the top
    ``top`` share of architectures (by validation) of every dataset but ``exclude`` and proteins, relative to
    uniform (Laplace-smoothed). Measured leave-one-out, this beat single warm-start architectures: rankings
    differ a lot between datasets, while operator and link preferences carry over better.
    """
    return _transfer_weights(tuple(sorted(exclude)), top, smoothing)


@functools.lru_cache(maxsize=16)
def _transfer_weights(exclude: tuple[str, ...], top: float, smoothing: float) -> dict[str, dict[Any, float]]:
    from collections import Counter

    counts: dict[str, Counter[Any]] = {f"{kind}{i}": Counter() for kind in ("op", "link") for i in range(4)}
    for name in DATASETS:
        if name in exclude or name == "proteins":
            continue
        entries = table(name)
        best = sorted(entries, key=lambda k: -entries[k]["valid_perf"])[: max(1, int(len(entries) * top))]
        for key in best:
            arch = _decode(key, NASBENCH_OPS)
            for i in range(4):
                counts[f"op{i}"][arch.ops[i]] += 1
                counts[f"link{i}"][arch.link[i]] += 1
    weights: dict[str, dict[Any, float]] = {}
    for decision, counter in counts.items():
        options: Sequence[Any] = NASBENCH_OPS if decision.startswith("op") else range(int(decision[-1]) + 1)
        total = sum(counter.values()) + smoothing * len(options)
        weights[decision] = {o: (counter[o] + smoothing) / total * len(options) for o in options}
    return weights


def transfer_prior(
    target: MetaFeatures, exclude: Sequence[str] = (), neighbours: int = 2, per_dataset: int = 5
) -> tuple[list[Architecture], list[str]]:
    """Warm-start architectures for a graph: the best ones of the most similar benchmark datasets.

    Similarity is the distance between :meth:`MetaFeatures.vector` s; ``exclude`` leaves datasets out (for
    leave-one-out evaluation). Proteins (another op list) is not used as a source.
    """
    candidates = [d for d in DATASETS if d not in exclude and d != "proteins"]
    distance = dict(zip(candidates, _meta_distances(candidates, target).tolist(), strict=True))
    nearest = sorted(candidates, key=distance.__getitem__)[:neighbours]
    archs: list[Architecture] = []
    for name in nearest:
        for arch in top_architectures(name, per_dataset):
            if arch not in archs:
                archs.append(arch)
    return archs, nearest


@functools.lru_cache(maxsize=16)
def _validation_percentiles(name: str) -> dict[int, float]:
    """Each architecture's validation-accuracy percentile in ``name``'s table (0 worst, 1 best); only the
    ``valid_perf`` column is read."""
    entries = table(name)
    keys = list(entries)
    values = np.array([float(entries[k]["valid_perf"]) for k in keys])
    ranks = values.argsort(kind="stable").argsort(kind="stable")
    return dict(zip(keys, (ranks / max(1, len(keys) - 1)).tolist(), strict=True))


def source_percentiles(keys: Sequence[int], exclude: Sequence[str] = ()) -> tuple[list[str], npt.NDArray[np.float64]]:
    """Each architecture's validation percentile on every other dataset's table: the sources' names and a
    ``(len(keys), sources)`` matrix (0.5 where a table lacks the architecture). Validation columns only;
    ``exclude`` leaves datasets out (leave-one-dataset-out), proteins (another op list) is not a source."""
    sources = [d for d in DATASETS if d not in exclude and d != "proteins"]
    if not sources:
        raise ConfigurationError("No NAS-Bench-Graph dataset is left to transfer from.")
    columns = []
    for name in sources:
        percentiles = _validation_percentiles(name)
        columns.append([percentiles.get(int(k), 0.5) for k in keys])
    return sources, np.array(columns, dtype=np.float64).T.reshape(len(keys), len(sources))


def transfer_scores(
    keys: Sequence[int], target: MetaFeatures | None, exclude: Sequence[str] = ()
) -> npt.NDArray[np.float64]:
    """A meta-conditioned prior: the :func:`source_percentiles` averaged with weights ``exp(-d / median d)`` where
    ``d`` is the distance between the datasets' meta-features (scaled as in :func:`transfer_prior`); uniform
    weights without ``target``."""
    sources, percentiles = source_percentiles(keys, exclude)
    scores: npt.NDArray[np.float64] = percentiles @ _meta_weights(sources, target)
    return scores


def _meta_distances(sources: Sequence[str], target: MetaFeatures) -> npt.NDArray[np.float64]:
    """Distances between the target's and each source's meta-feature vectors (homophily and clustering weigh
    most)."""
    scale = np.array([1, 1, 1, 1, 2, 4, 1, 1, 1], dtype=float)
    vector = target.vector()
    return np.array([np.linalg.norm((published_meta(d).vector() - vector) * scale) for d in sources])


def _meta_weights(sources: Sequence[str], target: MetaFeatures | None) -> npt.NDArray[np.float64]:
    """``exp(-d / median d)`` per source, normalised (uniform without a target)."""
    weights = np.ones(len(sources))
    if target is not None:
        distance = _meta_distances(sources, target)
        weights = np.exp(-distance / max(float(np.median(distance)), 1e-9))
    normalised: npt.NDArray[np.float64] = weights / weights.sum()
    return normalised


def transfer_pool(dataset: str | None, meta: MetaFeatures | None) -> dict[str, Any]:
    """The pool of a :class:`SurrogateSearcher` (keyword arguments of the searcher): every architecture of
    ``dataset``'s table (without one: the macro space's 26,206, as the Cora table holds them); its ``prior``, the
    :func:`transfer_scores` from every other dataset (``meta``: the target's meta-features, for the weights); and
    its ``sources``, the per-dataset percentiles, so the surrogate can learn which sources this graph agrees with."""
    keys = sorted(table(dataset or "cora"))
    sources, percentiles = source_percentiles(keys, exclude=[dataset] if dataset else [])
    return {
        "candidates": [_decode(k, NASBENCH_OPS) for k in keys],
        "prior": percentiles @ _meta_weights(sources, meta),
        "sources": percentiles,
    }


def surrogate_searcher(dataset: str, seed: int = 0, **options: Any) -> SurrogateSearcher:
    """The transfer-prior surrogate search on ``dataset``'s table, the prior learnt from every other dataset
    (its meta-features from :data:`PUBLISHED`): leave-one-dataset-out by construction."""
    pool = transfer_pool(dataset, published_meta(dataset))
    return SurrogateSearcher(nasbench_space(dataset), seed, **pool, **options)
