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
does not grow with the traffic. The teacher is a ``local-auto`` of its own; a serving lane's copy
(:meth:`OnlineDistilledBackend.lane_copy`) has its own teacher and shares the students.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models.base import BatchStats, ModelBackend
from openautoglm.adapters.models.embedding import _raw, encoding_seconds
from openautoglm.adapters.models.zero_shot import ZeroShotBackend
from openautoglm.core.nlp.online import OnlineStudent
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig


class _Students:
    """The students of one served model, by label configuration (least recently used dropped past ``most``);
    shared by its lane copies."""

    def __init__(self, most: int, options: dict[str, float]) -> None:
        self.most = most
        self.options = options
        self._by_config: OrderedDict[TaskConfig, OnlineStudent] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, config: TaskConfig) -> OnlineStudent:
        with self._lock:
            student = self._by_config.get(config)
            if student is None:
                student = self._by_config[config] = OnlineStudent(
                    config.labels or (),
                    warmup_rows=int(self.options["warmup_rows"]),
                    sample=self.options["sample"],
                    refit_rows=int(self.options["refit_rows"]),
                    pool_rows=int(self.options["pool_rows"]),
                )
                while len(self._by_config) > self.most:
                    self._by_config.popitem(last=False)
            else:
                self._by_config.move_to_end(config)
            return student

    def peek(self, config: TaskConfig) -> OnlineStudent | None:
        with self._lock:
            return self._by_config.get(config)


class OnlineDistilledBackend(ModelBackend):
    """Classification by an online student of ``teacher`` (see the module docstring); the rest by ``teacher``.

    Args:
        model: The model string it was built for.
        teacher: The zero-shot backend (a ``local-auto`` of its own).
        students: Label configurations with a student at most (least recently used dropped).
        warmup_rows, sample, refit_rows, pool_rows: Of each :class:`OnlineStudent`.
        threads: Threads of the teacher's encoders (a lane copy's teacher too).
        shared: The students of the model this one is a lane copy of (:meth:`lane_copy`).
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
        threads: int = 1,
        shared: _Students | None = None,
    ) -> None:
        super().__init__(model)
        self.teacher = teacher
        self.sample = sample
        self.threads = threads
        options = {"warmup_rows": warmup_rows, "sample": sample, "refit_rows": refit_rows, "pool_rows": pool_rows}
        self._students = shared or _Students(students, options)

    def lane_copy(self) -> ModelBackend:
        """A copy for another serving lane: a teacher of its own (its encoders run beside this one's), the same
        students (what one lane's traffic taught serves every lane)."""
        copy = OnlineDistilledBackend(
            self.model, new_teacher(self.threads), sample=self.sample, threads=self.threads, shared=self._students
        )
        copy.seconds_per_char = self.seconds_per_char
        return copy

    def _serves(self, config: TaskConfig) -> bool:
        """Whether a student answers under ``config`` (plain classification with two labels or more)."""
        return config.task_type == "text_classification" and not config.few_shot and len(config.labels or ()) >= 2

    # --- what a call costs: the teacher's encoders, as the student spends them ----------------------------
    def calibrate(self, config: TaskConfig, repeats: int = 2) -> None:
        self.teacher.calibrate(config, repeats)

    def timings(self) -> dict[str, float]:
        return self.teacher.timings()

    def prepare(self, config: TaskConfig) -> None:
        self.teacher.prepare(config)

    def cost(self, config: TaskConfig, rows: Sequence[Row]) -> float | None:
        """The teacher's cost until the configuration's student answers; then the fast encoder on every row and the
        teacher on the expected sample (``sample`` of it)."""
        teacher = self.teacher.cost(config, rows)
        student = self._students.peek(config) if self._serves(config) else None
        if teacher is None or student is None or not student.ready:
            return teacher
        fast = encoding_seconds(self.teacher.encoder, [len(r.text) for r in rows])
        return None if fast is None else fast + self.sample * teacher

    # --- answers ------------------------------------------------------------------------------------------
    def _teach(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        """The teacher's per-row zero-shot answers (batches under its student size: e5 scores every row)."""
        step = max(1, self.teacher.min_student_rows - 1)
        results: list[RowResult] = []
        stats = BatchStats()
        for start in range(0, len(rows), step):
            part, part_stats = self.teacher.predict(config, rows[start : start + step], cache)
            results.extend(replace(r, extra={**r.extra, "answered_by": "zero-shot"}) for r in part)
            stats = stats.merge(part_stats)
        return results, stats

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        if not self._serves(config):
            return self.teacher.predict(config, rows, cache)
        started = time.perf_counter()
        labels = list(config.labels or ())
        student = self._students.get(config)
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
            for i, result in zip(taught, teacher_results, strict=True):
                results[i] = result
            learnt = [i for i, r in zip(taught, teacher_results, strict=True) if r.status == "ok"]
            if learnt:
                onehot = np.zeros((len(learnt), len(labels)))
                onehot[np.arange(len(learnt)), [labels.index(str(results[i].prediction)) for i in learnt]] = 1.0  # type: ignore[union-attr]
                if student.learn([texts[i] for i in learnt], vectors[learnt], onehot):
                    threading.Thread(target=student.fit, name="online-student-fit", daemon=True).start()
        if answered:
            probs = student.predict([texts[i] for i in answered], vectors[answered])
            if probs is None:  # a head is never removed once fitted
                raise RuntimeError("online student has no head")
            per_row = (time.perf_counter() - started) * 1000 / len(rows)
            for j, i in enumerate(answered):
                best = int(probs[j].argmax())
                scores = {label: round(float(p), 4) for label, p in zip(labels, probs[j], strict=True)}
                results[i] = RowResult(
                    row_id=rows[i].row_id,
                    prediction=labels[best],
                    score=float(probs[j, best]),
                    raw=_raw({"method": "online-student", "scores": scores}),
                    latency_ms=per_row,
                    extra={"answered_by": "online-student"},
                )
        done = [r for r in results if r is not None]
        if len(done) != len(rows):  # every row is either taught or answered
            raise RuntimeError(f"online student answered {len(done)} of {len(rows)} rows")
        return done, stats


def new_teacher(threads: int = 1) -> ZeroShotBackend:
    """A ``local-auto`` zero-shot backend of its own (its own encoder instances)."""
    from openautoglm.adapters.models import BACKENDS, ModelSpec

    teacher = BACKENDS.resolve("local-auto").factory(ModelSpec(model="local-auto", threads=threads), None)
    if not isinstance(teacher, ZeroShotBackend):
        raise TypeError(f"local-auto is a {type(teacher).__name__}, not a zero-shot backend")
    return teacher
