"""WebKB loading, leak-free meta-features, the heterophily families and the prior that orders them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch_geometric.data import Data

from openautoglm.adapters.graphs import WebKBGraph, graph_meta, load_graph
from openautoglm.core.errors import DataSourceError
from openautoglm.core.graph.meta import meta_features


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


# --- the families, each against a hand-computed reference on a tiny graph ---------------------------------------

PATH = torch.tensor([[0, 1, 2], [1, 2, 3]])  # the path 0-1-2-3 (made undirected by the operators)


def _sym(matrix: np.ndarray) -> np.ndarray:
    degree = matrix.sum(axis=1)
    inv = np.where(degree > 0, degree, 1.0) ** -0.5 * (degree > 0)
    return inv[:, None] * matrix * inv[None, :]


def test_gpr_propagation_matches_the_dense_formula_and_its_gammas_escape_weight_decay() -> None:
    from openautoglm.core.graph.gprgnn import GPRProp
    from openautoglm.core.graph.stack import GPRGNN_PAPER
    from openautoglm.core.graph.trainer import TrainConfig, optimiser_for

    prop = GPRProp(hops=2, alpha=0.1, dropout=0.0).eval()
    assert prop.gammas.tolist() == pytest.approx([0.1, 0.09, 0.81])  # PPR start: alpha (1-alpha)^k, (1-alpha)^K
    with torch.no_grad():
        prop.gammas.copy_(torch.tensor([0.5, -1.0, 0.25]))  # signed, as learning may make them
    h = torch.randn(4, 3)
    a = np.zeros((4, 4))
    for i in range(3):
        a[i, i + 1] = a[i + 1, i] = 1
    a_hat = _sym(a + np.eye(4))
    expected = 0.5 * h.numpy() - 1.0 * a_hat @ h.numpy() + 0.25 * a_hat @ a_hat @ h.numpy()
    assert prop(h, PATH).detach().numpy() == pytest.approx(expected, abs=1e-5)
    model = GPRGNN_PAPER.build(3, 2)
    groups = optimiser_for(model, TrainConfig(weight_decay=5e-4)).param_groups
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0]
    assert groups[1]["params"][0] is model.propagation.gammas


def test_h2gcn_keeps_ego_one_hop_and_two_hop_apart_as_the_paper_computes() -> None:
    from openautoglm.core.graph.h2gcn import H2GCN, h2gcn_adjacencies

    a1, a2 = (m.toarray() for m in h2gcn_adjacencies(PATH, 4))
    one = np.zeros((4, 4))
    for i in range(3):
        one[i, i + 1] = one[i + 1, i] = 1
    two = np.zeros((4, 4))
    two[0, 2] = two[2, 0] = two[1, 3] = two[3, 1] = 1  # exactly two hops: no self, no 1-hop pair
    assert a1 == pytest.approx(_sym(one)) and a2 == pytest.approx(_sym(two))
    model = H2GCN(5, 3, 2, rounds=2, in_dropout=0.0, dropout=0.0).eval()
    x = torch.randn(4, 5)
    r0 = np.maximum(x.numpy() @ model.embed.weight.detach().numpy().T, 0)
    r1 = np.concatenate([a1 @ r0, a2 @ r0], axis=1)
    r2 = np.concatenate([a1 @ r1, a2 @ r1], axis=1)
    combined = np.concatenate([r0, r1, r2], axis=1)  # 3 + 6 + 12 = 3 (2^3 - 1) columns
    w, b = model.classify.weight.detach().numpy(), model.classify.bias.detach().numpy()
    assert model(x, PATH).detach().numpy() == pytest.approx(combined @ w.T + b, abs=1e-5)


def test_the_mlp_family_ignores_the_edges() -> None:
    from openautoglm.core.graph.stack import MLP

    model = MLP.build(5, 3).eval()
    x = torch.randn(4, 5)
    first, last = model.hidden[0].linear, model.last.linear
    expected = last(torch.relu(first(x)))
    assert torch.allclose(model(x, PATH), expected)
    assert torch.allclose(model(x, torch.empty(2, 0, dtype=torch.long)), expected)


def test_every_published_recipe_is_in_the_default_space_and_trains() -> None:
    from openautoglm.core.graph.stack import RECIPE_BASELINES, StackSpace
    from openautoglm.core.graph.trainer import TrainConfig, train_node_classifier

    space = StackSpace()
    edges, y, train = _ring()
    data = Data(x=torch.eye(len(y)), y=torch.as_tensor(y), edge_index=torch.as_tensor(edges))
    data.train_mask, data.val_mask, data.test_mask = (
        torch.as_tensor(train),
        ~torch.as_tensor(train),
        ~torch.as_tensor(train),
    )
    for name, arch in RECIPE_BASELINES.items():
        if name == "gae":
            continue
        assert space.contains(arch), name
        assert space.decode(space.encode(arch)) == arch
        result = train_node_classifier(arch, data, TrainConfig(max_epochs=3), seed=0)
        assert result.epochs == 3


# --- the prior: which families and baselines come first, and why -------------------------------------------------


def _planted(heterophilic: bool, n: int = 300, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A planted partition: 90% of edges join different classes (heterophilic) or the same class (homophilic)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    edges = []
    for a in range(n):
        for _ in range(3):
            same = rng.random() >= 0.9 if heterophilic else rng.random() < 0.9
            pool = np.flatnonzero((y == y[a]) == same)
            edges.append((a, int(rng.choice(pool[pool != a]))))
    return np.array(edges).T, y


@pytest.mark.parametrize("heterophilic", [True, False])
def test_the_prior_puts_the_heterophily_families_first_only_on_a_heterophilic_graph(heterophilic: bool) -> None:
    from openautoglm.adapters.graph_runner import SearchOptions, plan_search
    from openautoglm.core.graph.meta import policy
    from openautoglm.core.graph.stack import StackSpace

    edges, y = _planted(heterophilic)
    words = (np.random.default_rng(1).random((len(y), 800)) < 0.02).astype(np.float32)  # bag-of-words-like
    train = np.arange(len(y)) % 2 == 0
    meta = meta_features(edges, len(y), y, words, train_mask=train)
    prior = policy(meta, StackSpace().ops)
    w = prior.op_weights
    plan = plan_search(SearchOptions(), meta)
    names = [b.name for b in plan.baselines]
    assert names == list(prior.baselines) and "mlp" in names  # the MLP is always a baseline
    assert all(arch.name for arch in plan.baselines)
    if heterophilic:
        assert meta.edge_homophily is not None and meta.edge_homophily < 0.2
        assert names[:3] == ["mlp", "h2gcn", "gprgnn"] and "gat-pyg" not in names
        assert min(w["mlp"], w["h2gcn"], w["gprgnn"]) > max(w["gcn"], w["gat"], w["appnp"])
        assert w["gat"] < 1  # GAT averages over neighbours too: not favoured on heterophily
        assert "bag-of-words" not in prior.describe()  # smoothing is what hurts here
        assert "heterophilic graph; baselines first: mlp, h2gcn, gprgnn" in plan.describe_prior()
    else:
        assert meta.edge_homophily is not None and meta.edge_homophily > 0.8
        assert names[0] == "gcn-pyg" and names.index("mlp") > 0 and "h2gcn" not in names
        assert w["gcn"] > w["mlp"] and w["h2gcn"] <= w["gcn"]
        assert "bag-of-words" in prior.describe()


def test_a_small_graph_gets_a_small_search_and_the_selection_fits_the_time_left() -> None:
    from openautoglm.core.graph.planning import plan_cost
    from openautoglm.core.graph.search.base import History, Trial
    from openautoglm.core.graph.selection import fit_selection

    def meta(nodes: int) -> object:
        return meta_features(np.array([[0], [1]]), nodes)

    small = plan_cost(meta(183), budget=20, time_budget_s=None, prior=None)  # type: ignore[arg-type]
    cora = plan_cost(meta(2708), budget=20, time_budget_s=None, prior=None)  # type: ignore[arg-type]
    assert small.time_budget_s == 45 and cora.time_budget_s is not None and 500 < cora.time_budget_s <= 600
    assert plan_cost(meta(183), budget=20, time_budget_s=10, prior=None).time_budget_s == 10  # type: ignore[arg-type]
    history = History(
        trials=[
            Trial(0, 0, "mlp", val=0.80, test=0, seconds=1.0, seeds=(0,), baseline="mlp"),
            Trial(1, 0, "gcn", val=0.50, test=0, seconds=1.0, seeds=(0,), baseline="gcn-pyg"),
            *(Trial(i, 0, f"s{i}", val=0.79, test=0, seconds=2.0, seeds=(0,)) for i in range(2, 8)),
        ]
    )
    roomy = fit_selection(history, 1_000.0, survivors=4, select_seeds=5, report_seeds=10)
    assert (roomy.survivors, roomy.select_seeds, roomy.report_seeds) == (4, 5, 10)
    assert roomy.dropped == ("gcn-pyg",)  # 30 points under the best: it cannot catch up
    tight = fit_selection(history, 12.0, survivors=4, select_seeds=5, report_seeds=10)
    assert tight.survivors < 4 and tight.select_seeds <= 5
    assert (1.0 + 2.0 * tight.survivors) * tight.select_seeds + 2.0 * tight.report_seeds <= 12.0
    unclocked = fit_selection(history, None, survivors=4, select_seeds=5, report_seeds=10)
    assert unclocked.dropped == () and unclocked.select_seeds == 5


def test_median_stopping_cuts_a_candidate_below_the_finished_ones() -> None:
    from openautoglm.core.graph.pruning import MedianStopping

    pruner = MedianStopping(warmup=5, min_finished=3)
    for level in (0.6, 0.7, 0.8):
        report, curve = pruner.reporter()
        assert not any(report(epoch, level) for epoch in range(1, 21))
        pruner.finish(curve)
    weak, _ = pruner.reporter()
    assert not weak(4, 0.1)  # inside the warm-up
    assert weak(5, 0.1) and pruner.stopped == 1
    strong, _ = pruner.reporter()
    assert not any(strong(epoch, 0.9) for epoch in range(1, 21))


def test_the_selection_says_what_produced_the_pick() -> None:
    from openautoglm.core.graph.search.base import History, Score, Trial
    from openautoglm.core.graph.selection import select
    from openautoglm.core.graph.stack import MLP, StackArch

    searched, tuned = StackArch(widths=(32,)), StackArch(widths=(128,))
    level = {MLP: 0.7, searched: 0.8, tuned: 0.9}

    def evaluate(requests: object, resample: bool) -> list[Score]:
        out = []
        for arch, seeds in requests:  # type: ignore[attr-defined]
            vals = tuple(level[arch] for _ in seeds)
            out.append(Score(val=vals[0], test=0.5, seeds=seeds, vals=vals, tests=tuple(0.5 for _ in seeds)))
        return out

    history = History(
        trials=[
            Trial(0, 0, MLP, val=0.7, test=0.5, seeds=(0,), vals=(0.7,), tests=(0.5,), baseline="mlp"),
            Trial(1, 0, searched, val=0.8, test=0.5, seeds=(0,), vals=(0.8,), tests=(0.5,)),
        ]
    )
    assert select(history, evaluate, select_seeds=2, report_seeds=2).kind == "searched"
    picked = select(history, evaluate, select_seeds=2, report_seeds=2, extra=[tuned])
    assert picked.kind == "tuned" and {row["kind"] for row in picked.survivors} == {"baseline", "searched", "tuned"}
    level[MLP] = 0.95
    assert select(history, evaluate, select_seeds=2, report_seeds=2).kind == "baseline"
