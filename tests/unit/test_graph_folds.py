"""Resampled folds: the training set keeps its size per class, test nodes never move, folds differ and repeat."""

from __future__ import annotations

import torch
from torch_geometric.data import Data

from openautoglm.core.graph.folds import resample_split


def _graph() -> Data:
    y = torch.arange(60) % 3
    data = Data(x=torch.randn(60, 4), y=y, edge_index=torch.tensor([[0, 1], [1, 0]]))
    data.train_mask = torch.zeros(60, dtype=torch.bool)
    data.train_mask[:9] = True  # 3 per class
    data.val_mask = torch.zeros(60, dtype=torch.bool)
    data.val_mask[9:39] = True
    data.test_mask = ~(data.train_mask | data.val_mask)
    return data


def test_fold_keeps_class_counts_and_the_test_nodes() -> None:
    data = _graph()
    fold = resample_split(data, 1)
    assert torch.equal(fold.test_mask, data.test_mask)
    assert torch.equal(fold.train_mask | fold.val_mask, data.train_mask | data.val_mask)
    assert not bool((fold.train_mask & fold.val_mask).any())
    assert torch.bincount(fold.y[fold.train_mask]).tolist() == [3, 3, 3]
    assert torch.equal(data.train_mask[:9], torch.ones(9, dtype=torch.bool))  # the input is not changed


def test_folds_differ_from_each_other_and_repeat_for_a_seed() -> None:
    data = _graph()
    trains = [resample_split(data, k).train_mask for k in range(4)]
    assert len({tuple(t.nonzero().view(-1).tolist()) for t in trains}) == 4
    assert torch.equal(resample_split(data, 2).train_mask, trains[2])
    assert not torch.equal(trains[0], data.train_mask)
