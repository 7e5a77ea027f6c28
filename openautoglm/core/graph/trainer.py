"""Training one architecture: full-batch node classification or link prediction, early stopping on validation.

Deterministic for a seed (``torch.manual_seed``; single-threaded kernels are set by the caller's
``OMP_NUM_THREADS``/``torch.set_num_threads``).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import Tensor, nn
from torch_geometric.data import Data
from torch_geometric.utils import negative_sampling

from openautoglm.core.devices import torch_device
from openautoglm.core.graph.candidates import Candidate
from openautoglm.core.graph.config import TrainConfig
from openautoglm.core.graph.features import FEATURE_NORMS
from openautoglm.core.graph.space import sparse_features

__all__ = ["GraphTask", "Report", "TrainConfig", "TrainResult", "train_link_predictor", "train_node_classifier"]

GraphTask = Literal["node", "link"]


@dataclass(frozen=True)
class TrainResult:
    """Scores of one training run (accuracy for nodes, AUC for links) at the best validation epoch."""

    val: float
    test: float
    best_epoch: int
    epochs: int
    seconds: float
    params: int
    extra: dict[str, float]
    model: nn.Module | None = None


Report = Callable[[int, float], bool]
"""Called with (epoch, validation score) at each evaluation; return True to stop (pruning)."""


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def optimiser_for(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam with ``config``'s weight decay, except on the parameters a module names in ``no_weight_decay()``
    (GPR-GNN's propagation weights: decaying them pulls the learnt filter back to zero)."""
    exempt: set[str] = set()
    for prefix, module in model.named_modules():
        names = getattr(module, "no_weight_decay", None)
        if callable(names):
            exempt |= {f"{prefix}.{name}" if prefix else name for name in names()}
    decayed = [p for n, p in model.named_parameters() if n not in exempt]
    free = [p for n, p in model.named_parameters() if n in exempt]
    groups: list[dict[str, object]] = [{"params": decayed, "weight_decay": config.weight_decay}]
    if free:
        groups.append({"params": free, "weight_decay": 0.0})
    return torch.optim.Adam(groups, lr=config.lr)


def _early_stopping(
    step: Callable[[], None],
    evaluate: Callable[[], tuple[float, dict[str, float]]],
    model: nn.Module,
    config: TrainConfig,
    report: Report | None,
) -> tuple[float, dict[str, float], int, int]:
    best_val, best_state, best_epoch, stale, epoch = -1.0, None, 0, 0, 0
    best_extra: dict[str, float] = {}
    for epoch in range(1, config.max_epochs + 1):
        step()
        if epoch % config.eval_every and epoch != config.max_epochs:
            continue
        val, extra = evaluate()
        if val > best_val:
            best_val, best_epoch, stale, best_extra = val, epoch, 0, extra
            best_state = copy.deepcopy(model.state_dict())
        else:
            stale += 1
        if report is not None and report(epoch, val):
            break
        if stale >= config.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    return best_val, best_extra, best_epoch, epoch


def _features(arch: Candidate, x: Tensor) -> Tensor:
    """The candidate's feature normalisation, then sparse when mostly zeros."""
    return sparse_features(FEATURE_NORMS.resolve(arch.feature_norm)(x.to_dense() if x.is_sparse else x))


