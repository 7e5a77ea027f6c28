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
from openautoglm.adapters.models.run import default_cache
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.learn import FewLabelClassifier, choose_views

GOOD = ["好吃", "推荐", "满意", "很棒", "新鲜", "实惠"]
BAD = ["难吃", "太慢", "失望", "很差", "凉了", "太贵"]
FILLER = ["今天", "外卖", "这家店", "中午", "点了", "米饭", "送餐", "包装"]
ONE = pd.DataFrame({"text": ["好吃"]})


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


class CountingEncoder(HashEncoder):
    """Counts the texts it encodes."""

    def __init__(self) -> None:
        self.encoded = 0

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.encoded += len(texts)
        return super()._encode(texts)


def test_a_fitted_classifier_saves_as_a_folder_that_loads_as_a_model(
    monkeypatch: pytest.MonkeyPatch, home: Path, tmp_path: Path
) -> None:
    encoder = CountingEncoder()
    monkeypatch.setattr(learned, "feature_encoders", lambda spec: [encoder])
    labelled, test = reviews(60, 4), reviews(80, 5)
    pipeline = TaskPipeline("text_classification", "local-use", cache="off").fit(labelled)
    before = pipeline.run(test[["text"]], progress=False).frame
    folder = pipeline.save(tmp_path / "head")
    manifest = (folder / "openautoglm-model.json").read_text(encoding="utf-8")
    assert '"kind": "learned-classifier"' in manifest and "hash-test" in manifest

    loaded = TaskPipeline("text_classification", f"local:{folder}", cache="off").configure(labels=["正面", "负面"])
    after = loaded.evaluate(test, label_column="label", progress=False)
    assert after.frame["prediction"].tolist() == before["prediction"].tolist()
    assert after.frame["score"].round(6).tolist() == before["score"].round(6).tolist()
    assert after.metrics["accuracy"] >= 0.95
    swapped = loaded.configure(labels=["负面", "正面"]).run(test[["text"]], progress=False).frame  # by name
    assert swapped["prediction"].tolist() == before["prediction"].tolist()
    with pytest.raises(ConfigurationError, match="never learned the labels"):
        loaded.configure(labels=["正面", "中性"]).run(test[["text"]].head(2), progress=False)


def test_only_the_views_in_the_product_are_encoded(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    encoder = CountingEncoder()
    monkeypatch.setattr(learned, "feature_encoders", lambda spec: [encoder])
    head = FewLabelClassifier(C=4.0).fit(["好吃", "推荐", "难吃", "太慢"] * 10, ["正面", "正面", "负面", "负面"] * 10)
    model = learned.LearnedClassifier(learned.ModelSpec(model="local-use"), head)  # TF-IDF alone: no embedding
    rows = [learned.Row(row_id=i, text=t) for i, t in enumerate(["好吃推荐", "难吃"])]
    results, _ = model.predict(learned.TaskConfig(labels=("正面", "负面")), rows, default_cache("off"))
    assert [r.prediction for r in results] == ["正面", "负面"] and encoder.encoded == 0


def test_a_folder_with_foreign_parts_or_other_encoders_is_refused(
    monkeypatch: pytest.MonkeyPatch, home: Path, tmp_path: Path
) -> None:
    import os

    import skops.io
    from sklearn.preprocessing import FunctionTransformer

    monkeypatch.setattr(learned, "feature_encoders", lambda spec: [HashEncoder()])
    rng = np.random.default_rng(2)
    labels = ["正面", "负面"] * 30
    signal = np.eye(2)[[i % 2 for i in range(60)]] + rng.normal(scale=0.2, size=(60, 2))  # the embedding view knows
    texts = ["".join(rng.choice(list(FILLER), 2)) for _ in range(60)]  # the characters do not
    head = FewLabelClassifier().fit(texts, labels, [signal])
    assert "embedding0" in head.views_
    folder = learned.LearnedClassifier(learned.ModelSpec(model="local-use"), head).save(tmp_path / "head")

    other = HashEncoder()
    other.name = "hash-test-v2"
    monkeypatch.setattr(learned, "feature_encoders", lambda spec: [other])
    with pytest.raises(ConfigurationError, match="fitted on the encoders"):
        TaskPipeline("text_classification", f"local:{folder}").configure(labels=["正面", "负面"]).run(ONE)

    skops.io.dump({"vectorizer": FunctionTransformer(os.system), "heads": []}, folder / "heads.skops")
    with pytest.raises(ConfigurationError, match="holds types"):
        TaskPipeline("text_classification", f"local:{folder}").configure(labels=["正面", "负面"]).run(ONE)
    skops.io.dump({"vectorizer": FunctionTransformer(), "heads": []}, folder / "heads.skops")
    with pytest.raises(ConfigurationError, match="not a TF-IDF vectorizer"):
        TaskPipeline("text_classification", f"local:{folder}").configure(labels=["正面", "负面"]).run(ONE)
