"""Resampled node splits for model selection: more validation signal than one fixed split gives.

On a fixed split the validation nodes are the same for every seed, so which nodes happen to be in it is a noise
that more seeds do not average away (about +-1.8 points on Cora's 500 validation nodes; candidates within a point
of each other are ranked by it). A *fold* redraws the training nodes from the labelled non-test nodes — as many
per class as the split trains on — and validates on the rest: the architecture is scored by how well it learns
from that many labels, on a different validation set each time. Test nodes are never moved or read.
"""

from __future__ import annotations

import torch
from torch_geometric.data import Data


def resample_split(data: Data, fold: int) -> Data:
    """A copy of ``data`` whose train and validation masks are redrawn from their union (seeded by ``fold``),
    keeping the training set's size per class; the test mask is kept as it is."""
    pool = data.train_mask | data.val_mask
    generator = torch.Generator().manual_seed(10_007 + fold)
    train = torch.zeros_like(data.train_mask)
    for label in torch.unique(data.y[data.train_mask]):
        wanted = int((data.y[data.train_mask] == label).sum())
        candidates = torch.nonzero(pool & (data.y == label)).view(-1)
        chosen = candidates[torch.randperm(len(candidates), generator=generator)[:wanted]]
        train[chosen] = True
    out = data.clone()
    out.train_mask, out.val_mask = train, pool & ~train
    return out
