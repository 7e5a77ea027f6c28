"""Training settings shared by the trainer, the candidates (which may carry their own recipe) and the flows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser and stopping settings.

    Attributes:
        lr, weight_decay: Adam settings.
        max_epochs: Upper bound on epochs (a candidate's own recipe never trains longer than this).
        patience: Stop after this many evaluations without a better validation score.
        eval_every: Evaluate every this many epochs (evaluation costs a forward pass).
        hits_k: K of Hits@K for link prediction.
    """

    lr: float = 0.01
    weight_decay: float = 5e-4
    max_epochs: int = 300
    patience: int = 20
    eval_every: int = 2
    hits_k: int = 50
