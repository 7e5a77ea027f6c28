"""The matching ensemble: the combiner's maths, its fit, the backend's name and task checks, and the real encoders
on a few pairs (offline, from the wheels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models import BACKENDS, ModelSpec
from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.models.embedding import Encoder
from openautoglm.adapters.models.matching import EnsembleMatcher, pair_views
from openautoglm.adapters.models.run import check_supported
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.matching import DEFAULT_COMBINER, MatchCombiner, char_dice, fit_combiner
from openautoglm.core.nlp.types import Row, TaskConfig

MATCH = TaskConfig(task_type="semantic_matching")


class CharBag(Encoder):
    """A toy encoder: counts of each character in a fixed alphabet (similar strings, similar vectors)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[str] = []

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        alphabet = "abcdefghijklmnopqrstuvwxyz"
        return np.array([[t.count(c) + 0.01 for c in alphabet] for t in texts], dtype=np.float32)


@pytest.fixture
def cache(tmp_path: Path) -> CallCache:
    return CallCache(tmp_path / "calls.sqlite")


def test_combiner_is_a_logistic_of_z_scores_and_order_preserving() -> None:
    combiner = MatchCombiner(views=("a", "b"), means=(0.5, 0.2), stds=(0.1, 0.4), weights=(2.0, 1.0), bias=-0.5)
    a, b = np.array([0.5, 0.7, 0.9]), np.array([0.2, 0.2, 0.6])
    expected = 1 / (1 + np.exp(-(-0.5 + 2.0 * (a - 0.5) / 0.1 + 1.0 * (b - 0.2) / 0.4)))
    assert np.allclose(combiner.score({"a": a, "b": b}), expected)
    rng = np.random.default_rng(0)
    x, y = rng.uniform(-1, 1, 200), rng.uniform(-1, 1, 200)
    base = combiner.score({"a": x, "b": y})
    assert np.all((base > 0) & (base < 1))
    assert np.all(combiner.score({"a": x + 0.1, "b": y}) > base)  # raising one view never lowers the score
    assert np.all(combiner.score({"a": x, "b": y + 0.1}) > base)


def test_combiner_rejects_bad_constants_and_missing_views() -> None:
    with pytest.raises(ConfigurationError, match="non-negative weights"):
        MatchCombiner(views=("a",), means=(0.0,), stds=(1.0,), weights=(-1.0,), bias=0.0)
    with pytest.raises(ConfigurationError, match="one mean, std and weight per view"):
        MatchCombiner(views=("a", "b"), means=(0.0,), stds=(1.0,), weights=(1.0,), bias=0.0)
    with pytest.raises(ConfigurationError, match="Missing similarity views"):
        DEFAULT_COMBINER.score({"e5": [0.9]})


def test_fit_weights_the_informative_view_and_zeroes_the_noise() -> None:
    rng = np.random.default_rng(0)
    gold = rng.uniform(0, 5, 500)
    signal = gold / 5 + rng.normal(0, 0.05, 500)
    noise = rng.normal(0, 1, 500)
    combiner = fit_combiner({"signal": signal, "noise": noise, "inverse": -signal}, gold)
    assert combiner.weights[0] > 1.0 and combiner.weights[1] < 0.1 and combiner.weights[2] == 0.0
    score = combiner.score({"signal": signal, "noise": noise, "inverse": -signal})
    assert np.corrcoef(score, gold)[0, 1] > 0.95
    assert abs(float(score.mean()) - float(gold.mean()) / 5) < 0.05  # calibrated to gold / 5


def test_default_combiner_was_fitted_on_train_and_uses_both_encoders() -> None:
    assert "train" in DEFAULT_COMBINER.fitted_on and "dev" not in DEFAULT_COMBINER.fitted_on
    assert {"e5", "use"} <= set(DEFAULT_COMBINER.views)
    assert all(w > 0 for v, w in zip(DEFAULT_COMBINER.views, DEFAULT_COMBINER.weights, strict=True) if v != "char")


def test_char_dice() -> None:
    assert char_dice("今天天气很好", "今天天气很好") == 1.0
    assert char_dice("今天天气很好", "") == 0.0
    assert 0 < char_dice("今天天气很好", "今天下雨") < 1


def test_each_distinct_text_is_encoded_once(cache: CallCache) -> None:
    encoder = CharBag("bag")
    rows = [Row(0, "abc", "abd"), Row(1, "abc", "xyz"), Row(2, "xyz", "abc")]
    views = pair_views({"bag": encoder}, rows, cache, BatchStats())
    assert sorted(encoder.seen) == ["abc", "abd", "xyz"]
    assert views["bag"][0] > views["bag"][1] and np.isclose(views["bag"][1], views["bag"][2])


def test_matcher_scores_identical_above_unrelated(cache: CallCache) -> None:
    combiner = MatchCombiner(views=("x", "y"), means=(0.5, 0.5), stds=(0.2, 0.2), weights=(1.0, 1.0), bias=0.0)
    matcher = EnsembleMatcher({"x": CharBag("x"), "y": CharBag("y")}, combiner)
    results = matcher.match(MATCH, [Row(0, "hello", "hello"), Row(1, "hello", "zzzq")], cache, BatchStats())
    assert results[0].score > results[1].score
    assert results[0].prediction == "1" and results[1].prediction == "0"
    with pytest.raises(ConfigurationError, match="no encoder"):
        EnsembleMatcher({"x": CharBag("x")}, combiner)


def test_backend_is_registered_and_refuses_other_tasks() -> None:
    assert ModelSpec(model="local-ensemble").backend == "local_ensemble"
    assert ModelSpec(model="ensemble").backend == "local_ensemble"
    assert BACKENDS.resolve("local-ensemble").tasks == frozenset({"semantic_matching"})
    check_supported(ModelSpec(model="local-ensemble"), MATCH)
    with pytest.raises(ConfigurationError, match="cannot do text_classification"):
        check_supported(ModelSpec(model="local-ensemble"), TaskConfig(labels=("正面", "负面")))


def test_real_encoders_rank_paraphrases_above_unrelated_pairs() -> None:
    """The shipped encoders (loaded from the wheels, offline) through ``local-ensemble``."""
    from openautoglm import TaskPipeline

    pairs = [
        ("一架飞机正在起飞。", "一架飞机正在起飞。"),
        ("一个男人在弹吉他。", "一名男子正在弹吉他。"),
        ("一个男人在弹吉他。", "股市今天大幅下跌。"),
    ]
    results = TaskPipeline("semantic_matching", "local-ensemble", cache="off").run(pairs)
    scores = list(results.frame["score"])
    assert scores[0] > scores[1] > scores[2]
    assert all(0 < s < 1 for s in scores)


def test_local_auto_matches_with_the_same_ensemble(cache: CallCache) -> None:
    from openautoglm.adapters.models.zero_shot import ZeroShotBackend

    auto = ZeroShotBackend("local-auto", fast=CharBag("use"), strong=CharBag("e5"))
    rows = [Row(0, "hello", "hello"), Row(1, "hello", "zzzq")]
    results, _ = auto.predict(MATCH, rows, cache)
    expected = EnsembleMatcher({"e5": CharBag("e5"), "use": CharBag("use")}).match(MATCH, rows, cache, BatchStats())
    assert [r.score for r in results] == [r.score for r in expected]
    assert results[0].score > results[1].score
