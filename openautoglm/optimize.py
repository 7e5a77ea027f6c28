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
every candidate is a nested MLflow run under one parent run per optimisation. This face holds no search: it is
:func:`openautoglm.usecases.prompt.optimise_prompt` with candidates scored in this process; the Prefect flow
(:mod:`openautoglm.flows.optimize_prompt`) runs the same function with candidates scored in parallel on Dask.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from openautoglm.adapters.prompt_search import OptimisedPrompt, as_examples, log_example_sets, round_logger
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.prompt.budget import Budget, CallMeter
from openautoglm.core.prompt.optimizers import Evaluation
from openautoglm.usecases.prompt import PromptSearch, in_process, optimise_prompt, search_settings

log = logging.getLogger(__name__)

__all__ = ["OptimisedPrompt", "PromptOptimizer", "as_examples"]


class PromptOptimizer:
    """An optimiser from :data:`~openautoglm.core.prompt.optimizers.OPTIMIZERS`: ``default``, ``template_search``,
    ``few_shot`` or ``instruction_search``; the search is :func:`openautoglm.usecases.prompt.optimise_prompt`, its
    settings the fields of :class:`~openautoglm.usecases.prompt.PromptSearch`.

    Args:
        optimizer: Its name.
        track: Log an MLflow parent run with a nested run per candidate, and the artifacts.
        experiment: MLflow experiment.
        progress: Show a progress bar (default: on a terminal).
        register: With ``track``, register the best prompt in MLflow's prompt registry (a new version each time;
            ``register_prompt`` of the model).
        **settings: Any other field of :class:`~openautoglm.usecases.prompt.PromptSearch` (``proposer``,
            ``round_size``, ``prompt_name``, ``alias``...), checked here; the task, the model and the cache are the
            pipeline's, the budget and the seed :meth:`compile`'s.
    """

    def __init__(
        self,
        optimizer: str = "default",
        *,
        track: bool = True,
        experiment: str = "optimize_prompt",
        progress: bool | None = None,
        register: bool = True,
        **settings: Any,
    ) -> None:
        self.settings = search_settings(optimizer=optimizer, register_prompt=register, **settings)
        self.optimizer = optimizer
        self.track, self.experiment, self.progress = track, experiment, progress

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
        from openautoglm.adapters.progress import progress_bar

        train, dev, test = as_examples(trainset), as_examples(devset), as_examples(testset)
        if not dev:
            raise ConfigurationError("The dev set is empty.", hint="give labelled dev examples (200 is a good size)")
        api_key = pipeline.api_key()  # may swap in the fallback model: read the spec after it
        search = PromptSearch.model_validate(
            {
                **self.settings,
                "task": pipeline.config,
                "model": pipeline.spec,
                "cache": pipeline.cache_mode,
                "budget": budget if isinstance(budget, Budget) else Budget(max_calls=budget),
                "seed": seed,
            }
        )
        title = f"{search.optimizer} prompt search on {search.model.model}"
        with (
            progress_bar(title, search.budget.max_calls, self.progress) as update,
            _tracking(self, search, len(train), len(dev), len(test)) as (run, log_round, scratch),
        ):
            if run is not None:
                log_example_sets({"train": train, "dev": dev, "test": test})
            meter = CallMeter(search.budget)

            def on_round(scored: list[Evaluation]) -> None:
                update(meter.spent.calls)
                if log_round is not None:
                    log_round(scored)

            done = optimise_prompt(
                search,
                train,
                dev,
                test,
                scorer=in_process(search.model, api_key, search.cache),
                key_for=lambda _spec: api_key,
                on_round=on_round,
                meter=meter,
                run_id=run.run_id if run is not None else None,
                folder=Path(folder) if folder else (scratch if run is not None else None),
                experiment=self.experiment,
            )
        return done.prompt


class _tracking:
    """The MLflow parent run of an optimisation and a hook logging each round's candidates as nested runs."""

    def __init__(self, optimizer: PromptOptimizer, search: PromptSearch, *sizes: int) -> None:
        self.optimizer, self.search, self.sizes = optimizer, search, sizes
        self._stack: Any = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def __enter__(self) -> tuple[Any, Callable[[list[Evaluation]], None] | None, Path]:
        self._tmp = tempfile.TemporaryDirectory(prefix="oag-prompt-")
        folder = Path(self._tmp.name)
        if not self.optimizer.track:
            return None, None, folder
        from contextlib import ExitStack

        from openautoglm.adapters.tracking import log_params, tracked_run

        search = self.search
        self._stack = ExitStack()
        run = self._stack.enter_context(
            tracked_run(self.optimizer.experiment, run_name=f"{search.optimizer}-{search.model.model}")
        )
        log_params(
            {
                "optimizer": search.optimizer,
                "model": search.model.model,
                "task_type": search.task.task_type,
                "labels": search.task.labels,
                "start_template": search.task.template,
                "max_calls": search.budget.max_calls,
                "max_tokens": search.budget.max_tokens,
                "seed": search.seed,
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
