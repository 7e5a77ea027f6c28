"""``local-online``: ``local-auto``'s zero-shot teacher, distilled online into a fast student per label set.

The API's requests come a few rows at a time, so ``local-auto`` scores each of them with e5 (~25 ms a text on one
core here: ~30 requests/s on two cores). ``local-online`` keeps, per label configuration, an
:class:`~openautoglm.core.nlp.online.OnlineStudent`: the teacher (``local-auto`` on small batches, i.e. e5 label
prototypes) answers every row until it has labelled ``warmup_rows`` of them, then only a seeded 3% sample; a
class-balanced logistic head on character TF-IDF and USE embeddings (~1.5 ms a text, USE included) answers the
rest and is refitted, on a background thread, each time 200 more teacher labels arrived. Each result's ``raw``
says who answered (``"method": "zero-shot"`` or ``"online-student"``).

What it is not: a model that stays fixed. Answers to the same text may change as the student learns the traffic
(a served cache returns the first answer). Matching, few-shot configurations and other tasks are the teacher's.
Students are kept for the ``students`` most recent label configurations (each a bounded pool of rows), so memory
does not grow with the traffic.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models.base import BatchStats, ModelBackend
from openautoglm.adapters.models.embedding import _raw
from openautoglm.adapters.models.zero_shot import ZeroShotBackend
from openautoglm.core.nlp.online import OnlineStudent
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig


class OnlineDistilledBackend(ModelBackend):
    """Classification by an online student of ``teacher`` (see the module docstring); the rest by ``teacher``.

    Args:
        model: The model string it was built for.
        teacher: The zero-shot backend (``local-auto``'s instance: its encoders are loaded once).
        students: Label configurations with a student at most (least recently used dropped).
        warmup_rows, sample, refit_rows, pool_rows: Of each :class:`OnlineStudent`.
    """

    tasks = ZeroShotBackend.tasks
    kind = "embedding"

    def __init__(
        self,
        model: str,
        teacher: ZeroShotBackend,
        *,
        students: int = 16,
        warmup_rows: int = 200,
        sample: float = 0.03,
        refit_rows: int = 200,
        pool_rows: int = 4000,
    ) -> None:
        super().__init__(model)
        self.teacher = teacher
        self.max_students = students
        self.options = {"warmup_rows": warmup_rows, "sample": sample, "refit_rows": refit_rows, "pool_rows": pool_rows}
        self._students: OrderedDict[TaskConfig, OnlineStudent] = OrderedDict()
        self._lock = threading.Lock()

    def _student(self, config: TaskConfig) -> OnlineStudent:
        with self._lock:
            student = self._students.get(config)
            if student is None:
                student = self._students[config] = OnlineStudent(config.labels or (), **self.options)  # type: ignore[arg-type]
                while len(self._students) > self.max_students:
                    self._students.popitem(last=False)
            else:
                self._students.move_to_end(config)
            return student

    def prepare(self, config: TaskConfig) -> None:
        self.teacher.prepare(config)

    def _teach(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        """The teacher's per-row zero-shot answers (batches under its student size: e5 scores every row)."""
        step = max(1, self.teacher.min_student_rows - 1)
        results: list[RowResult] = []
        stats = BatchStats()
        for start in range(0, len(rows), step):
            part, part_stats = self.teacher.predict(config, rows[start : start + step], cache)
            results.extend(part)
            stats = stats.merge(part_stats)
        return results, stats

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        if config.task_type != "text_classification" or config.few_shot or len(config.labels or ()) < 2:
            return self.teacher.predict(config, rows, cache)
        started = time.perf_counter()
        labels = list(config.labels or ())
        student = self._student(config)
        asked = student.to_teacher(len(rows))
        taught = [i for i, ask in enumerate(asked) if ask]
        answered = [i for i, ask in enumerate(asked) if not ask]
        results: list[RowResult | None] = [None] * len(rows)
        stats = BatchStats()
        texts = [r.text for r in rows]
        vectors = self.teacher.encoder.encode(texts, cache, stats)  # USE: the student's embedding view
        if taught:
            teacher_results, teacher_stats = self._teach(config, [rows[i] for i in taught], cache)
            stats = stats.merge(teacher_stats)
            learnt = [(i, r) for i, r in zip(taught, teacher_results, strict=True) if r.status == "ok"]
            for i, result in zip(taught, teacher_results, strict=True):
                results[i] = result
            if learnt:
                onehot = np.zeros((len(learnt), len(labels)))
                for j, (_, result) in enumerate(learnt):
                    onehot[j, labels.index(str(result.prediction))] = 1.0
                index = [i for i, _ in learnt]
                if student.learn([texts[i] for i in index], vectors[index], onehot):
                    threading.Thread(target=student.fit, name="online-student-fit", daemon=True).start()
        if answered:
            probs = student.predict([texts[i] for i in answered], vectors[answered])
            if probs is None:  # a head is never removed once fitted
                raise RuntimeError("online student has no head")
            per_row = (time.perf_counter() - started) * 1000 / len(rows)
            for j, i in enumerate(answered):
                best = int(probs[j].argmax())
                results[i] = RowResult(
                    row_id=rows[i].row_id,
                    prediction=labels[best],
                    score=float(probs[j, best]),
                    raw=_raw(
                        {
                            "method": "online-student",
                            "scores": {label: round(float(p), 4) for label, p in zip(labels, probs[j], strict=True)},
                        }
                    ),
                    latency_ms=per_row,
                )
        done = [r for r in results if r is not None]
        if len(done) != len(rows):  # every row is either taught or answered
            raise RuntimeError(f"online student answered {len(done)} of {len(rows)} rows")
        return done, stats
