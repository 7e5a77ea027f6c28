"""Cold start and class balance of the row chooser (openautoglm.core.annotation.sampling): planted data."""

from __future__ import annotations

import numpy as np
import pytest

from openautoglm.core.annotation.sampling import choose, cover
from openautoglm.core.errors import ConfigurationError


def _blobs(sizes: list[int], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well separated 2-d blobs of the given sizes (a rare one among them); label = blob."""
    rng = np.random.default_rng(seed)
    centres = [(10.0 * np.cos(a), 10.0 * np.sin(a)) for a in np.linspace(0, 2 * np.pi, len(sizes), endpoint=False)]
    points = np.vstack([rng.normal(c, 0.5, (n, 2)) for c, n in zip(centres, sizes, strict=True)])
    labels = np.concatenate([np.full(n, i) for i, n in enumerate(sizes)])
    order = rng.permutation(len(labels))
    return points[order], labels[order]


def test_cover_reaches_every_blob_where_random_rows_miss_the_rare_one() -> None:
    sizes = [400] * 8 + [12]  # a rare ninth label: 12 of 3,212 rows
    points, labels = _blobs(sizes)
    rows = cover(points, 18, seed=0)
    assert len(rows) == len(set(rows)) == 18
    assert set(labels[list(rows)]) == set(range(9))
    # 18 random rows miss the rare blob most of the time (p ~ 0.93), which is what the cold start is for
    missed = sum(
        8 not in set(labels[np.random.default_rng(s).choice(len(labels), 18, replace=False)]) for s in range(50)
    )
    assert missed > 35


def test_cover_is_seeded_skips_excluded_rows_and_checks_its_input() -> None:
    points, _ = _blobs([50, 50, 50])
    assert cover(points, 6, seed=1) == cover(points, 6, seed=1)
    excluded = set(cover(points, 6, seed=1))
    assert not excluded & set(cover(points, 6, seed=1, exclude=excluded))
    assert cover(points[:4], 6) == (0, 1, 2, 3)
    with pytest.raises(ConfigurationError):
        cover(points[:, 0], 3)
    with pytest.raises(ConfigurationError):
        cover(points, 0)


def test_balanced_rounds_cap_each_predicted_label() -> None:
    rng = np.random.default_rng(0)
    # 300 rows predicted "0" and very unsure, 300 predicted "1" or "2" and a little surer
    unsure = np.column_stack([np.full(300, 0.4), np.full(300, 0.35), np.full(300, 0.25)])
    surer = np.column_stack([np.full(300, 0.1), rng.uniform(0.5, 0.6, 300), np.zeros(300)])
    surer[:, 2] = 1 - surer[:, 0] - surer[:, 1]
    surer[150:, [1, 2]] = surer[150:, [2, 1]]
    probs = np.vstack([unsure, surer])
    plain = choose(probs, 30, strategy="margin", seed=0)
    balanced = choose(probs, 30, strategy="margin", seed=0, balanced=True)
    assert np.bincount(probs[list(plain.rows)].argmax(axis=1), minlength=3).tolist() == [30, 0, 0]
    assert np.bincount(probs[list(balanced.rows)].argmax(axis=1), minlength=3).tolist() == [10, 10, 10]
    # within a label the most uncertain rows still come first
    ones = [r for r in balanced.rows if probs[r].argmax() == 1]
    margins = 1 - np.sort(probs[ones], axis=1)[:, -1] + np.sort(probs[ones], axis=1)[:, -2]
    assert margins.min() >= np.sort(1 - np.abs(probs[300:450, 1] - probs[300:450, 2]))[-10] - 1e-12
