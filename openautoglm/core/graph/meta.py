"""Meta-features of a graph, and the policy that turns them into a search prior and a budget.

Everything here works on plain arrays (an ``edge_index`` of shape (2, E), labels, a feature matrix), so it runs on
graphs from any loader. Edges are treated as undirected and self-loops are ignored.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

#: Above this many nodes the clustering coefficient is estimated on a seeded sample of nodes.
CLUSTERING_SAMPLE = 20_000


@dataclass(frozen=True)
class MetaFeatures:
    """What a graph looks like. Homophily and class fields are ``None`` without labels.

    Attributes:
        nodes, edges: Counts (edges undirected, without self-loops and duplicates).
        density: ``edges / (n (n - 1) / 2)``.
        degree_mean, degree_max, degree_gini: Degree distribution (Gini 0 = all equal, 1 = one hub).
        clustering: Average local clustering coefficient (sampled above 20,000 nodes).
        components, largest_component: Connected components and the share of nodes in the largest.
        edge_homophily: Share of edges joining nodes of the same class (edges between labelled nodes; training
            nodes only when :func:`meta_features` is given the training mask).
        node_homophily: Mean over nodes of the share of neighbours in the node's class (the same edges).
        class_insensitive_homophily: Lim et al.'s measure, 0 for chance-level same-class edges whatever the
            class sizes (the same edges).
        classes, class_balance: Class count; smallest / largest class size.
        feature_dim, feature_sparsity: Feature columns; share of zero entries.
    """

    nodes: int
    edges: int
    density: float
    degree_mean: float
    degree_max: int
    degree_gini: float
    clustering: float
    components: int
    largest_component: float
    feature_dim: int
    feature_sparsity: float
    edge_homophily: float | None = None
    node_homophily: float | None = None
    class_insensitive_homophily: float | None = None
    classes: int | None = None
    class_balance: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def vector(self) -> np.ndarray:
        """Scale-free numbers for comparing graphs: logs of sizes, shares as they are."""
        return np.array(
            [
                math.log10(max(self.nodes, 1)),
                math.log10(max(self.edges, 1)),
                math.log10(max(self.degree_mean, 1e-3)),
                self.degree_gini,
                self.clustering,
                self.edge_homophily if self.edge_homophily is not None else 0.5,
                math.log10(max(self.feature_dim, 1)),
                self.feature_sparsity,
                math.log2(max(self.classes or 2, 2)),
            ],
            dtype=float,
        )


def _adjacency(edge_index: np.ndarray, nodes: int) -> sp.csr_matrix:
    src, dst = np.asarray(edge_index[0]), np.asarray(edge_index[1])
    keep = src != dst
    src, dst = src[keep], dst[keep]
    data = np.ones(2 * len(src), dtype=np.float32)
    matrix = sp.coo_matrix((data, (np.concatenate([src, dst]), np.concatenate([dst, src]))), shape=(nodes, nodes))
    matrix = matrix.tocsr()
    matrix.data[:] = 1.0  # duplicates summed by tocsr(): back to a simple graph
    return matrix


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 when all are equal)."""
    v = np.sort(np.asarray(values, dtype=float))
    if v.size == 0 or v.sum() == 0:
        return 0.0
    n = v.size
    return float((2 * np.arange(1, n + 1) - n - 1) @ v / (n * v.sum()))


def _clustering(adj: sp.csr_matrix, seed: int) -> float:
    n = adj.shape[0]
    rows = np.arange(n)
    if n > CLUSTERING_SAMPLE:
        rows = np.random.default_rng(seed).choice(n, CLUSTERING_SAMPLE, replace=False)
    sub = adj[rows]
    # Triangles through node i: sum_j (A A)_ij A_ij / 2, computed for the sampled rows only.
    paths = sub @ adj
    triangles = np.asarray(paths.multiply(sub).sum(axis=1)).ravel() / 2.0
    degree = np.asarray(sub.sum(axis=1)).ravel()
    possible = degree * (degree - 1) / 2.0
    local = np.divide(triangles, possible, out=np.zeros_like(triangles), where=possible > 0)
    return float(local.mean()) if local.size else 0.0