def train_node_classifier(
    arch: Candidate,
    data: Data,
    config: TrainConfig,
    seed: int,
    report: Report | None = None,
    keep_model: bool = False,
) -> TrainResult:
    """Train on ``data.train_mask``, pick the epoch by ``data.val_mask`` accuracy, score ``data.test_mask``.

    The candidate's own recipe (``arch.train_config(config)``) replaces ``config`` where it has one.
    """
    torch.manual_seed(seed)
    config = arch.train_config(config)
    started = time.perf_counter()
    classes = int(data.y.max()) + 1
    device = torch_device()
    data = data.to(device)
    model = arch.build(data.num_features, classes).to(device)
    x = _features(arch, data.x)
    optimiser = optimiser_for(model, config)

    def step() -> None:
        model.train()
        optimiser.zero_grad()
        out = model(x, data.edge_index)
        nn.functional.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        optimiser.step()

    def evaluate() -> tuple[float, dict[str, float]]:
        model.eval()
        with torch.no_grad():
            pred = model(x, data.edge_index).argmax(dim=1)
        val = float((pred[data.val_mask] == data.y[data.val_mask]).float().mean())
        test = float((pred[data.test_mask] == data.y[data.test_mask]).float().mean())
        return val, {"test": test}

    val, extra, best_epoch, epochs = _early_stopping(step, evaluate, model, config, report)
    return TrainResult(
        val=val,
        test=extra.get("test", 0.0),
        best_epoch=best_epoch,
        epochs=epochs,
        seconds=time.perf_counter() - started,
        params=count_params(model),
        extra={},
        model=model if keep_model else None,
    )


def _link_scores(z: Tensor, edges: Tensor) -> Tensor:
    return (z[edges[0]] * z[edges[1]]).sum(dim=-1)


def hits_at_k(pos: np.ndarray, neg: np.ndarray, k: int) -> float:
    """Share of positive edges scored above the k-th best negative edge (OGB's Hits@K)."""
    if len(neg) < k:
        return 1.0
    threshold = np.sort(neg)[-k]
    return float((pos > threshold).mean())


def train_link_predictor(
    arch: Candidate,
    train: Data,
    val: Data,
    test: Data,
    config: TrainConfig,
    seed: int,
    report: Report | None = None,
    keep_model: bool = False,
) -> TrainResult:
    """Train a DAG encoder with a dot-product decoder on ``train``'s supervision edges (with fresh negative
    samples each epoch); pick the epoch by validation AUC; report test AUC and Hits@K.

    ``train``, ``val`` and ``test`` are the three outputs of PyG's ``RandomLinkSplit``.
    """
    torch.manual_seed(seed)
    config = arch.train_config(config)
    started = time.perf_counter()
    device = torch_device()
    train, val, test = train.to(device), val.to(device), test.to(device)
    model = arch.build(train.num_features, arch.embedding_dim).to(device)
    # The three splits share the node features; normalise them once.
    x = _features(arch, train.x)
    optimiser = optimiser_for(model, config)

    def step() -> None:
        model.train()
        optimiser.zero_grad()
        z = model(x, train.edge_index)
        pos = train.edge_label_index[:, train.edge_label == 1]
        neg = negative_sampling(train.edge_index, num_nodes=train.num_nodes, num_neg_samples=pos.size(1))
        logits = torch.cat([_link_scores(z, pos), _link_scores(z, neg)])
        labels = torch.cat([torch.ones(pos.size(1), device=device), torch.zeros(neg.size(1), device=device)])
        nn.functional.binary_cross_entropy_with_logits(logits, labels).backward()
        optimiser.step()

    def score(split: Data) -> tuple[float, float]:
        model.eval()
        with torch.no_grad():
            z = model(x, split.edge_index)
            s = _link_scores(z, split.edge_label_index).cpu().numpy()
        y = split.edge_label.cpu().numpy()
        return float(roc_auc_score(y, s)), hits_at_k(s[y == 1], s[y == 0], config.hits_k)

    def evaluate() -> tuple[float, dict[str, float]]:
        auc, _ = score(val)
        test_auc, test_hits = score(test)
        return auc, {"test": test_auc, f"test_hits_at_{config.hits_k}": test_hits}

    val_auc, extra, best_epoch, epochs = _early_stopping(step, evaluate, model, config, report)
    return TrainResult(
        val=val_auc,
        test=extra.get("test", 0.0),
        best_epoch=best_epoch,
        epochs=epochs,
        seconds=time.perf_counter() - started,
        params=count_params(model),
        extra={k: v for k, v in extra.items() if k != "test"},
        model=model if keep_model else None,
    )
