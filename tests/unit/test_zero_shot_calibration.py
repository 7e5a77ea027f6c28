"""Calibration of zero-shot label scores, label-description expansion and the self-trained student, on tiny
synthetic data (no model is loaded)."""

from __future__ import annotations

import numpy as np
import pytest

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp import calibration, label_expansion, learn


def planted(n: int = 600, share: float = 0.8, bias: float = 1.5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows with a true label (``share`` of them label 0), a score ``x ~ N(-1 or +1, 1)`` and the logits whose
    softmax is the exact posterior under a uniform prior, ``[-x, x]``; then label 1's logit raised by ``bias`` for
    every row: a scorer that prefers label 1 whatever the text says."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) >= share).astype(int)
    x = np.where(y == 1, 1.0, -1.0) + rng.normal(0.0, 1.0, n)
    logits = np.stack([-x, x], axis=1)
    logits[:, 1] += bias
    return y, logits


def test_contextual_calibration_removes_a_planted_bias() -> None:
    y, logits = planted(share=0.5, bias=2.5)
    probs = calibration.softmax(logits)
    content_free = calibration.softmax(np.array([[0.0, 2.5], [0.1, 2.6]]))  # what the scorer says about nothing
    before = float((probs.argmax(1) == y).mean())
    after = calibration.contextual_calibration(probs, content_free)
    assert (probs.argmax(1) == 1).mean() > 0.75  # the bias shows: most rows go to label 1
    assert abs((after.argmax(1) == 1).mean() - 0.5) < 0.1  # gone
    assert float((after.argmax(1) == y).mean()) > before + 0.1
    np.testing.assert_allclose(after.sum(1), 1.0)


def test_em_prior_recovers_an_unbalanced_prior_that_mean_centring_would_erase() -> None:
    y, logits = planted(share=0.8, bias=0.0)  # calibrated for a uniform prior; 80% of the rows are label 0
    probs = calibration.softmax(logits)
    estimate = calibration.em_prior(probs)
    assert estimate.converged
    assert abs(estimate.prior[0] - 0.8) < 0.05
    em_acc = float((estimate.probs.argmax(1) == y).mean())
    centred = logits - logits.mean(axis=0)  # assumes balanced labels
    assert em_acc > float((centred.argmax(1) == y).mean()) + 0.03
    assert em_acc >= float((probs.argmax(1) == y).mean())


def test_em_prior_keeps_a_balanced_prior() -> None:
    _, logits = planted(share=0.5, bias=0.0, seed=3)
    estimate = calibration.em_prior(calibration.softmax(logits))
    assert np.allclose(estimate.prior, [0.5, 0.5], atol=0.06)


def test_calibration_rejects_bad_input() -> None:
    with pytest.raises(ConfigurationError, match="2-d"):
        calibration.em_prior(np.array([0.2, 0.8]))
    with pytest.raises(ConfigurationError, match="positive"):
        calibration.contextual_calibration(np.array([[0.5, 0.5]]), np.array([0.0, 1.0]))
    with pytest.raises(ConfigurationError, match="temperature"):
        calibration.softmax(np.zeros((1, 2)), temperature=0)


def test_descriptor_groups_are_taken_only_when_every_label_has_its_own() -> None:
    groups = np.eye(3)
    sentiment = np.array([[0.9, 0.1, 0.2], [0.1, 0.8, 0.3]])
    assert label_expansion.assign_groups(sentiment, groups) == [0, 1]
    shared = np.array([[0.9, 0.1, 0.2], [0.8, 0.3, 0.1]])  # both nearest to group 0: ambiguous
    assert label_expansion.assign_groups(shared, groups) is None
    assert label_expansion.assign_groups(np.ones((4, 3)), groups) is None  # more labels than groups
    protos = label_expansion.prototypes(sentiment, groups, [0, 1])
    np.testing.assert_allclose(protos, groups[[0, 1]])
    assert label_expansion.framed("正面")[0] == "正面" and all("正面" in t for t in label_expansion.framed("正面"))


def test_self_training_relabels_the_rows_a_noisy_scorer_got_wrong() -> None:
    rng = np.random.default_rng(0)
    good, bad = ["好吃", "推荐", "满意", "很棒"], ["难吃", "太慢", "失望", "很差"]
    texts, y = [], []
    for i in range(300):
        label = i % 2
        words = rng.choice(good if label == 0 else bad, 2)
        texts.append(f"{words[0]}，{words[1]}，第{i}单")
        y.append(label)
    truth = np.array(y)
    probs = np.full((300, 2), 0.5)
    noisy = truth.copy()
    flip = rng.random(300) < 0.25
    noisy[flip] = 1 - noisy[flip]
    probs[np.arange(300), noisy] = 0.6  # weakly confident zero-shot, 25% wrong
    probs[~flip, noisy[~flip]] = 0.9  # the right ones are the confident ones
    probs = probs / probs.sum(1, keepdims=True)
    relabelled = learn.self_train(texts, probs, fraction=0.5)
    assert float((relabelled.argmax(1) == truth).mean()) > 0.95
    small = learn.self_train(texts[:50], probs[:50])
    np.testing.assert_allclose(small, probs[:50])  # too few rows to learn from: unchanged
