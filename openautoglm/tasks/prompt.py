"""Tasks of the prompt optimiser: score a chunk of candidates on a worker, within a share of the budget (the use
case, :mod:`openautoglm.usecases.prompt`, cuts the rounds); fit the few-label learner beside the search."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from openautoglm.adapters.cache import CacheMode
from openautoglm.adapters.few_label import LEARNED_FOLDER, LearnedOutcome, learn, log_learned
from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.prompt_search import round_logger
from openautoglm.blocks.credentials import api_key_for
from openautoglm.core.nlp.types import Example, TaskConfig
from openautoglm.core.prompt.budget import Budget, CallMeter
from openautoglm.core.prompt.optimizers.base import Evaluation
from openautoglm.tasks.prompt_report import fmt
from openautoglm.usecases.prompt import ChunkScores, Scorer
from openautoglm.usecases.prompt import score_chunk as score_with_key


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
    """:func:`openautoglm.usecases.prompt.score_chunk` on a worker: the key is resolved here from the block name
    or the environment, never a task input."""
    api_key = api_key_for(spec, credentials_block)
    return score_with_key(configs, origins, examples, spec, api_key, cache_mode, share, seen)


# No Prefect result cache: the call cache already makes a rescored candidate free, and the budget must see it.
score_chunk_task = task(name="score-candidates", cache_policy=NO_CACHE, tags=["model"])(score_chunk)

#: The few-label learner (fit, save, score on dev and test), one task run.
learn_task = task(name="few-label-learner", cache_policy=NO_CACHE, tags=["model"])(learn)


def task_scorer(params: Any) -> Scorer:
    """A :data:`~openautoglm.usecases.prompt.Scorer` submitting each chunk as a ``score-candidates`` task run."""

    def score(
        configs: list[TaskConfig], origins: list[str], examples: list[Example], share: Budget, seen: list[str]
    ) -> Any:
        return score_chunk_task.submit(
            configs, origins, examples, params.model, params.credentials_block, params.cache, share, seen
        )

    return score


def round_reporter(run: Any, meter: CallMeter, max_calls: int) -> Callable[[list[Evaluation]], None]:
    """Each search round: every candidate a nested MLflow run of ``run``, and a line in the flow's log."""
    log_round = round_logger(run)

    def report(out: list[Evaluation]) -> None:
        log_round(out)
        best = max((e.score for e in out if e.score is not None), default=None)
        get_run_logger().info(
            "%d candidates scored (round best %s); %d of %d calls spent",
            len(out),
            fmt(best),
            meter.spent.calls,
            max_calls,
        )

    return report


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
