"""Scoring prompt candidates with a real backend, through the call cache and under a call budget."""

from __future__ import annotations

import time
from collections.abc import Sequence

import pandas as pd
from pydantic import SecretStr

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models import ModelSpec, load_backend
from openautoglm.adapters.models.run import default_cache, predict_rows
from openautoglm.core.data.schema import ROW_ID
from openautoglm.core.nlp.prompts import Message
from openautoglm.core.nlp.results import evaluate
from openautoglm.core.nlp.types import Example, Row, TaskConfig
from openautoglm.core.prompt.budget import BudgetExhausted, CallMeter, metered
from openautoglm.core.prompt.optimizers.base import BackendKind, Evaluation, Mistake, Propose

SHOWN_MISTAKES = 8


def primary_metric(config: TaskConfig, metrics: dict[str, object]) -> float:
    """The number an optimiser maximises (the task type's: accuracy for classification and labelled matching,
    entity F1 for NER, Spearman for scored matching)."""
    return config.kind.primary(metrics)


def _frame(examples: Sequence[Example]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            ROW_ID: range(len(examples)),
            "text": [e.text for e in examples],
            "text_pair": [e.text_pair for e in examples],
            "gold": [e.label for e in examples],
        }
    )


def score_candidate(
    spec: ModelSpec,
    config: TaskConfig,
    examples: Sequence[Example],
    meter: CallMeter,
    *,
    api_key: SecretStr | None = None,
    cache: CallCache | None = None,
    origin: str = "",
) -> Evaluation:
    """Score ``config`` on ``examples``; calls go on ``meter`` (an :class:`Evaluation` without a score when the
    budget runs out part-way: what was answered is cached, so nothing is lost)."""
    rows = [Row(row_id=i, text=e.text, text_pair=e.text_pair) for i, e in enumerate(examples)]
    calls, tokens, fresh = meter.spent.calls, meter.spent.tokens, meter.spent.fresh_calls
    started = time.perf_counter()
    try:
        with metered(meter):
            results, _ = predict_rows(spec, config, rows, api_key=api_key, cache=cache or default_cache())
    except BudgetExhausted:
        return Evaluation(
            config=config,
            score=None,
            calls=meter.spent.calls - calls,
            tokens=meter.spent.tokens - tokens,
            seconds=time.perf_counter() - started,
            fresh_calls=meter.spent.fresh_calls - fresh,
            origin=origin,
        )
    metrics = evaluate(config, _frame(examples), results, text_column="text", gold_column="gold")
    correct = tuple(config.kind.correct(config, e, r) for e, r in zip(examples, results, strict=True))
    mistakes = tuple(
        Mistake(text=e.text, gold=e.label, predicted=None if r.prediction is None else str(r.prediction))
        for e, r, ok in zip(examples, results, correct, strict=True)
        if not ok
    )[:SHOWN_MISTAKES]
    return Evaluation(
        config=config,
        score=primary_metric(config, metrics),
        calls=meter.spent.calls - calls,
        tokens=meter.spent.tokens - tokens,
        seconds=time.perf_counter() - started,
        fresh_calls=meter.spent.fresh_calls - fresh,
        failed=sum(r.status != "ok" for r in results),
        origin=origin,
        mistakes=mistakes,
        correct=correct,
    )


def score_candidates(
    spec: ModelSpec,
    configs: Sequence[TaskConfig],
    origins: Sequence[str],
    examples: Sequence[Example],
    meter: CallMeter,
    *,
    api_key: SecretStr | None = None,
    cache: CallCache | None = None,
) -> list[Evaluation]:
    """Score candidates one after another; once the budget stops one, the rest are returned unscored."""
    out: list[Evaluation] = []
    for config, origin in zip(configs, origins, strict=True):
        if out and not out[-1].complete:
            out.append(Evaluation(config=config, score=None, origin=origin))
            continue
        out.append(score_candidate(spec, config, examples, meter, api_key=api_key, cache=cache, origin=origin))
    return out


def backend_kind(spec: ModelSpec) -> BackendKind:
    """What the model is: an embedding model, a generative (chat) model, or a tagger."""
    from openautoglm.adapters.models.base import GenerativeBackend
    from openautoglm.adapters.models.embedding import EmbeddingBackend

    if spec.remote:  # an API model: a chat model, not loaded here
        return "generative"
    backend = load_backend(spec)
    if isinstance(backend, EmbeddingBackend):
        return "embedding"
    if isinstance(backend, GenerativeBackend):
        return "generative"
    return "tagger"


def proposer(
    spec: ModelSpec, meter: CallMeter, *, api_key: SecretStr | None = None, cache: CallCache | None = None
) -> Propose:
    """A function answering a chat with ``spec``'s generative model, through the cache and on ``meter``."""
    from openautoglm.adapters.models.base import BatchStats, GenerativeBackend

    backend = load_backend(spec, api_key)
    if not isinstance(backend, GenerativeBackend):
        from openautoglm.core.errors import ConfigurationError

        raise ConfigurationError(
            f"The proposer '{spec.model}' is not a generative model.",
            hint="use a GLM model (glm-4) or a local chat model (local:/folder) as proposer",
        )

    def propose(messages: list[Message]) -> str:
        with metered(meter):
            return backend._call(messages, cache or default_cache(), BatchStats()).text

    return propose
