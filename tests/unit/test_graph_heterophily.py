"""WebKB loading, leak-free meta-features, the heterophily families and the prior that orders them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from openautoglm.adapters.graphs import WebKBGraph, graph_meta, load_graph
from openautoglm.core.errors import DataSourceError
from openautoglm.core.graph.meta import meta_features
from torch_geometric.data import Data


def _write_webkb(folder: Path) -> None:
    """A 4-node WebKB folder in Geom-GCN's format: directed edges, one self-loop, one reciprocal pair."""
    folder.mkdir(parents=True)
    rows = ["node_id\tfeature\tlabel", "0\t1,0,0\t0", "1\t0,1,0\t1", "2\t0,0,1\t0", "3\t1,1,0\t1"]
    (folder / "out1_node_feature_label.txt").write_text("\n".join(rows) + "\n")
    edges = ["node_id\tnode_id", "0\t1", "1\t0", "1\t2", "2\t2", "3\t0"]
    (folder / "out1_graph_edges.txt").write_text("\n".join(edges) + "\n")
    for i in range(2):
        train = np.array([1, 1, 0, 0] if i == 0 else [0, 0, 1, 1], dtype=np.uint8)
        np.savez(folder / f"split_{i}.npz", train_mask=train, val_mask=1 - train, test_mask=np.zeros(4, np.uint8))


def test_webkb_loader_reads_features_labels_masks_and_makes_edges_undirected(tmp_path: Path) -> None:
    _write_webkb(tmp_path / "cornell")
    data = load_graph(WebKBGraph(name="cornell", root=tmp_path, split=1))
    assert data.num_nodes == 4 and data.x.tolist()[3] == [1.0, 1.0, 0.0]
    assert data.y.tolist() == [0, 1, 0, 1]
    pairs = {tuple(e) for e in data.edge_index.t().tolist()}
    assert pairs == {(0, 1), (1, 0), (1, 2), (2, 1), (0, 3), (3, 0)}  # undirected, the self-loop gone
    assert data.train_mask.tolist() == [False, False, True, True]
    with pytest.raises(DataSourceError, match="not found"):
        load_graph(WebKBGraph(name="wisconsin", root=tmp_path))
    with pytest.raises(DataSourceError, match="split_"):
        load_graph(WebKBGraph(name="cornell", root=tmp_path, split=5))


def _ring(n: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    src = np.arange(n)
    edges = np.stack([np.concatenate([src, src]), np.concatenate([(src + 1) % n, (src + 7) % n])])
    train = np.zeros(n, dtype=bool)
    train[rng.permutation(n)[: n // 2]] = True
    return edges, y, train


def test_test_labels_cannot_change_the_meta_features() -> None:
    edges, y, train = _ring()
    before = meta_features(edges, len(y), y, np.eye(len(y)), train_mask=train)
    shuffled = y.copy()
    shuffled[~train] = (shuffled[~train] + 1) % 3  # every held-out label changed
    after = meta_features(edges, len(y), shuffled, np.eye(len(y)), train_mask=train)
    assert before == after
    assert before.edge_homophily is not None and before.class_insensitive_homophily is not None
    # Without the mask the held-out labels do move them: the mask is what stops the leak.
    assert meta_features(edges, len(y), y).edge_homophily != meta_features(edges, len(y), shuffled).edge_homophily


def test_graph_meta_reads_the_training_split_only() -> None:
    edges, y, train = _ring()
    data = Data(x=torch.eye(len(y)), y=torch.as_tensor(y), edge_index=torch.as_tensor(edges))
    split = data.clone()
    split.train_mask = torch.as_tensor(train)
    moved = data.clone()
    moved.y = torch.where(torch.as_tensor(train), moved.y, (moved.y + 1) % 3)
    assert graph_meta(data, split) == graph_meta(moved, split)
    # Homophily counts only train-train edges: on two training nodes joined by one edge it is exact.
    two = meta_features(np.array([[0, 1, 2], [1, 2, 3]]), 4, np.array([0, 0, 1, 1]), train_mask=np.array([1, 1, 0, 0]))
    assert two.edge_homophily == 1.0 and two.classes == 1


def test_class_insensitive_homophily_is_zero_at_chance_and_one_when_pure() -> None:
    bipartite = meta_features(np.array([[0, 0, 1, 1], [2, 3, 2, 3]]), 4, np.array([0, 0, 1, 1]))
    assert bipartite.class_insensitive_homophily == 0.0
    cliques = meta_features(np.array([[0, 2], [1, 3]]), 4, np.array([0, 0, 1, 1]))
    assert cliques.class_insensitive_homophily == pytest.approx(1.0)  # (1 - 1/2) + (1 - 1/2) over C - 1 = 1
