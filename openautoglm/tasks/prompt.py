"""Tasks of the prompt optimiser: score a chunk of candidates on a worker, within a share of the budget; fit the
few-label learner beside the search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE

from openautoglm.adapters.cache import CacheMode
from openautoglm.adapters.candidates import score_candidates
from openautoglm.adapters.few_label import learn
from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.models.run import default_cache
from openautoglm.blocks.credentials import api_key_for
from openautoglm.core.nlp.types import Example, TaskConfig
from openautoglm.core.prompt.budget import Budget, CallMeter
from openautoglm.core.prompt.optimizers.base import Evaluation


@dataclass(frozen=True)
class ChunkScores:
    """A chunk's evaluations and what it charged (the flow adds it to the search's meter)."""

    evaluations: list[Evaluation]
    charged: list[str]
    tokens: int
    fresh_calls: int


def score_chunk(
    configs: Sequence[TaskConfig],
    origins: Sequence[str],
    examples: Sequence[Example],
    spec: ModelSpec,
    credentials_block: str | None,
    cache_mode: CacheMode,
    share: Budget,
    seen: Sequence[str],
) -> ChunkScores:
    """Score ``configs`` on ``examples`` with at most ``share`` of new requests (``seen`` are paid for already)."""
    api_key = api_key_for(spec, credentials_block)
    meter = CallMeter(share, seen=seen)
    evaluations = score_candidates(
        spec, configs, origins, examples, meter, api_key=api_key, cache=default_cache(cache_mode)
    )
    return ChunkScores(evaluations, meter.charged, meter.spent.tokens, meter.spent.fresh_calls)


# No Prefect result cache: the call cache already makes a rescored candidate free, and the budget must see it.
score_chunk_task = task(name="score-candidates", cache_policy=NO_CACHE, tags=["model"])(score_chunk)

#: The few-label learner (fit, save, score on dev and test), one task run.
learn_task = task(name="few-label-learner", cache_policy=NO_CACHE, tags=["model"])(learn)
