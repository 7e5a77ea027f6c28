"""Meta-features, ops, architectures, the space, the searchers, loaders and the trainer (no server)."""

from __future__ import annotations

import random
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.data import Data

from openautoglm.adapters.graphs import (
    KarateGraph,
    from_networkx_graph,
    from_tables,
    link_split,
    load_graph,
    node_split,
)
from openautoglm.adapters.nasbench import (
    LookupEvaluator,
    arch_key,
    published_meta,
    table,
    top_architectures,
    transfer_prior,
)
from openautoglm.core.errors import ConfigurationError, DataSourceError
from openautoglm.core.graph.hpo import tune
from openautoglm.core.graph.meta import gini, meta_features, policy
from openautoglm.core.graph.ops import NASBENCH_OPS, OPS
from openautoglm.core.graph.search import SEARCHERS, Score, run_search, search
from openautoglm.core.graph.space import Architecture, DagNet, SearchSpace, sparse_features
from openautoglm.core.graph.trainer import TrainConfig, hits_at_k, train_link_predictor, train_node_classifier

torch.set_num_threads(1)


def two_cliques(size: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Two cliques joined by one edge; each clique is one class."""
    edges = [(a, b) for block in (0, size) for a in range(block, block + size) for b in range(a + 1, block + size)]
    edges.append((0, size))
    return np.array(edges).T, np.array([0] * size + [1] * size)


def test_meta_features_of_graphs_with_known_answers() -> None:
    edge_index, y = two_cliques()
    meta = meta_features(edge_index, 10, y, np.eye(10))
    assert meta.edges == 21 and meta.components == 1
    assert meta.edge_homophily == pytest.approx(20 / 21)
    assert meta.classes == 2 and meta.class_balance == 1.0
    assert meta.feature_dim == 10 and meta.feature_sparsity == pytest.approx(0.9)
    triangle = meta_features(np.array([[0, 1, 2], [1, 2, 0]]), 3)
    assert triangle.clustering == 1.0 and triangle.density == 1.0 and triangle.degree_gini == 0.0
    bipartite = meta_features(np.array([[0, 0, 1, 1], [2, 3, 2, 3]]), 4, np.array([0, 0, 1, 1]))
    assert bipartite.edge_homophily == 0.0 and bipartite.node_homophily == 0.0 and bipartite.clustering == 0.0
    apart = meta_features(np.array([[0, 2], [1, 3]]), 5)  # two edges and an isolated node
    assert apart.components == 3 and apart.largest_component == pytest.approx(0.4)
    assert gini(np.array([0, 0, 10])) == pytest.approx(2 / 3)


def test_policy_explains_its_prior() -> None:
    edge_index, _ = two_cliques()
    heterophilous = meta_features(np.array([[0, 0, 1, 1], [2, 3, 2, 3]]), 4, np.array([0, 0, 1, 1]))
    prior = policy(heterophilous, NASBENCH_OPS)
    assert prior.op_weights["sage"] > prior.op_weights["gcn"] and prior.op_weights["fc"] > 1
    assert "homophily 0.00 among training nodes" in prior.describe() and prior.baselines[0] == "mlp"
    homophilous = policy(meta_features(edge_index, 10, two_cliques()[1]), NASBENCH_OPS)
    assert homophilous.op_weights["gcn"] > homophilous.op_weights["fc"] and homophilous.budget == 100


@pytest.mark.parametrize("op", sorted(OPS.choices()))
def test_every_op_builds_and_runs(op: str) -> None:
    module = OPS.resolve(op)(8, 8, 2)
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    assert module(torch.randn(3, 8), edge_index).shape == (3, 8)


def test_architecture_is_a_checked_hashable_value() -> None:
    arch = Architecture(link=(0, 0, 1, 2), ops=("gat", "gcn", "sage", "fc"))
    assert hash(arch) == hash(Architecture.from_dict(arch.as_dict()))
    assert Architecture.from_dict(__import__("json").loads(arch.to_json())) == arch
    with pytest.raises(ConfigurationError, match="earlier node"):
        Architecture(link=(0, 2, 0, 0), ops=("gcn",) * 4)
    with pytest.raises(ValueError, match="Could not resolve 'transformer'"):
        Architecture(ops=("gcn", "transformer", "skip", "skip"))
    assert not Architecture(ops=("skip",) * 4).valid


def test_dag_net_uses_leaves_and_sparse_input_matches_dense() -> None:
    arch = Architecture(link=(0, 0, 1, 1), ops=("gcn", "sage", "fc", "skip"), hidden=16)
    net = DagNet(arch, 12, 3).eval()
    assert net.leaves == [2, 3, 4]
    x = torch.zeros(6, 12)
    x[torch.arange(6), torch.arange(6)] = 1.0
    edge_index = torch.tensor([[0, 1, 2, 3, 4], [1, 2, 3, 4, 5]])
    dense = net(x, edge_index)
    sparse = net(sparse_features(x), edge_index)
    assert dense.shape == (6, 3) and torch.allclose(dense, sparse, atol=1e-5)


def test_space_round_trips_samples_and_mutates() -> None:
    space = SearchSpace(hidden=(32, 64))
    rng = random.Random(0)
    arch = space.sample(rng)
    assert arch.valid and space.decode(space.encode(arch)) == arch
    child = space.mutate(arch, rng)
    differing = sum(a != b for a, b in zip(space.encode(arch), space.encode(child), strict=True))
    assert differing == 1
    assert space.size == 1 * 2 * 3 * 4 * 9**4 * 2
    weighted = SearchSpace(prior={"op": {"gcn": 1000.0}})
    assert sum(weighted.sample(rng).ops.count("gcn") for _ in range(20)) > 60  # the prior steers sampling


def toy_reward(arch: Architecture) -> float:
    return arch.ops.count("gcn") / 4 + 0.25 * (arch.link == (0, 1, 2, 3))


def toy(archs: list[Architecture]) -> list[Score]:
    return [Score(val=toy_reward(a), test=toy_reward(a)) for a in archs]


@pytest.mark.parametrize("algo", ["random", "rl", "tpe", "evolution"])
def test_searchers_are_seeded_and_keep_the_budget(algo: str) -> None:
    first = search(SearchSpace(), toy, budget=30, seed=3, algo=algo, parallel=4)
    again = search(SearchSpace(), toy, budget=30, seed=3, algo=algo, parallel=4)
    assert len(first.trials) == 30
    assert [t.arch for t in first.trials] == [t.arch for t in again.trials]
    assert len({t.arch for t in first.trials}) == 30  # repeats never spend the budget
    assert first.best_so_far() == sorted(first.best_so_far())


def test_the_controller_improves_on_a_toy_reward() -> None:
    history = search(SearchSpace(), toy, budget=150, seed=0, algo="rl", parallel=5)
    rewards = [t.val for t in history.trials]
    assert np.mean(rewards[-30:]) > np.mean(rewards[:30]) + 0.15


def test_guided_searchers_beat_random_on_the_toy() -> None:
    def mean_best(algo: str) -> float:
        return float(np.mean([search(SearchSpace(), toy, 60, seed=s, algo=algo).best.val for s in range(4)]))

    assert mean_best("evolution") > mean_best("random")
    assert mean_best("tpe") > mean_best("random")


def test_warm_starts_are_proposed_first() -> None:
    warm = [Architecture(link=(0, 1, 2, 3), ops=("gcn",) * 4)]
    for algo in SEARCHERS.choices():
        kind = SEARCHERS.resolve(algo)
        if getattr(kind, "needs_pool", False):  # a pool searcher: the pool and its prior are given
            pool = [Architecture(link=(0, 1, 2, 3), ops=(op,) * 4) for op in ("gat", "sage", "skip")]
            searcher = kind(SearchSpace(), 0, warm, candidates=pool, prior=[0.9, 0.5, 0.1])
            history = run_search(searcher, toy, 3)
        else:
            history = search(SearchSpace(), toy, budget=3, seed=0, algo=algo, warm_start=warm)
        assert history.trials[0].arch == warm[0] and history.best.val == 1.25


def test_nasbench_lookup_matches_the_table() -> None:
    best = top_architectures("cora", 1)[0]
    score = LookupEvaluator("cora").score(best)
    assert score.val == max(v["valid_perf"] for v in table("cora").values())
    assert arch_key(best, "cora") in table("cora")
    assert LookupEvaluator("cora").optimum() == pytest.approx(0.8313, abs=1e-4)
    archs, nearest = transfer_prior(published_meta("cora"), exclude=["cora"])
    assert "cora" not in nearest and len(archs) >= 5


def test_graph_inputs_fail_with_clear_errors() -> None:
    nodes = pd.DataFrame({"id": ["a", "b", "c"], "label": ["x", "y", None], "f1": ["1", "2", "3"]})
    edges = pd.DataFrame({"source": ["a", "b"], "target": ["b", "c"]})
    data = from_tables(nodes, edges)
    assert data.num_nodes == 3 and data.y.tolist() == [0, 1, -1] and data.edge_index.size(1) == 4
    with pytest.raises(DataSourceError, match=r"not in the node table, e.g. \['zz'\]"):
        from_tables(nodes, pd.DataFrame({"source": ["a"], "target": ["zz"]}))
    with pytest.raises(DataSourceError, match="more than once"):
        from_tables(pd.concat([nodes, nodes.head(1)]), edges)
    with pytest.raises(DataSourceError, match="feature 'f1' of node 'b' is 'oops'"):
        from_tables(nodes.assign(f1=["1", "oops", "3"]), edges)
    with pytest.raises(DataSourceError, match="node table is empty"):
        from_tables(nodes.head(0), edges.head(0))
    from openautoglm.adapters.graphs import check_graph

    mismatched = Data(
        x=torch.ones(3, 1), y=torch.zeros(2, dtype=torch.long), edge_index=torch.zeros(2, 0, dtype=torch.long)
    )
    with pytest.raises(DataSourceError, match="3 nodes but 2 labels"):
        check_graph(mismatched, "g")
    graph = nx.karate_club_graph()
    for node in graph.nodes:
        graph.nodes[node]["y"] = graph.nodes[node]["club"]
    assert from_networkx_graph(graph).num_nodes == 34


def test_splits_are_seeded_and_stratified() -> None:
    data = load_graph(KarateGraph())
    a, b = node_split(data, seed=1), node_split(data, seed=1)
    assert torch.equal(a.train_mask, b.train_mask)
    assert int(a.train_mask.sum() + a.val_mask.sum() + a.test_mask.sum()) == 34
    assert not (a.train_mask & a.test_mask).any()
    _, val, test = link_split(data, seed=0)
    assert int(val.edge_label.sum()) > 0 and set(test.edge_label.unique().tolist()) == {0.0, 1.0}


def test_training_node_and_link_tasks_on_karate() -> None:
    data = node_split(load_graph(KarateGraph()), seed=0)
    config = TrainConfig(max_epochs=200, patience=30)
    arch = Architecture(link=(0, 1, 2, 3), ops=("gcn", "gcn", "skip", "skip"), hidden=64, dropout=0.2)
    result = train_node_classifier(arch, data, config, seed=0)
    assert result.val >= 0.8 and 0 < result.best_epoch <= result.epochs <= 200  # 4 classes, chance ~0.3
    again = train_node_classifier(arch, data, config, seed=0)
    assert again.val == result.val and again.test == result.test  # seeded
    # Link prediction on a 4-block stochastic block model: edges mostly inside blocks, features hint the block.
    blocks = nx.stochastic_block_model(
        [50] * 4, [[0.3 if i == j else 0.01 for j in range(4)] for i in range(4)], seed=0
    )
    rng = np.random.default_rng(0)
    for node in blocks.nodes:
        blocks.nodes[node]["x"] = np.eye(4)[blocks.nodes[node]["block"]] + rng.normal(0, 0.5, 4)
    train, val, test = link_split(from_networkx_graph(blocks), seed=0)
    link = train_link_predictor(arch, train, val, test, config, seed=0)
    assert 0.8 < link.test <= 1.0 and "test_hits_at_50" in link.extra
    assert hits_at_k(np.array([0.9, 0.1]), np.array([0.5] * 60), 50) == 0.5


def test_hpo_never_ends_worse_than_its_start() -> None:
    data = node_split(load_graph(KarateGraph()), seed=0)
    arch = Architecture(link=(0, 1, 2, 3), ops=("gcn", "gcn", "skip", "skip"), hidden=16)
    base = TrainConfig(max_epochs=40, patience=5)
    start = train_node_classifier(arch, data, base, 0).val
    result = tune(
        arch, lambda a, c, s, r: train_node_classifier(a, data, c, s, r), base=base, trials=4, hidden=(16, 32)
    )
    assert result.val >= start and len(result.trials) == 4
    assert result.trials[0]["lr"] == base.lr  # the untuned start is the first trial


def test_run_search_stops_on_the_time_budget() -> None:
    slow_calls = []

    def slow(archs: list[Architecture]) -> list[Score]:
        slow_calls.append(len(archs))
        import time

        time.sleep(0.05)
        return toy(archs)

    from openautoglm.core.graph.search.random_search import RandomSearch

    history = run_search(RandomSearch(SearchSpace()), slow, budget=1000, time_budget_s=0.2)
    assert 1 <= len(history.trials) < 20


def test_unknown_algorithm_lists_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="among choices"):
        search(SearchSpace(), toy, budget=1, algo="bayesian")


def test_transfer_weights_leave_the_target_out_and_multiply_into_the_prior() -> None:
    from openautoglm.adapters.nasbench import transfer_weights

    with_cora = transfer_weights()
    without = transfer_weights(exclude=["cora"])
    assert with_cora != without
    assert set(without) == {f"op{i}" for i in range(4)} | {f"link{i}" for i in range(4)}
    assert sum(without["op0"].values()) == pytest.approx(len(NASBENCH_OPS))  # relative to uniform
    space = SearchSpace(prior={"op": {"gcn": 2.0}}).with_prior({"op1": {"gcn": 3.0}})
    decision = next(d for d in space.decisions if d.name == "op1")
    assert space.weights(decision)[NASBENCH_OPS.index("gcn")] == 6.0
