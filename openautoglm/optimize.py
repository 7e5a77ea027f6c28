"""Prompt optimisation: ``PromptOptimizer(...).compile(pipeline, trainset, devset, budget, seed)``.

Example::

    pipeline = TaskPipeline("text_classification", "local-use").configure(
        prompt_template="判断以下用户反馈的情感倾向:{text}", labels=["正面", "负面"])
    best = PromptOptimizer("default").compile(pipeline, trainset, devset, budget=2000, seed=0, testset=test)
    best.save("best_prompt.json")
    pipeline.configure(prompt=OptimisedPrompt.load("best_prompt.json"))   # or OptimisedPrompt.load(<MLflow run id>)
    pipeline.configure(prompt="prompts:/optimize_prompt.text_classification@production")   # the prompt registry

A tracked optimisation registers the best prompt in MLflow's prompt registry as a new version of ``prompt_name``
(default ``<experiment>.<task type>``), moving ``alias`` to it only when one is given.

Every candidate is scored through the call cache (a rerun costs no call) and under a hard call/token budget;
every candidate is a nested MLflow run under one parent run per optimisation. For the same work as a Prefect
flow with candidates scored in parallel on Dask, see :mod:`openautoglm.flows.optimize_prompt`.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from openautoglm.adapters.prompt_search import (
    _UNLIMITED,
    OptimisedPrompt,
    PromptPlan,
    as_examples,
    log_example_sets,
    round_logger,
    run_prompt_search,
)
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.types import Example, TaskConfig
from openautoglm.core.prompt.budget import Budget, CallMeter
from openautoglm.core.prompt.optimizers import OPTIMIZERS, Evaluation
from openautoglm.core.prompt.reference import check_alias, check_prompt_name, default_prompt_name

log = logging.getLogger(__name__)

__all__ = ["OptimisedPrompt", "PromptOptimizer", "as_examples"]


class PromptOptimizer:
    """An optimiser from :data:`~openautoglm.core.prompt.optimizers.OPTIMIZERS`: ``default``, ``template_search``,
    ``few_shot`` or ``instruction_search``.

    Args:
        optimizer: Its name.
        proposer: Generative model writing instructions (``instruction_search``; default: the task model when it
            is generative).
        round_size: Candidates scored per round.
        track: Log an MLflow parent run with a nested run per candidate, and the artifacts.
        experiment: MLflow experiment.
        progress: Show a progress bar (default: on a terminal).
        register: With ``track``, register the best prompt in MLflow's prompt registry (a new version each time).
        prompt_name: Its registered name (default ``<experiment>.<task type>``, e.g.
            ``optimize_prompt.text_classification``); letters, digits, ``_ . -``.
        alias: Point this alias (e.g. ``production``) at the new version; default: no alias moves, so what others
            load by alias changes only when asked.
    """

    def __init__(
        self,
        optimizer: str = "default",
        *,
        proposer: str | None = None,
        round_size: int = 4,
        track: bool = True,
        experiment: str = "optimize_prompt",
        progress: bool | None = None,
        register: bool = True,
        prompt_name: str | None = None,
        alias: str | None = None,
    ) -> None:
        OPTIMIZERS.resolve(optimizer)
        if prompt_name is not None:
            check_prompt_name(prompt_name)
        if alias is not None:
            check_alias(alias)
        self.register, self.prompt_name, self.alias = register, prompt_name, alias
        self.optimizer = optimizer
        self.proposer = proposer
        self.round_size = round_size
        self.track = track
        self.experiment = experiment
        self.progress = progress

    def compile(
        self,
        pipeline: Any,
        trainset: Iterable[Any] | pd.DataFrame,
        devset: Iterable[Any] | pd.DataFrame,
        budget: Budget | int = 2000,
        seed: int = 0,
        *,
        testset: Iterable[Any] | pd.DataFrame | None = None,
        folder: str | Path | None = None,
    ) -> OptimisedPrompt:
        """Search from ``pipeline``'s configuration; returns the best prompt (scored on ``testset`` if given)."""
        from openautoglm.adapters.candidates import backend_kind, proposer, score_candidate, score_candidates
        from openautoglm.adapters.models import ModelSpec
        from openautoglm.adapters.models.run import default_cache
        from openautoglm.adapters.progress import progress_bar

        budget = budget if isinstance(budget, Budget) else Budget(max_calls=budget)
        train, dev, test = as_examples(trainset), as_examples(devset), as_examples(testset)
        if not dev:
            raise ConfigurationError("The dev set is empty.", hint="give labelled dev examples (200 is a good size)")
        start: TaskConfig = pipeline.config
        pipeline._resolve_key()
        spec, api_key = pipeline.spec, pipeline._api_key
        cache = default_cache(pipeline.cache_mode)
        meter = CallMeter(budget)
        kind = backend_kind(spec)
        propose = None
        if self.proposer or kind == "generative":
            propose = proposer(
                ModelSpec(model=self.proposer) if self.proposer else spec, meter, api_key=api_key, cache=cache
            )

        with progress_bar(f"{self.optimizer} prompt search on {spec.model}", budget.max_calls, self.progress) as update:

            def evaluate(
                configs: Sequence[TaskConfig], origins: Sequence[str], examples: Sequence[Example] | None
            ) -> list[Evaluation]:
                out = score_candidates(spec, configs, origins, examples or dev, meter, api_key=api_key, cache=cache)
                update(meter.spent.calls)
                if examples is None and on_round is not None:
                    on_round(out)
                return out

            on_round: Callable[[list[Evaluation]], None] | None = None
            with _tracking(self, pipeline, budget, seed, len(train), len(dev), len(test)) as (
                run,
                on_round_hook,
                folder_path,
            ):
                on_round = on_round_hook
                if run is not None:
                    log_example_sets({"train": train, "dev": dev, "test": test})
                unlimited = CallMeter(_UNLIMITED)

                def score_test(
                    best: TaskConfig, first: TaskConfig, examples: list[Example]
                ) -> tuple[float | None, float | None]:
                    scored = [
                        score_candidate(spec, c, examples, unlimited, api_key=api_key, cache=cache)
                        for c in (best, first)
                    ]
                    return scored[0].score, scored[1].score

                name = self.prompt_name or default_prompt_name(self.experiment, start.task_type)
                done = run_prompt_search(
                    PromptPlan(start, self.optimizer, spec.model, seed, budget, self.round_size),
                    train,
                    test,
                    meter=meter,
                    kind=kind,
                    evaluate=evaluate,
                    propose=propose,
                    score_test=score_test,
                    run_id=run.run_id if run is not None else None,
                    folder=Path(folder) if folder else (folder_path if run is not None else None),
                    register_as=(name, self.alias) if self.register else None,
                )
        return done.prompt