def meta_features(
    edge_index: np.ndarray,
    nodes: int,
    labels: np.ndarray | None = None,
    features: np.ndarray | None = None,
    seed: int = 0,
    train_mask: np.ndarray | None = None,
) -> MetaFeatures:
    """Compute :class:`MetaFeatures` (labels: int array with -1 for unknown).

    Args:
        train_mask: The training nodes of a node task. Give it whenever the graph will be scored on held-out
            nodes: the label fields (homophily, classes, balance) then read the training labels only, so the
            labels of validation and test nodes cannot steer the search (homophily comes from train-train edges).
    """
    adj = _adjacency(np.asarray(edge_index), nodes)
    degree = np.asarray(adj.sum(axis=1)).ravel()
    edges = int(adj.nnz // 2)
    count, membership = connected_components(adj, directed=False)
    largest = np.bincount(membership).max() / nodes if nodes else 0.0
    dim, sparsity = 0, 0.0
    if features is not None and features.size:
        dim = int(features.shape[1])
        sparsity = float((features == 0).mean())
    edge_h = node_h = insensitive = balance = None
    classes = None
    if labels is not None:
        y = known_labels(labels, train_mask)
        edge_h, node_h, insensitive = _homophily(adj, y)
        known = y >= 0
        counts = np.bincount(y[known]) if known.any() else np.array([])
        counts = counts[counts > 0]
        if counts.size:
            classes = int(counts.size)
            balance = float(counts.min() / counts.max())
    return MetaFeatures(
        nodes=nodes,
        edges=edges,
        density=float(edges / (nodes * (nodes - 1) / 2)) if nodes > 1 else 0.0,
        degree_mean=float(degree.mean()) if nodes else 0.0,
        degree_max=int(degree.max()) if nodes else 0,
        degree_gini=gini(degree),
        clustering=_clustering(adj, seed),
        components=int(count),
        largest_component=float(largest),
        feature_dim=dim,
        feature_sparsity=sparsity,
        edge_homophily=edge_h,
        node_homophily=node_h,
        class_insensitive_homophily=insensitive,
        classes=classes,
        class_balance=balance,
    )


def known_labels(labels: np.ndarray, train_mask: np.ndarray | None = None) -> np.ndarray:
    """``labels`` as an int array with -1 for unknown; outside ``train_mask`` every label counts as unknown."""
    y = np.asarray(labels).astype(np.int64, copy=True)
    if train_mask is not None:
        mask = np.asarray(train_mask, dtype=bool)
        if mask.shape != y.shape:
            raise ValueError(f"train_mask has shape {mask.shape}, labels {y.shape}: one flag per node")
        y[~mask] = -1
    return y


def _homophily(adj: sp.csr_matrix, y: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """Edge, node and class-insensitive homophily over the edges whose two ends have a known label.

    - edge homophily (Zhu et al., NeurIPS 2020): share of such edges joining one class;
    - node homophily (Pei et al., ICLR 2020): mean over known nodes of the share of their known neighbours in
      their class;
    - class-insensitive edge homophily (Lim et al., NeurIPS 2021):
      ``1/(C-1) sum_k max(0, h_k - |C_k|/n)``, with ``h_k`` the share of same-class ends among the known
      neighbours of class-``k`` nodes; 0 when edges are no more same-class than chance, whatever the class sizes.
    """
    known = y >= 0
    coo = adj.tocoo()
    both = known[coo.row] & known[coo.col]
    if not both.any():
        return None, None, None
    row, col = coo.row[both], coo.col[both]
    same = y[row] == y[col]
    edge_h = float(same.mean())  # each undirected edge appears twice: the share is unchanged
    nodes = adj.shape[0]
    degree = np.bincount(row, minlength=nodes).astype(float)
    same_deg = np.bincount(row, weights=same.astype(float), minlength=nodes)
    has = degree > 0
    node_h = float((same_deg[has] / degree[has]).mean())
    classes = np.unique(y[known])
    insensitive = None
    if classes.size > 1:
        share = np.bincount(y[known], minlength=int(classes.max()) + 1) / known.sum()
        total = 0.0
        for k in classes:
            members = y == k
            if degree[members].sum() > 0:
                total += max(0.0, same_deg[members].sum() / degree[members].sum() - share[k])
        insensitive = float(total / (classes.size - 1))
    return edge_h, node_h, insensitive


#: Below this (edge homophily among training nodes) a graph counts as heterophilic; at or above HIGH, homophilic.
LOW_HOMOPHILY, HIGH_HOMOPHILY = 0.5, 0.7

#: Published recipes run first, by kind of graph (names of ``stack.RECIPE_BASELINES``; the MLP is always one).
BASELINE_ORDER: dict[str, tuple[str, ...]] = {
    # H2GCN's and GPR-GNN's tables: MLP, H2GCN, GPR-GNN and SAGE lead on WebKB; GCN stays as the textbook reference;
    # GAT and APPNP average over neighbours like GCN does and are left out (20-35 points under the MLP there).
    "heterophilic": ("mlp", "h2gcn", "gprgnn", "sage", "gcn-pyg"),
    "mixed": ("gcn-pyg", "mlp", "gprgnn", "gat-pyg", "appnp-pyg"),
    "homophilic": ("gcn-pyg", "gat-pyg", "appnp-pyg", "mlp"),
    "unknown": ("gcn-pyg", "gat-pyg", "appnp-pyg", "mlp"),
}


@dataclass(frozen=True)
class SearchPrior:
    """Where to search first, and why.

    Attributes:
        op_weights: Relative sampling weight per operator or family (1.0 = neutral).
        hidden: Hidden sizes to consider.
        budget: Suggested number of trained candidates (an upper bound: the cost plan may lower it).
        reasons: Readable reasons, one per rule that fired.
        baselines: Names of the published recipes to train first, in order (``stack.RECIPE_BASELINES``).
        regime: ``heterophilic``, ``mixed``, ``homophilic`` or ``unknown`` (no training labels on edges).
    """

    op_weights: dict[str, float]
    hidden: tuple[int, ...]
    budget: int
    reasons: tuple[str, ...] = field(default_factory=tuple)
    baselines: tuple[str, ...] = BASELINE_ORDER["unknown"]
    regime: str = "unknown"

    def describe(self) -> str:
        weights = ", ".join(f"{k}={v:g}" for k, v in sorted(self.op_weights.items()) if v != 1.0) or "neutral"
        return (
            f"{self.regime} graph; baselines first: {', '.join(self.baselines)}; op weights: {weights}; "
            f"hidden {list(self.hidden)}; budget {self.budget}. " + " ".join(self.reasons)
        )


def regime(meta: MetaFeatures) -> str:
    """``heterophilic`` (edge homophily < 0.5), ``homophilic`` (>= 0.7), ``mixed``, or ``unknown``."""
    h = meta.edge_homophily
    if h is None:
        return "unknown"
    return "heterophilic" if h < LOW_HOMOPHILY else "homophilic" if h >= HIGH_HOMOPHILY else "mixed"


def policy(meta: MetaFeatures, ops: tuple[str, ...]) -> SearchPrior:
    """Rules from meta-features to a search prior (see the reasons it returns).

    Homophily is read from the edges between *training* nodes (see :func:`meta_features`'s ``train_mask``).

    - low homophily (< 0.5): ops that average a node into its neighbours (gcn, gat, appnp, cheb, arma, graph,
      gin) hurt; favour those that keep the node's own features apart (mlp/fc, skip, h2gcn, sage's root weight)
      or learn signed propagation (gprgnn); the baselines run MLP, H2GCN, GPR-GNN first;
    - high homophily (>= 0.7): favour smoothing ops (gcn, gat, sage, arma, appnp), less of fc/mlp;
    - large graphs (> 100,000 nodes): favour sage (samples neighbourhoods), avoid gat and cheb (memory);
      fewer candidates;
    - small graphs (< 5,000 nodes): wider layers allowed, more candidates;
    - high-dimensional sparse features (bag of words) on a graph not known to be heterophilic: favour gcn/sage
      smoothing (on a heterophilic graph smoothing is what hurts, so the rule does not fire there).
    """
    weights = {op: 1.0 for op in ops}
    reasons: list[str] = []
    hidden: tuple[int, ...] = (32, 64, 128)
    budget = 60

    def scale(op: str, factor: float) -> None:
        if op in weights:
            weights[op] *= factor

    kind = regime(meta)
    homophily = meta.edge_homophily
    insensitive = meta.class_insensitive_homophily
    extra = f", class-insensitive {insensitive:.2f}" if insensitive is not None else ""
    if kind == "heterophilic":
        for op in ("gcn", "gat", "appnp", "cheb", "arma", "graph", "gin"):
            scale(op, 0.3)
        for op in ("mlp", "fc", "skip", "h2gcn", "gprgnn"):
            scale(op, 3.0)
        scale("sage", 2.0)
        reasons.append(
            f"Edge homophily {homophily:.2f} among training nodes{extra} < {LOW_HOMOPHILY}: neighbours mostly differ "
            "in label, so ops that average a node into them (gcn, gat, appnp, cheb, arma) are down-weighted; "
            "mlp, h2gcn (ego/neighbour separation), gprgnn (signed propagation) and sage (root weight) are favoured "
            "and their published recipes run first."
        )
    elif kind == "homophilic":
        for op in ("gcn", "gat", "sage", "arma", "appnp"):
            scale(op, 1.5)
        scale("fc", 0.6)
        scale("mlp", 0.6)
        reasons.append(
            f"Edge homophily {homophily:.2f} among training nodes{extra} >= {HIGH_HOMOPHILY}: neighbours share labels, "
            "so favour smoothing ops; the MLP stays a baseline (it costs seconds)."
        )
    elif kind == "mixed":
        scale("gprgnn", 1.5)
        reasons.append(
            f"Edge homophily {homophily:.2f} among training nodes{extra} is mixed: GCN's recipe first, then MLP and "
            "GPR-GNN (its learnt filter fits either kind of graph)."
        )
    if meta.nodes > 100_000:
        scale("sage", 2.0)
        scale("gat", 0.3)
        scale("cheb", 0.3)
        scale("h2gcn", 0.3)  # its exact 2-hop matrix grows with the squared degree
        hidden, budget = (64, 128), 30
        reasons.append(f"{meta.nodes:,} nodes: favour sage, avoid memory-hungry gat/cheb/h2gcn, fewer candidates.")
    elif meta.nodes < 5_000:
        hidden, budget = (32, 64, 128, 256), 100
        reasons.append(f"{meta.nodes:,} nodes: small enough for wider layers and more candidates.")
    if meta.feature_dim > 500 and meta.feature_sparsity > 0.9 and kind != "heterophilic":
        scale("gcn", 1.3)
        scale("sage", 1.3)
        reasons.append(
            f"{meta.feature_dim} sparse features ({meta.feature_sparsity:.0%} zeros): bag-of-words-like "
            "input, where neighbourhood smoothing helps."
        )
    if not reasons:
        reasons.append("No rule fired: a neutral prior.")
    return SearchPrior(
        op_weights=weights,
        hidden=hidden,
        budget=budget,
        reasons=tuple(reasons),
        baselines=BASELINE_ORDER[kind],
        regime=kind,
    )
