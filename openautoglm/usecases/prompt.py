"""Optimise a prompt, written once: :class:`PromptSearch` (the parameter model) and :func:`optimise_prompt`.

``PromptOptimizer.compile`` (the SDK), the ``optimize_prompt`` flow and the ``optimize-prompt`` stage differ only
in the :data:`Scorer` they pass: candidates scored in this process (:func:`in_process`), or as ``score-candidates``
task runs on the flow's runner. The rounds are cut into one chunk per worker, each within its share of what is
left of the budget; the best and the starting prompt are then scored on the test rows without a cap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from openautoglm.adapters.cache import CacheMode
from openautoglm.adapters.models import ModelSpec
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.model_names import ModelString
from openautoglm.core.nlp.types import Example, TaskConfig
from openautoglm.core.prompt.budget import Budget, CallMeter
from openautoglm.core.prompt.optimizers import OPTIMIZERS
from openautoglm.core.prompt.reference import check_alias, check_prompt_name, default_prompt_name

if TYPE_CHECKING:
    from pydantic import SecretStr

    from openautoglm.adapters.prompt_search import PromptSearchDone
    from openautoglm.core.prompt.optimizers.base import Evaluation

#: No cap (the test rows of the best and the starting prompt are scored whatever the search spent).
UNLIMITED = Budget(max_calls=10**12)


class PromptSearch(BaseModel):
    """What to search and within what: the starting prompt, the model, the optimiser, the budget and the split."""

    model_config = ConfigDict(extra="forbid")

    task: TaskConfig = Field(description="The starting prompt: task type, labels, template, verbalisers, examples.")
    label_column: str = Field(default="label", description="Column with the gold answers.")
    text_column: str = Field(default="text", description="Column with the text (the first sentence for matching).")
    text_pair_column: str | None = Field(default=None, description="Column with the second sentence (matching).")
    model: ModelSpec = Field(default=ModelSpec(model="local-use"), description="The model the prompt is for.")
    proposer: ModelString | None = Field(
        default=None,
        description="Generative model that writes new instructions (instruction_search); default: the task model "
        "when it is generative.",
    )
    credentials_block: str | None = Field(
        default=None, description="ZhipuAICredentials block with the API key (default: ZHIPUAI_API_KEY)."
    )
    optimizer: str = Field(default="default", description="default, template_search, few_shot or instruction_search.")
    learner: Literal["few-label"] | None = Field(
        default=None,
        description="few-label: also fit few-label classifier heads (char TF-IDF and the model's offline encoders, "
        "as TaskPipeline.fit) on the train rows, save them as a model folder and keep whichever of them and the "
        "best prompt scores higher on dev (text_classification).",
    )
    learner_rows: int = Field(
        default=2000, ge=10, le=100_000, description="At most this many train rows train the learner (stratified)."
    )
    budget: Budget = Field(default=Budget(), description="Hard caps: model calls and (optionally) tokens.")
    dev_size: int = Field(default=200, ge=2, description="Labelled rows the candidates are scored on.")
    test_size: int | None = Field(
        default=None, ge=0, description="Rows held out for the final score (default: 20% of the data; 0: none)."
    )
    seed: int = Field(default=0, description="Seeds the split and every choice of the search.")
    round_size: int = Field(default=4, ge=1, le=64, description="Candidates scored together (in parallel).")
    cache: CacheMode = Field(default="use", description="use: reuse earlier answers; off: call the model again.")
    register_prompt: bool = Field(default=True, description="Register the best prompt in MLflow's prompt registry.")
    prompt_name: str | None = Field(
        default=None,
        max_length=128,
        description="Its registered name (letters, digits, _ . -); default: <experiment>.<task type>.",
    )
    alias: str | None = Field(
        default=None,
        description="Point this alias (e.g. production) at the new version; default: no alias moves.",
    )

    @model_validator(mode="after")
    def _check(self) -> PromptSearch:
        OPTIMIZERS.resolve(self.optimizer)
        if self.prompt_name is not None:
            check_prompt_name(self.prompt_name)
        if self.alias is not None:
            check_alias(self.alias)
        if self.learner and self.task.task_type != "text_classification":
            raise ValueError(f"learner {self.learner!r} learns text_classification, not {self.task.task_type}")
        self.task.kind.check_pair_column(self.text_pair_column)
        return self

    def splits(self, frame: pd.DataFrame) -> tuple[list[Example], list[Example], list[Example]]:
        """The labelled rows of ``frame`` split into train / dev / test (see :func:`split_examples`)."""
        from openautoglm.adapters.prompt_search import as_examples

        if self.label_column not in frame.columns:
            raise ConfigurationError(
                f"No gold column '{self.label_column}' in the data.", hint=f"columns are {list(frame.columns)}"
            )
        examples = as_examples(
            frame, text_column=self.text_column, label_column=self.label_column, pair_column=self.text_pair_column
        )
        classify = self.task.kind.closed_labels
        return split_examples(examples, self.dev_size, self.test_size, self.seed, classify)


@dataclass(frozen=True)
class ChunkScores:
    """A chunk's evaluations and what it charged (added to the search's meter)."""

    evaluations: list[Evaluation]
    charged: list[str]
    tokens: int
    fresh_calls: int


class Pending(Protocol):
    """A chunk being scored: a Prefect future, or :class:`Done`."""

    def result(self) -> ChunkScores: ...


#: Score ``configs`` (named ``origins``) on ``examples`` within ``share`` of new requests (``seen``: already paid).
Scorer = Callable[[list[TaskConfig], list[str], list[Example], Budget, list[str]], Pending]


@dataclass(frozen=True)
class Done:
    """A chunk scored in this process."""

    scores: ChunkScores

    def result(self) -> ChunkScores:
        return self.scores


def score_chunk(
    configs: Sequence[TaskConfig],
    origins: Sequence[str],
    examples: Sequence[Example],
    spec: ModelSpec,
    api_key: SecretStr | None,
    cache_mode: CacheMode,
    share: Budget,
    seen: Sequence[str],
) -> ChunkScores:
    """Score ``configs`` on ``examples`` with at most ``share`` of new requests (``seen`` are paid for already)."""
    from openautoglm.adapters.candidates import score_candidates
    from openautoglm.adapters.models.run import default_cache

    meter = CallMeter(share, seen=seen)
    cache = default_cache(cache_mode)
    evaluations = score_candidates(spec, configs, origins, examples, meter, api_key=api_key, cache=cache)
    return ChunkScores(evaluations, meter.charged, meter.spent.tokens, meter.spent.fresh_calls)


def in_process(spec: ModelSpec, api_key: SecretStr | None, cache_mode: CacheMode) -> Scorer:
    """A :data:`Scorer` scoring each chunk here, now (the SDK's)."""

    def score(
        configs: list[TaskConfig], origins: list[str], examples: list[Example], share: Budget, seen: list[str]
    ) -> Pending:
        return Done(score_chunk(configs, origins, examples, spec, api_key, cache_mode, share, seen))

    return score


def round_evaluator(
    scorer: Scorer,
    meter: CallMeter,
    dev: Sequence[Example],
    workers: int,
    on_round: Callable[[list[Evaluation]], None] | None = None,
) -> Callable[[Sequence[TaskConfig], Sequence[str], Sequence[Example] | None], list[Evaluation]]:
    """Score a round of candidates in ``workers`` chunks, each within its share of the budget; a search round
    (scored on ``dev``) goes to ``on_round``."""

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
        pending = [scorer(list(c), list(o), list(examples or dev), share, seen) for c, o in parts]
        out: list[Evaluation] = []
        for chunk in pending:
            scores = chunk.result()
            meter.absorb(scores.charged, scores.tokens, scores.fresh_calls)
            out.extend(scores.evaluations)
        if examples is None and on_round is not None:
            on_round(out)
        return out

    return evaluate


def score_on_test(
    scorer: Scorer, best: TaskConfig, start: TaskConfig, test: Sequence[Example]
) -> tuple[float | None, float | None]:
    """The best and the starting prompt scored on the test rows (both at once, no call cap)."""
    rows = list(test)
    pending = [scorer([config], [name], rows, UNLIMITED, []) for config, name in ((best, "best"), (start, "start"))]
    best_test, start_test = (p.result().evaluations[0].score for p in pending)
    return best_test, start_test


def optimise_prompt(
    search: PromptSearch,
    train: Sequence[Example],
    dev: Sequence[Example],
    test: Sequence[Example],
    *,
    scorer: Scorer,
    key_for: Callable[[ModelSpec], SecretStr | None],
    workers: int = 1,
    on_round: Callable[[list[Evaluation]], None] | None = None,
    meter: CallMeter | None = None,
    run_id: str | None = None,
    folder: Path | None = None,
    experiment: str = "optimize_prompt",
) -> PromptSearchDone:
    """Search from ``search.task`` on ``dev`` within ``search.budget``; score the best and the starting prompt on
    ``test``; in an open MLflow run (``run_id``) log the outcome to ``folder`` and register the prompt.

    Args:
        scorer: Where candidates are scored (:func:`in_process`, or task runs).
        key_for: The API key of a model (the proposer's), resolved by the caller.
        workers: Chunks per round.
        meter: The search's meter (default: a new one on ``search.budget``), for a caller reporting the spend.
    """
    from openautoglm.adapters.candidates import backend_kind, proposer
    from openautoglm.adapters.models.run import default_cache
    from openautoglm.adapters.prompt_search import PromptPlan, run_prompt_search

    meter, kind = meter or CallMeter(search.budget), backend_kind(search.model)
    propose = None
    if search.proposer or kind == "generative":
        spec = ModelSpec(model=search.proposer) if search.proposer else search.model
        propose = proposer(spec, meter, api_key=key_for(spec), cache=default_cache(search.cache))
    plan = PromptPlan(search.task, search.optimizer, search.model.model, search.seed, search.budget, search.round_size)
    name = search.prompt_name or default_prompt_name(experiment, search.task.task_type)
    return run_prompt_search(
        plan,
        train,
        test,
        meter=meter,
        kind=kind,
        evaluate=round_evaluator(scorer, meter, dev, workers, on_round),
        propose=propose,
        score_test=lambda best, start, rows: score_on_test(scorer, best, start, rows),
        run_id=run_id,
        folder=folder,
        register_as=(name, search.alias) if search.register_prompt else None,
    )


def search_settings(**settings: Any) -> dict[str, Any]:
    """``settings`` checked against :class:`PromptSearch` (a two-label task standing in for the one a search
    starts from): what an SDK face takes as keyword arguments, validated before any data is read."""
    try:
        PromptSearch.model_validate({"task": TaskConfig(labels=("a", "b")), **settings})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigurationError(f"{where}: {first['msg']}", hint="see PromptSearch's fields") from None
    return settings


def split_examples(
    examples: Sequence[Example], dev_size: int, test_size: int | None, seed: int, stratify: bool
) -> tuple[list[Example], list[Example], list[Example]]:
    """Seeded train / dev / test split (stratified by label for classification when every label allows it)."""
    from sklearn.model_selection import train_test_split

    items = list(examples)
    test_n = round(0.2 * len(items)) if test_size is None else test_size
    if dev_size + test_n >= len(items):
        raise ConfigurationError(
            f"{len(items)} labelled rows cannot give {dev_size} dev and {test_n} test rows and leave a trainset.",
            hint="lower dev_size / test_size or give more rows",
        )

    def cut(rows: list[Example], n: int) -> tuple[list[Example], list[Example]]:
        if n == 0:
            return rows, []
        labels = [e.label for e in rows]
        strat = labels if stratify and min(pd.Series(labels).value_counts()) >= 2 else None
        try:
            rest, part = train_test_split(rows, test_size=n, random_state=seed, stratify=strat)
        except ValueError:  # too few rows of a label for a stratified cut of this size
            rest, part = train_test_split(rows, test_size=n, random_state=seed)
        return list(rest), list(part)

    rest, test = cut(items, test_n)
    train, dev = cut(rest, dev_size)
    return train, dev, test
