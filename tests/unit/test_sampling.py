"""Choosing the rows to label (core/annotation/sampling.py): the measures, seeded ties, exclusions, diversity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from openautoglm.core.annotation.sampling import UNCERTAINTY, choose, entropy, least_confidence, margin
from openautoglm.core.errors import ConfigurationError

PROBS = np.array(
    [
        [0.98, 0.01, 0.01],  # sure
        [0.50, 0.45, 0.05],  # two labels close: the smallest margin
        [0.34, 0.33, 0.33],  # uniform: the highest entropy and least confidence
        [0.60, 0.20, 0.20],
    ]
)


def test_each_measure_orders_rows_as_its_definition_says() -> None:
    assert choose(PROBS, 1, strategy="margin").rows == (2,)  # 0.34 - 0.33 is the smallest gap
    assert choose(PROBS[[0, 1, 3]], 1, strategy="margin").rows == (1,)
    assert choose(PROBS, 4, strategy="least-confidence").rows == (2, 1, 3, 0)
    assert choose(PROBS, 4, strategy="entropy").rows[0] == 2 and choose(PROBS, 4, strategy="entropy").rows[-1] == 0
    assert np.allclose(least_confidence(PROBS), 1 - PROBS.max(axis=1))
    assert np.allclose(margin(PROBS)[1], 1 - 0.05)
    assert np.isclose(entropy(np.full((1, 4), 0.25))[0], 1.0) and entropy(np.eye(3))[0] < 1e-9
    assert all(name in UNCERTAINTY for name in ("random", "least-confidence", "margin", "entropy"))


def test_ties_are_broken_by_the_seed_not_by_row_order() -> None:
    flat = np.full((100, 2), 0.5)  # a cold-start model unsure everywhere
    a, b = choose(flat, 10, seed=1), choose(flat, 10, seed=1)
    assert a == b and a.rows != tuple(range(10))
    assert choose(flat, 10, seed=2).rows != a.rows
    assert choose(flat, 10, strategy="random", seed=1).rows == choose(flat, 10, strategy="margin", seed=1).rows


def test_excluded_rows_are_never_chosen_and_fewer_rows_left_means_a_smaller_round() -> None:
    out = choose(PROBS, 3, strategy="least-confidence", exclude={2, 1})
    assert out.rows == (3, 0)


def test_diverse_rounds_take_one_row_per_cluster() -> None:
    rng = np.random.default_rng(0)
    # Two tight groups of near-duplicates, the first more uncertain: plain margin takes 4 rows of the first group,
    # the diverse round takes rows of both.
    centres = np.array([[10.0, 0.0], [0.0, 10.0]])
    groups = np.repeat([0, 1], 20)
    vectors = centres[groups] + rng.normal(scale=0.1, size=(40, 2))
    probs = np.where(groups[:, None] == 0, [0.51, 0.49], [0.6, 0.4]) + rng.normal(scale=0.001, size=(40, 2))
    plain = choose(probs, 2, strategy="margin")
    assert set(groups[list(plain.rows)]) == {0}
    diverse = choose(probs, 2, strategy="margin", embeddings=vectors, diverse=True, pool_factor=20)
    assert set(groups[list(diverse.rows)]) == {0, 1} and diverse.diverse
    assert diverse == choose(probs, 2, strategy="margin", embeddings=vectors, diverse=True, pool_factor=20)
    # embeddings as a function: asked once, for the pool of most uncertain rows only, with the same choice
    asked: list[list[int]] = []

    def embed(rows: list[int]) -> np.ndarray:
        asked.append(list(rows))
        return vectors[rows]

    assert choose(probs, 2, strategy="margin", embeddings=embed, diverse=True, pool_factor=5) == choose(
        probs, 2, strategy="margin", embeddings=vectors, diverse=True, pool_factor=5
    )
    assert len(asked) == 1 and len(asked[0]) == 10 and asked[0] == list(choose(probs, 10, strategy="margin").rows)
    with pytest.raises(ConfigurationError, match="do not match 10 rows"):
        choose(probs, 2, embeddings=lambda rows: vectors, diverse=True, pool_factor=5)


def test_bad_requests_are_clear_errors() -> None:
    with pytest.raises(ConfigurationError, match="margin"):
        choose(PROBS, 1, strategy="nope")
    with pytest.raises(ConfigurationError, match="at least one"):
        choose(PROBS, 0)
    with pytest.raises(ConfigurationError, match="embeddings"):
        choose(PROBS, 1, diverse=True)
    with pytest.raises(ConfigurationError, match="shape"):
        choose(np.zeros(3), 1)


@settings(max_examples=200, deadline=None)
@given(
    probs=arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(2, 5)), elements=st.floats(0, 1)),
    k=st.integers(1, 40),
    strategy=st.sampled_from(["random", "least-confidence", "margin", "entropy"]),
    seed=st.integers(0, 3),
    data=st.data(),
)
def test_a_round_is_distinct_rows_outside_the_exclusions(
    probs: np.ndarray, k: int, strategy: str, seed: int, data: st.DataObject
) -> None:
    exclude = data.draw(st.sets(st.integers(0, len(probs) - 1)))
    out = choose(probs, k, strategy=strategy, seed=seed, exclude=exclude)
    assert len(set(out.rows)) == len(out.rows) == min(k, len(probs) - len(exclude))
    assert not set(out.rows) & exclude
    assert list(out.scores) == sorted(out.scores, reverse=True)  # most uncertain first