class _tracking:
    """The MLflow parent run of an optimisation and a hook logging each round's candidates as nested runs."""

    def __init__(self, optimizer: PromptOptimizer, pipeline: Any, budget: Budget, seed: int, *sizes: int) -> None:
        self.optimizer, self.pipeline, self.budget, self.seed, self.sizes = optimizer, pipeline, budget, seed, sizes
        self._stack: Any = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> tuple[Any, Callable[[list[Evaluation]], None] | None, Path]:
        self._tmp = tempfile.TemporaryDirectory(prefix="oag-prompt-")
        folder = Path(self._tmp.name)
        if not self.optimizer.track:
            return None, None, folder
        from contextlib import ExitStack

        from openautoglm.adapters.tracking import log_params, tracked_run

        self._stack = ExitStack()
        run = self._stack.enter_context(
            tracked_run(self.optimizer.experiment, run_name=f"{self.optimizer.optimizer}-{self.pipeline.spec.model}")
        )
        config: TaskConfig = self.pipeline.config
        log_params(
            {
                "optimizer": self.optimizer.optimizer,
                "model": self.pipeline.spec.model,
                "task_type": config.task_type,
                "labels": config.labels,
                "start_template": config.template,
                "max_calls": self.budget.max_calls,
                "max_tokens": self.budget.max_tokens,
                "seed": self.seed,
                "train_size": self.sizes[0],
                "dev_size": self.sizes[1],
                "test_size": self.sizes[2],
            }
        )
        return run, round_logger(run), folder

    def __exit__(self, *exc: object) -> None:
        if self._stack is not None:
            self._stack.__exit__(*exc)
        if self._tmp is not None:
            self._tmp.cleanup()
