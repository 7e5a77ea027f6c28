"""Tasks of the prompt optimiser: score a chunk of candidates on a worker, within a share of the budget; fit the
few-label learner beside the search."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from openautoglm.adapters.cache import CacheMode
from openautoglm.adapters.candidates import proposer, score_candidates
from openautoglm.adapters.few_label import LEARNED_FOLDER, LearnedOutcome, learn, log_learned
from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.models.run import default_cache
from openautoglm.blocks.credentials import api_key_for
from openautoglm.core.nlp.types import Example, TaskConfig
from openautoglm.core.prompt.budget import Budget, CallMeter
from openautoglm.core.prompt.optimizers.base import Evaluation
from openautoglm.tasks.prompt_report import fmt


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


def round_evaluator(
    params: Any,
    meter: CallMeter,
    dev: list[Example],
    workers: int,
    log_round: Callable[[list[Evaluation]], None] | None = None,
) -> Any:
    """Score a round of candidates as ``score-prompt-chunk`` runs on the task runner (``workers`` chunks), each
    within its share of the budget (``params``: the flow's search parameters). A search round (scored on ``dev``)
    goes to ``log_round`` (each candidate a nested MLflow run) and to the flow's log."""

    def evaluate(
        configs: Sequence[TaskConfig], origins: Sequence[str], examples: Sequence[Example] | None
    ) -> list[Evaluation]:
        chunks = max(1, min(workers, len(configs)))
        size = -(-len(configs) // chunks)
        parts = [(configs[i : i + size], origins[i : i + size]) for i in range(0, len(configs), size)]
        tokens_left = meter.tokens_left
        share = Budget(
            max_calls=max(0, meter.calls_left) // len(parts),
            max_tokens=None if tokens_left is None else max(0, tokens_left) // len(parts),
        )
        seen = sorted(meter.seen)
        futures = [
            score_chunk_task.submit(
                list(c),
                list(o),
                list(examples or dev),
                params.model,
                params.credentials_block,
                params.cache,
                share,
                seen,
            )
            for c, o in parts
        ]
        out: list[Evaluation] = []
        for future in futures:
            scores: ChunkScores = future.result()
            meter.absorb(scores.charged, scores.tokens, scores.fresh_calls)
            out.extend(scores.evaluations)
        if examples is None and log_round is not None:
            log_round(out)
            best = max((e.score for e in out if e.score is not None), default=None)
            get_run_logger().info(
                "%d candidates scored (round best %s); %d of %d calls spent",
                len(out),
                fmt(best),
                meter.spent.calls,
                params.budget.max_calls,
            )
        return out

    return evaluate


def search_proposer(params: Any, meter: CallMeter, kind: str) -> Any:
    """The generative model writing new instructions (``params.proposer``, or the model itself when it is a
    generative one); None for an encoder without a proposer."""
    if not (params.proposer or kind == "generative"):
        return None
    spec = ModelSpec(model=params.proposer) if params.proposer else params.model
    key = api_key_for(spec, params.credentials_block)
    return proposer(spec, meter, api_key=key, cache=default_cache(params.cache))


def score_on_test(params: Any, best: TaskConfig, test: list[Example]) -> tuple[float | None, float | None]:
    """The best and the starting prompt scored on the test rows (two task runs at once, no call cap)."""
    unlimited = Budget(max_calls=10**12)
    futures = [
        score_chunk_task.submit(
            [config], [name], test, params.model, params.credentials_block, params.cache, unlimited, []
        )
        for config, name in ((best, "best"), (params.task, "start"))
    ]
    best_test, start_test = (f.result().evaluations[0].score for f in futures)
    return best_test, start_test


def learn_beside(
    params: Any, train: list[Example], dev: list[Example], test: list[Example], folder: Path
) -> LearnedOutcome:
    """The learner beside the search: fitted on the train rows, scored on dev and test, logged to the run."""
    learned: LearnedOutcome = learn_task(
        params.model,
        params.task,
        train,
        dev,
        test,
        folder / LEARNED_FOLDER,
        max_rows=params.learner_rows,
        seed=params.seed,
        cache_mode=params.cache,
    )
    log_learned(learned)
    get_run_logger().info(
        "learner %s (%s, %d labelled rows): dev %s, test %s",
        learned.learner,
        " x ".join(learned.views),
        learned.labelled_rows,
        fmt(learned.dev_score),
        fmt(learned.test_score),
    )
    return learned
