"""``TaskPipeline.fit``: a head learned from few labelled rows (and unlabelled ones), on small synthetic data with a
tiny fake encoder (no model is loaded)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from openautoglm import TaskPipeline
from openautoglm.adapters.models import learned
from openautoglm.adapters.models.embedding import Encoder
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.learn import FewLabelClassifier, choose_views

GOOD = ["好吃", "推荐", "满意", "很棒", "新鲜", "实惠"]
BAD = ["难吃", "太慢", "失望", "很差", "凉了", "太贵"]
FILLER = ["今天", "外卖", "这家店", "中午", "点了", "米饭", "送餐", "包装"]


def reviews(n: int, seed: int) -> pd.DataFrame:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        label = "负面" if rng.random() < 0.65 else "正面"  # unbalanced, like real review sets
        words = rng.sample(GOOD if label == "正面" else BAD, 2) + rng.sample(FILLER, 3)
        rng.shuffle(words)
        rows.append({"text": "，".join(words), "label": label})
    return pd.DataFrame(rows)


class HashEncoder(Encoder):
    """A 16-d fake: each character adds a fixed random vector (so texts sharing characters are close)."""

    name = "hash-test"

    def _encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 16), dtype=np.float32)
        for i, text in enumerate(texts):
            for ch in text:
                out[i] += np.random.default_rng(ord(ch)).normal(size=16)
        return out


@pytest.fixture
def fake_encoder(monkeypatch: pytest.MonkeyPatch, home: Path) -> HashEncoder:
    encoder = HashEncoder()
    monkeypatch.setattr(learned, "feature_encoders", lambda spec: [encoder])
    return encoder


def test_fit_learns_from_few_labels_and_the_unlabelled_rows(fake_encoder: HashEncoder) -> None:
    labelled, unlabelled, test = reviews(24, 0), reviews(300, 1), reviews(200, 2)
    pipeline = TaskPipeline("text_classification", "local-use").fit(labelled, unlabelled=unlabelled["text"].tolist())
    assert pipeline.config.labels == ("正面", "负面")  # configured from the labels seen
    results = pipeline.evaluate(test, label_column="label", progress=False)
    assert results.metrics["accuracy"] >= 0.95
    assert results.frame["raw"].str.contains('"method": "learned"').all()
    assert results.frame["score"].between(0.5, 1.0).all()


def test_class_weights_come_from_the_labelled_rows_only() -> None:
    texts = ["好吃", "好吃推荐", "难吃", "难吃太慢", "太慢", "很差", "失望", "凉了"]
    labels = ["正面", "正面", "负面", "负面", "负面", "负面", "负面", "负面"]
    model = FewLabelClassifier().fit(texts, labels, unlabelled=["好吃"] * 50)  # unlabelled rows carry no labels
    assert model.classes_ == sorted(["正面", "负面"])
    assert model.predict(["好吃推荐", "难吃很差"]) == ["正面", "负面"]


def test_fit_errors_say_what_to_do(fake_encoder: HashEncoder) -> None:
    with pytest.raises(ConfigurationError, match="learns text_classification and ner"):
        TaskPipeline("semantic_matching", "local-use").fit([("好吃", "好吃")])
    with pytest.raises(ConfigurationError, match="not configured"):
        TaskPipeline("text_classification", "local-use").configure(labels=["正面", "负面"]).fit(
            [("好吃", "正面"), ("难吃", "中性")]
        )
    with pytest.raises(ConfigurationError, match="at least two labels"):
        FewLabelClassifier().fit(["好吃", "好吃推荐"], ["正面", "正面"])
    with pytest.raises(ConfigurationError, match="No column 'label'"):
        TaskPipeline("text_classification", "local-use").fit(pd.DataFrame({"text": ["好吃"]}))


def test_cross_validation_keeps_the_informative_views_and_drops_a_noise_view() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=150)
    signal = np.eye(3)[y] + rng.normal(scale=0.6, size=(150, 3))  # predicts the label
    other = np.eye(3)[y] @ rng.normal(size=(3, 8)) + rng.normal(scale=1.5, size=(150, 8))  # weaker, independent
    noise = rng.normal(size=(150, 40))  # a head on it only memorises
    views = [sparse.csr_matrix(v) for v in (signal, other, noise)]
    subset, C = choose_views(views, y, Cs=(4.0, 10.0))
    assert 0 in subset and 2 not in subset
    assert C in (4.0, 10.0)
    assert choose_views(views[:1], y) == ((0,), 4.0)  # one view, one C: nothing to choose


def test_fit_records_the_chosen_views() -> None:
    frame = reviews(120, 3)
    rng = np.random.default_rng(1)
    noise = rng.normal(size=(len(frame), 30))
    model = FewLabelClassifier().fit(frame["text"].tolist(), frame["label"].tolist(), [noise])
    assert model.views_ == ("tfidf",)
    assert model.predict(["好吃，推荐", "难吃，太慢"], [rng.normal(size=(2, 30))]) == ["正面", "负面"]
