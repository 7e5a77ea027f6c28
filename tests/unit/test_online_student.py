"""The online student (core/nlp/online.py): the teacher answers until the warm-up is learnt, then a seeded sample;
the student learns what the teacher said (not the gold), within a bounded pool; a backend over a fake teacher."""

from __future__ import annotations

import random

import numpy as np
import pytest

from openautoglm.core.nlp.online import OnlineStudent

GOOD, BAD = "好吃满意推荐快", "难吃差慢冷退"


def reviews(n: int, seed: int = 0) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Texts whose label shows in their characters, embeddings that carry it weakly, one-hot answers."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        label = rng.randrange(2)
        chars = GOOD if label == 0 else BAD
        texts.append("".join(rng.choice(chars) for _ in range(6)) + "的外卖")
        labels.append(label)
    y = np.array(labels)
    vectors = np.random.default_rng(seed).normal(size=(n, 8)) + y[:, None] * 0.5
    return texts, vectors, np.eye(2)[y]


def test_the_teacher_answers_until_the_warmup_is_learnt_then_a_sample() -> None:
    student = OnlineStudent(["正面", "负面"], warmup_rows=50, sample=0.1, refit_rows=20, seed=3)
    texts, vectors, answers = reviews(400)
    assert student.to_teacher(7) == [True] * 7 and student.predict(texts[:3], vectors[:3]) is None
    assert not student.learn(texts[:49], vectors[:49], answers[:49])  # one short of the warm-up
    assert student.learn(texts[49:50], vectors[49:50], answers[49:50])  # due: the caller fits
    student.fit()
    assert student.ready
    asked = student.to_teacher(10_000)
    assert 0.08 < sum(asked) / len(asked) < 0.12  # the seeded sample
    probs = student.predict(texts[200:], vectors[200:])
    assert probs is not None and probs.shape == (200, 2)
    assert (probs.argmax(axis=1) == answers[200:].argmax(axis=1)).mean() > 0.95
    twin = OnlineStudent(["a", "b"], warmup_rows=1, seed=3)
    twin2 = OnlineStudent(["a", "b"], warmup_rows=1, seed=3)
    for s in (twin, twin2):
        s.learn(texts[:2], vectors[:2], np.eye(2)[[0, 1]])
        s.fit()
    assert twin.to_teacher(500) == twin2.to_teacher(500)


def test_it_learns_the_teachers_answers_not_the_gold() -> None:
    student = OnlineStudent(["正面", "负面"], warmup_rows=100)
    texts, vectors, answers = reviews(300, seed=1)
    flipped = answers[:, ::-1]  # a teacher that says the opposite
    assert student.learn(texts[:100], vectors[:100], flipped[:100])
    student.fit()
    probs = student.predict(texts[100:], vectors[100:])
    assert probs is not None and (probs.argmax(axis=1) == flipped[100:].argmax(axis=1)).mean() > 0.95


def test_refits_come_every_refit_rows_and_the_pool_is_bounded() -> None:
    student = OnlineStudent(["正面", "负面"], warmup_rows=20, refit_rows=30, pool_rows=60)
    texts, vectors, answers = reviews(200, seed=2)
    assert student.learn(texts[:20], vectors[:20], answers[:20])
    assert not student.learn(texts[20:40], vectors[20:40], answers[20:40])  # a fit is running: no second one
    student.fit()
    assert not student.learn(texts[40:69], vectors[40:69], answers[40:69])  # 29 since the fit began
    due = student.learn(texts[69:120], vectors[69:120], answers[69:120])
    assert due
    student.fit()
    assert student._head is not None and student._head.rows == 60  # the newest 60 rows only


def test_one_label_only_fits_nothing_and_the_teacher_keeps_answering() -> None:
    student = OnlineStudent(["正面", "负面"], warmup_rows=10)
    texts, vectors, _ = reviews(10)
    assert student.learn(texts, vectors, np.eye(2)[[0] * 10])
    student.fit()
    assert not student.ready and student.to_teacher(3) == [True, True, True]
    with pytest.raises(ValueError, match="two labels"):
        OnlineStudent(["only"])
