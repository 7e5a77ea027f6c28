"""Task metrics: classification (accuracy, macro-F1, confusion matrix), NER (entity-level P/R/F1 with
seqeval), matching (Spearman/Pearson, accuracy at a threshold).

Rows without a usable prediction (``unparsed``/``error``) count as wrong; ``coverage`` says how many had one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr
from seqeval.metrics import classification_report as seqeval_report
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.metrics import precision_score as seqeval_precision
from seqeval.metrics import recall_score as seqeval_recall
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from openautoglm.core.nlp.types import Entity

MISSING = "<none>"


def classification_metrics(
    gold: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, macro-F1 over ``labels``, per-label F1 and a confusion matrix (rows gold, columns predicted;
    a last column counts rows without a prediction)."""
    if len(gold) != len(predicted):
        raise ValueError("gold and predicted differ in length")
    pred = [p if p is not None else MISSING for p in predicted]
    columns = [*labels, MISSING]
    matrix = confusion_matrix(gold, pred, labels=columns) if gold else np.zeros((len(columns), len(columns)))
    per_label = f1_score(gold, pred, labels=list(labels), average=None, zero_division=0) if gold else []
    return {
        "n": len(gold),
        "coverage": sum(p is not None for p in predicted) / len(gold) if gold else 0.0,
        "accuracy": float(accuracy_score(gold, pred)) if gold else 0.0,
        "macro_f1": float(f1_score(gold, pred, labels=list(labels), average="macro", zero_division=0)) if gold else 0.0,
        "f1_per_label": {label: float(v) for label, v in zip(labels, per_label, strict=False)},
        "confusion_matrix": {
            "labels": list(labels),
            "columns": columns,
            "matrix": np.asarray(matrix)[: len(labels)].astype(int).tolist(),
        },
    }


def spans_to_bio(length: int, entities: Sequence[Entity]) -> list[str]:
    """Character-level BIO tags for a text of ``length`` characters (overlaps: the earlier span wins)."""
    tags = ["O"] * length
    for e in sorted(entities, key=lambda e: (e.start, -(e.end - e.start))):
        if e.start < 0 or e.end > length or e.start >= e.end or any(t != "O" for t in tags[e.start : e.end]):
            continue
        tags[e.start] = f"B-{e.type}"
        for i in range(e.start + 1, e.end):
            tags[i] = f"I-{e.type}"
    return tags


def bio_to_spans(chars: Sequence[str], tags: Sequence[str]) -> tuple[Entity, ...]:
    """Entities from character-level BIO tags (an ``I-`` without a ``B-`` starts an entity)."""
    spans: list[Entity] = []
    start, kind = -1, ""
    for i, tag in enumerate([*tags, "O"]):
        inside = tag.startswith("I-") and tag[2:] == kind and start >= 0
        if not inside and start >= 0:
            spans.append(Entity(text="".join(chars[start:i]), type=kind, start=start, end=i))
            start, kind = -1, ""
        if tag.startswith("B-") or (tag.startswith("I-") and not inside):
            start, kind = i, tag[2:]
    return tuple(spans)


def ner_metrics(
    lengths: Sequence[int],
    gold: Sequence[Sequence[Entity]],
    predicted: Sequence[Sequence[Entity] | None],
    entity_types: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Entity-level micro precision, recall and F1 (seqeval, exact span and type), and per type.

    ``entity_types`` restricts scoring to those types (a model finding TIME is not penalised on PER/LOC/ORG data).
    """
    keep = set(entity_types) if entity_types else None

    def tags(length: int, entities: Sequence[Entity] | None) -> list[str]:
        chosen = [e for e in (entities or ()) if keep is None or e.type in keep]
        return spans_to_bio(length, chosen)

    y_true = [tags(n, g) for n, g in zip(lengths, gold, strict=True)]
    y_pred = [tags(n, p) for n, p in zip(lengths, predicted, strict=True)]
    report = seqeval_report(y_true, y_pred, output_dict=True, zero_division=0)
    per_type = {
        k: {"precision": v["precision"], "recall": v["recall"], "f1": v["f1-score"], "support": int(v["support"])}
        for k, v in report.items()
        if "avg" not in k
    }
    return {
        "n": len(lengths),
        "coverage": sum(p is not None for p in predicted) / len(lengths) if lengths else 0.0,
        "precision": float(seqeval_precision(y_true, y_pred, zero_division=0)),
        "recall": float(seqeval_recall(y_true, y_pred, zero_division=0)),
        "f1": float(seqeval_f1(y_true, y_pred, zero_division=0)),
        "per_type": per_type,
    }


def matching_metrics(
    gold_scores: Sequence[float] | None,
    predicted_scores: Sequence[float | None],
    *,
    gold_labels: Sequence[str] | None = None,
    predicted_labels: Sequence[str | None] | None = None,
) -> dict[str, Any]:
    """Spearman and Pearson between gold and predicted similarity (rows with both), and label accuracy."""
    result: dict[str, Any] = {
        "n": len(predicted_scores),
        "coverage": sum(s is not None for s in predicted_scores) / len(predicted_scores) if predicted_scores else 0.0,
    }
    if gold_scores is not None:
        pairs = [(g, p) for g, p in zip(gold_scores, predicted_scores, strict=True) if p is not None]
        if len(pairs) >= 2:
            g, p = (np.asarray(x, dtype=float) for x in zip(*pairs, strict=True))
            result["spearman"] = float(spearmanr(g, p).statistic)
            result["pearson"] = float(pearsonr(g, p).statistic)
    if gold_labels is not None and predicted_labels is not None:
        hits = [g == p for g, p in zip(gold_labels, predicted_labels, strict=True)]
        result["accuracy"] = sum(hits) / len(hits) if hits else 0.0
    return result
