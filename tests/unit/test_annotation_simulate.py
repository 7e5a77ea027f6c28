"""The simulated annotator (openautoglm.usecases.annotation_simulate): tiny planted data, no encoders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import sparse

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.learn import FewLabelClassifier
from openautoglm.usecases.annotation_simulate import (
    SimulateParams,
    Views,
    area_under_curve,
    build_views,
    fit_round,
    run_ner_rounds,
    run_rounds,
    sentence_uncertainty,
    simulate,
)


def _planted(n: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """2-d points: 90% easy (far from the boundary x0 = 0.4), 10% hard (within 0.05 of it); label = x0 > 0.4."""
    rng = np.random.default_rng(seed)
    easy = int(n * 0.9)
    x0 = np.concatenate(
        [
            rng.choice([-1, 1], easy) * rng.uniform(0.3, 1.0, easy) + 0.4,
            0.4 + rng.uniform(-0.05, 0.05, n - easy),
        ]
    )
    x = np.column_stack([x0, rng.normal(0, 0.3, n)])
    order = rng.permutation(n)
    x = x[order]
    return x, ["pos" if v > 0.4 else "neg" for v in x[:, 0]]


def _views(seed: int = 0) -> tuple[Views, list[str], list[str]]:
    pool, pool_gold = _planted(1500, seed)
    test, test_gold = _planted(1000, seed + 100)
    # hard test rows only: where a model can be wrong
    hard = np.abs(test[:, 0] - 0.4) < 0.05
    test, test_gold = test[hard], [g for g, h in zip(test_gold, hard, strict=True) if h]
    views = Views(pool=[sparse.csr_matrix(pool * 5)], test=[sparse.csr_matrix(test * 5)], names=("x",), embeddings=pool)
    return views, pool_gold, test_gold


def _params(**kwargs: object) -> SimulateParams:
    base = {"round_size": 10, "label_budget": 60, "views": ("x",), "C": 10.0}
    return SimulateParams(**{**base, **kwargs})  # type: ignore[arg-type]


def test_margin_beats_random_on_a_planted_easy_hard_mixture() -> None:
    views, gold, test_gold = _views()
    margin = [run_rounds(_params(strategy="margin", seed=s), views, gold, test_gold) for s in range(3)]
    random = [run_rounds(_params(strategy="random", seed=s), views, gold, test_gold) for s in range(3)]
    final_margin = np.mean([r.curve[-1].accuracy for r in margin])
    final_random = np.mean([r.curve[-1].accuracy for r in random])
    assert final_margin > final_random + 0.1
    assert np.mean([r.area for r in margin]) > np.mean([r.area for r in random])


def test_seeds_reproduce_and_differ() -> None:
    views, gold, test_gold = _views()
    for strategy, diverse in (("random", False), ("margin", True)):
        a = run_rounds(_params(strategy=strategy, diverse=diverse, seed=3), views, gold, test_gold)
        b = run_rounds(_params(strategy=strategy, diverse=diverse, seed=3), views, gold, test_gold)
        c = run_rounds(_params(strategy=strategy, diverse=diverse, seed=4), views, gold, test_gold)
        assert a.chosen == b.chosen and [p.accuracy for p in a.curve] == [p.accuracy for p in b.curve]
        assert a.chosen != c.chosen


def test_rounds_respect_the_budget_and_never_repeat_a_row() -> None:
    views, gold, test_gold = _views()
    result = run_rounds(_params(strategy="margin", label_budget=55), views, gold, test_gold)
    assert [p.labels for p in result.curve] == [10, 20, 30, 40, 50, 55]
    assert len(set(result.chosen)) == 55
    capped = run_rounds(_params(strategy="margin", rounds=2), views, gold, test_gold)
    assert [p.labels for p in capped.curve] == [10, 20]


def test_zero_shot_cold_start_uses_the_prior_for_the_first_round() -> None:
    views, gold, test_gold = _views()
    prior = np.tile([0.9, 0.1], (len(gold), 1))
    prior[20:30] = [0.5, 0.5]  # planted: the zero-shot model is unsure of these rows only
    result = run_rounds(
        _params(strategy="margin", cold_start="zero-shot", rounds=1),
        views,
        gold,
        test_gold,
        prior=prior,
        labels=["neg", "pos"],
    )
    assert sorted(result.chosen) == list(range(20, 30))


def _texts(n: int, seed: int) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    good, bad, filler = list("好棒赞香快"), list("差慢冷贵臭"), list("的了是我在有这个们饭菜")
    texts, labels = [], []
    for _ in range(n):
        positive = bool(rng.random() < 0.5)
        words = [*rng.choice(good if positive else bad, 2), *rng.choice(filler, 6)]
        rng.shuffle(words)
        texts.append("".join(words))
        labels.append("正面" if positive else "负面")
    return texts, labels


def test_fit_round_matches_few_label_classifier() -> None:
    """The precomputed-views engine is FewLabelClassifier.fit (views and C by cross-validation, product of heads),
    cold and warm-started."""
    texts, labels = _texts(300, 0)
    test_texts, _ = _texts(200, 1)
    embedding = np.random.default_rng(2).normal(size=(500, 8))
    rows = list(range(60))
    model = FewLabelClassifier().fit(
        [texts[i] for i in rows], [labels[i] for i in rows], [embedding[rows]], unlabelled=texts[60:]
    )
    expected = model.predict_proba(test_texts, [embedding[300:]])
    views = build_views(texts, test_texts, [embedding[:300]], [embedding[300:]])
    names = sorted(set(labels))
    y = [names.index(labels[i]) for i in rows]
    fitted = fit_round(views, rows, y, 2)
    assert tuple(views.names[v] for v in fitted.views) == tuple(
        "tfidf" if n == "tfidf" else "embedding0" for n in model.views_
    )
    assert fitted.C == model.C_
    np.testing.assert_allclose(fitted.test_probs, expected, atol=1e-6)
    warm: dict = {}
    fit_round(views, rows[:40], y[:40], 2, fixed=(fitted.views, fitted.C), warm=warm)
    warmed = fit_round(views, rows, y, 2, fixed=(fitted.views, fitted.C), warm=warm)
    np.testing.assert_allclose(warmed.test_probs, expected, atol=2e-3)


def test_simulate_on_a_frame_end_to_end() -> None:
    texts, labels = _texts(400, 3)
    frame = pd.DataFrame({"review": texts, "gold": labels})
    params = SimulateParams(
        text_column="review",
        gold_column="gold",
        test_rows=100,
        round_size=20,
        label_budget=60,
        model="glm-4-flash",  # an API model: no local encoders, TF-IDF alone (no network is used)
    )
    result = simulate(params, frame)
    assert [p.labels for p in result.curve] == [20, 40, 60]
    assert result.test_rows == 100 and result.pool_rows == 300
    assert result.curve[-1].accuracy > 0.8
    with pytest.raises(ConfigurationError):
        simulate(params.model_copy(update={"gold_column": "missing"}), frame)


def test_params_are_checked() -> None:
    with pytest.raises(ValidationError):
        SimulateParams(strategy="nonsense")
    with pytest.raises(ValidationError):
        SimulateParams(round_size=0)
    with pytest.raises(ValidationError):
        SimulateParams(views=("tfidf",))  # fixed views without C


def test_area_under_curve() -> None:
    assert area_under_curve([(0, 0.0), (10, 1.0)]) == pytest.approx(0.5)
    assert area_under_curve([(50, 0.8)]) == pytest.approx(0.8)


def test_sentence_uncertainty_orders_unsure_sentences_first() -> None:
    sure = [{"O": 0.99, "B-PER": 0.01}] * 4
    unsure = [{"O": 0.5, "B-PER": 0.5}] * 4
    short_unsure = [{"O": 0.5, "B-PER": 0.5}]
    for strategy in ("total-entropy", "mean-entropy", "least-confidence"):
        scores = sentence_uncertainty([sure, unsure], strategy)
        assert scores[1] > scores[0]
    total = sentence_uncertainty([unsure, short_unsure], "total-entropy")
    mean = sentence_uncertainty([unsure, short_unsure], "mean-entropy")
    assert total[0] > total[1] and mean[0] == pytest.approx(mean[1])
    with pytest.raises(ConfigurationError):
        sentence_uncertainty([sure], "nonsense")


def test_ner_rounds_grow_to_the_budget() -> None:
    def sentence(name: bool) -> tuple[list[list[str]], list[str], list[str]]:
        chars = list("张三去北京") if name else list("我们去北京")
        tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"] if name else ["O", "O", "O", "B-LOC", "I-LOC"]
        return [[f"c={c}"] for c in chars], chars, tags

    data = [sentence(i % 2 == 0) for i in range(40)]
    features, chars, tags = [d[0] for d in data], [d[1] for d in data], [d[2] for d in data]
    result = run_ner_rounds(
        features,
        tags,
        features[:6],
        chars[:6],
        tags[:6],
        strategy="total-entropy",
        first=4,
        round_size=4,
        budget=12,
        crf_settings={"max_iterations": 20},
    )
    assert [p.sentences for p in result.curve] == [4, 8, 12]
    assert result.curve[-1].f1 > 0.5


def test_view_disagreement_prefers_rows_the_views_disagree_on() -> None:
    from openautoglm.usecases.annotation_simulate import view_disagreement

    a = np.array([[0.9, 0.1], [0.5, 0.5], [0.9, 0.1]])
    b = np.array([[0.1, 0.9], [0.5, 0.5], [0.9, 0.1]])
    d = view_disagreement([a, b])
    assert d[0] > d[1] and d[1] == pytest.approx(0.0) and d[2] == pytest.approx(0.0)  # both unsure: no contention
    views, gold, test_gold = _views()
    two = Views(pool=views.pool * 2, test=views.test * 2, names=("x", "y"), embeddings=views.embeddings)
    result = run_rounds(_params(strategy="view-disagreement", views=("x", "y"), label_budget=30), two, gold, test_gold)
    assert result.strategy == "view-disagreement" and len(set(result.chosen)) == 30


def test_self_training_is_train_rounds_and_uses_the_pool() -> None:
    """The simulator's self-training is train_round's (usecases.annotation.self_trained on a fitted classifier): same
    probabilities; it changes the model (the pool's surest rows join), and share 0 is the plain fit."""
    from openautoglm.adapters.models import ModelSpec
    from openautoglm.usecases.annotation import self_trained

    texts, labels = _texts(300, 0)
    test_texts, _ = _texts(200, 1)
    rows = list(range(40))
    spec = ModelSpec(model="glm-4-flash")  # an API model: no local encoders, TF-IDF alone (no network is used)
    model = FewLabelClassifier().fit([texts[i] for i in rows], [labels[i] for i in rows], unlabelled=texts[40:])
    refitted = self_trained(spec, model, [texts[i] for i in rows], [labels[i] for i in rows], texts[40:], 0.5)
    views = build_views(texts, test_texts)
    names = sorted(set(labels))
    y = [names.index(labels[i]) for i in rows]
    fixed = ((0,), model.C_)
    plain = fit_round(views, rows, y, 2, fixed=fixed)
    trained = fit_round(views, rows, y, 2, fixed=fixed, self_training=0.5)
    np.testing.assert_allclose(trained.test_probs, refitted.predict_proba(test_texts), atol=1e-6)
    np.testing.assert_allclose(plain.test_probs, model.predict_proba(test_texts), atol=1e-6)
    assert np.abs(trained.test_probs - plain.test_probs).max() > 1e-3
    np.testing.assert_allclose(
        fit_round(views, rows, y, 2, fixed=fixed, self_training=0.0).test_probs, plain.test_probs
    )


def test_warm_started_self_training_reaches_the_cold_optimum() -> None:
    from openautoglm.core.annotation.learner import self_trained_heads

    texts, labels = _texts(300, 0)
    views = build_views(texts, texts[:10]).pool
    names = sorted(set(labels))
    y = np.asarray([names.index(v) for v in labels])
    probs = fit_round(build_views(texts, texts[:10]), range(60), y[:60], 2, fixed=((0,), 10.0)).pool_probs
    ((_, cold),) = self_trained_heads(views, range(60), y[:60], probs, [0], 10.0)
    warm: dict = {}
    self_trained_heads(views, range(40), y[:40], probs, [0], 10.0, warm=warm)
    assert list(warm) == [0]
    ((_, warmed),) = self_trained_heads(views, range(60), y[:60], probs, [0], 10.0, warm=warm)
    assert warm[0] is warmed
    np.testing.assert_allclose(warmed.predict_proba(views[0]), cold.predict_proba(views[0]), atol=2e-2)  # lbfgs tol
