"""Calibration of label scores for zero-shot classification.

A zero-shot scorer (cosine to label descriptions, a prompted model's label probabilities) is biased in two ways:
it prefers some labels whatever the text says (the *bias*), and it assumes nothing about how often each label
occurs in the rows at hand (the *prior*). Two corrections, each a pure function of a probability matrix
``(n_rows, n_labels)``:

- :func:`contextual_calibration` (Zhao et al. 2021, "Calibrate Before Use"): the probabilities the scorer gives to
  content-free inputs (``""``, ``"N/A"`` framed like a real row) estimate its bias; dividing by them
  (``W = diag(p_cf)^-1``) makes a content-free input score every label alike.
- :func:`em_prior` (Saerens, Latinne and Decaestecker 2002, "Adjusting the outputs of a classifier to new a priori
  probabilities"): given posteriors made under a known prior (uniform by default), the label prior of the rows
  being classified is re-estimated by EM, and the posteriors are re-weighted by ``new_prior / old_prior``. Unlike
  mean-centring the scores, it does not assume the labels are balanced: it estimates how unbalanced they are.

Neither needs gold labels; :func:`em_prior` is transductive (it reads the rows being classified).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from openautoglm.core.errors import ConfigurationError

FloatArray = npt.NDArray[np.float64]


def _check_probs(probs: npt.ArrayLike, name: str = "probs") -> FloatArray:
    matrix = np.asarray(probs, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] < 2:
        raise ConfigurationError(f"{name} must be a 2-d array (rows, labels) with at least two labels.")
    if not np.isfinite(matrix).all() or (matrix < 0).any():
        raise ConfigurationError(f"{name} must hold finite, non-negative probabilities.")
    return matrix


def _normalise(matrix: FloatArray) -> FloatArray:
    totals = matrix.sum(axis=1, keepdims=True)
    return matrix / np.where(totals == 0, 1.0, totals)


def softmax(scores: npt.ArrayLike, temperature: float = 1.0) -> FloatArray:
    """Row-wise softmax of ``scores / temperature``.

    Args:
        scores: ``(n_rows, n_labels)`` scores (cosines, logits).
        temperature: Positive; smaller is sharper.

    Returns:
        ``(n_rows, n_labels)`` probabilities, each row summing to 1.
    """
    if temperature <= 0:
        raise ConfigurationError(f"temperature must be positive, got {temperature}.")
    z = np.asarray(scores, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e: FloatArray = np.exp(z)
    out: FloatArray = e / e.sum(axis=1, keepdims=True)
    return out


def contextual_calibration(probs: npt.ArrayLike, content_free: npt.ArrayLike) -> FloatArray:
    """Divide out the scorer's bias measured on content-free inputs (Zhao et al. 2021).

    Args:
        probs: ``(n_rows, n_labels)`` probabilities of the rows.
        content_free: ``(m, n_labels)`` probabilities of ``m`` content-free inputs (or one ``(n_labels,)`` row);
            their mean is the bias.

    Returns:
        ``(n_rows, n_labels)`` calibrated probabilities: ``normalise(probs / mean(content_free))``.
    """
    matrix = _check_probs(probs)
    reference = np.atleast_2d(np.asarray(content_free, dtype=np.float64)).mean(axis=0)
    if reference.shape != (matrix.shape[1],) or (reference <= 0).any():
        raise ConfigurationError("content_free must give a positive probability to every label.")
    return _normalise(matrix / reference)


@dataclass(frozen=True)
class PriorEstimate:
    """What :func:`em_prior` found.

    Attributes:
        probs: ``(n_rows, n_labels)`` posteriors under the estimated prior.
        prior: ``(n_labels,)`` the estimated label prior of the rows.
        iterations: EM iterations run.
        converged: The prior moved less than the tolerance in the last iteration.
    """

    probs: FloatArray
    prior: FloatArray
    iterations: int
    converged: bool


def em_prior(
    probs: npt.ArrayLike,
    train_prior: npt.ArrayLike | None = None,
    *,
    max_iter: int = 100,
    tol: float = 1e-6,
    min_prior: float = 1e-3,
) -> PriorEstimate:
    """Re-estimate the label prior of the rows by EM and adjust the posteriors to it (Saerens et al. 2002).

    E-step: ``p'(y|x) ∝ p(y|x) * prior(y) / train_prior(y)``; M-step: ``prior(y) = mean_x p'(y|x)``; from
    ``prior = train_prior`` until the prior moves less than ``tol``.

    Args:
        probs: ``(n_rows, n_labels)`` posteriors made under ``train_prior``.
        train_prior: The prior the posteriors assume; uniform by default.
        max_iter: Iteration cap.
        tol: Convergence tolerance on the prior (max absolute change).
        min_prior: Floor of every label's prior, so no label is driven out altogether.

    Returns:
        A :class:`PriorEstimate`.
    """
    matrix = _check_probs(probs)
    k = matrix.shape[1]
    base = np.full(k, 1.0 / k) if train_prior is None else np.asarray(train_prior, dtype=np.float64)
    if base.shape != (k,) or (base <= 0).any():
        raise ConfigurationError("train_prior must give a positive probability to every label.")
    base = base / base.sum()
    prior = base.copy()
    adjusted = _normalise(matrix)
    converged = False
    iteration = 0
    for iteration in range(1, max_iter + 1):  # noqa: B007  (the count is reported)
        adjusted = _normalise(matrix * (prior / base))
        new = np.maximum(adjusted.mean(axis=0), min_prior)
        new = new / new.sum()
        moved = float(np.abs(new - prior).max())
        prior = new
        if moved < tol:
            converged = True
            break
    adjusted = _normalise(matrix * (prior / base))
    return PriorEstimate(probs=adjusted, prior=prior, iterations=iteration, converged=converged)
