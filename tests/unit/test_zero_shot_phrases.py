"""local-auto's fixed phrases (framed label names, descriptor groups) are encoded once per process, even with the
cache off, and batches then give the same answers as the first."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models.embedding import Encoder
from openautoglm.adapters.models.zero_shot import ZeroShotBackend
from openautoglm.core.nlp.types import Row, TaskConfig


class CountingEncoder(Encoder):
    """Character counts over a small alphabet; remembers every text it was asked to encode."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.seen: list[str] = []

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        alphabet = "好差满意失望推荐快慢的了不很"
        return np.array([[t.count(c) + 0.01 for c in alphabet] for t in texts], dtype=np.float32)


def test_phrases_are_encoded_once_whatever_the_cache(tmp_path: Path) -> None:
    fast, strong = CountingEncoder("fast"), CountingEncoder("strong")
    backend = ZeroShotBackend("local-auto", fast=fast, strong=strong, min_student_rows=10_000)
    cache = CallCache(tmp_path / "calls.sqlite", mode="off")
    config = TaskConfig(task_type="text_classification", labels=("正面", "负面"))
    rows = [Row(row_id=i, text=t) for i, t in enumerate(["很好，推荐", "太差了，失望", "满意", "不满意"])]
    first, _ = backend.predict(config, rows, cache)
    phrases_after_first = len(strong.seen) - len(rows)
    assert phrases_after_first > 0
    second, _ = backend.predict(config, rows, cache)
    assert len(strong.seen) - phrases_after_first == 2 * len(rows)  # only the rows, again (the cache is off)
    assert [r.prediction for r in second] == [r.prediction for r in first]
    assert [r.score for r in second] == [r.score for r in first]
