"""The prompt optimisation use case, written once (:func:`run_prompt_search`), and its steps: the result
(:class:`OptimisedPrompt`), examples from user data, the search loop over an optimiser, the candidate table, and
logging/registering the outcome in MLflow (its runs, artifacts and prompt registry). The SDK face
(:class:`openautoglm.optimize.PromptOptimizer`) and the ``optimize_prompt`` flow call it with their own scoring:
in this process, or as task runs on the flow's task runner.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.types import Example, TaskConfig, TaskType, examples_from
from openautoglm.core.prompt.budget import Budget, CallMeter
from openautoglm.core.prompt.optimizers import OPTIMIZERS, Evaluation, SearchContext
from openautoglm.core.prompt.optimizers.base import BackendKind, Evaluate, Propose
from openautoglm.core.prompt.reference import is_prompt_ref

log = logging.getLogger(__name__)

PROMPT_FILE = "optimised_prompt.json"
_UNLIMITED = Budget(max_calls=10**12)


class OptimisedPrompt(BaseModel):
    """The best prompt an optimisation found, with its scores and cost. Save it, load it, configure with it."""

    model_config = ConfigDict(extra="forbid")

    config: TaskConfig = Field(description="Template, labels, verbalisers, few-shot examples, threshold.")
    optimizer: str
    model: str
    seed: int
    dev_score: float = Field(description="The best candidate's dev score.")
    start_dev_score: float = Field(description="The starting prompt's dev score.")
    test_score: float | None = Field(default=None, description="The best candidate on the held-out test set.")
    start_test_score: float | None = None
    calls: int = Field(description="Model requests the search needed (the budget's count, cached or not).")
    fresh_calls: int = Field(default=0, description="Calls sent to the model in this run (0 on a rerun).")
    tokens: int = 0
    budget: Budget
    candidates: int = Field(description="Candidates scored.")
    stop_reason: str = ""
    mlflow_run_id: str | None = None
    registered: str | None = Field(
        default=None,
        exclude=True,  # not in the saved JSON: the registered JSON is the saved file, byte for byte
        description="The prompt registry version it was registered as or loaded from (prompts:/name/3).",
    )

    @property
    def dev_test_gap(self) -> float | None:
        """Dev score minus test score (how much the choice fitted the dev set)."""
        return None if self.test_score is None else self.dev_score - self.test_score

    def outcome_line(self) -> str:
        """One line: dev and test scores of the best and the starting prompt, candidates, calls, why it stopped."""

        def score(value: float | None) -> str:
            return "-" if value is None else f"{value:.4f}"

        return (
            f"{self.optimizer}: best dev {self.dev_score:.4f} (start {self.start_dev_score:.4f}), test "
            f"{score(self.test_score)} (start {score(self.start_test_score)}); {self.candidates} candidates, "
            f"{self.calls} calls ({self.fresh_calls} sent): {self.stop_reason}"
        )

    def task_config(self, task_type: TaskType | None = None) -> TaskConfig:
        """The configuration for :meth:`TaskPipeline.configure(prompt=...)`."""
        if task_type is not None and task_type != self.config.task_type:
            raise ConfigurationError(
                f"This prompt was optimised for {self.config.task_type}, not {task_type}.",
                hint=f"use it with TaskPipeline('{self.config.task_type}', ...)",
            )
        return self.config

    def save(self, path: str | Path) -> Path:
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return target

    @classmethod
    def load(cls, reference: str | Path) -> OptimisedPrompt:
        """From a JSON file, an MLflow run (its id or ``runs:/<id>``) that logged ``optimised_prompt.json``, or the
        prompt registry (``prompts:/<name>/<version>`` or ``prompts:/<name>@<alias>``).

        The one loader of optimised prompts: ``TaskPipeline.configure(prompt=...)``, the run_task flow's ``prompt``
        and the CLI's ``--prompt`` all come here.
        """
        if is_prompt_ref(str(reference)):
            from openautoglm.adapters.prompt_registry import load_payload

            payload, version = load_payload(str(reference).strip())
            loaded = cls.model_validate_json(payload)
            loaded.registered = version.uri
            return loaded
        path = Path(reference)
        if path.is_file():
            return cls.model_validate_json(path.read_text(encoding="utf-8"))
        run_id = str(reference).removeprefix("runs:/").strip("/").split("/")[0]
        if not run_id or any(c in run_id for c in "\\. "):
            raise ConfigurationError(
                f"No prompt file at {reference}.",
                hint="give the path of optimised_prompt.json, an MLflow run id or prompts:/<name>@<alias>",
            )
        import mlflow

        from openautoglm.adapters.tracking import point_mlflow
        from openautoglm.settings import get_settings

        point_mlflow(get_settings())
        try:
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=PROMPT_FILE)
        except Exception as error:
            raise ConfigurationError(
                f"Could not load {PROMPT_FILE} from MLflow run '{run_id}': {error}",
                hint="check the run id (openautoglm optimize-prompt prints it) and OPENAUTOGLM_MLFLOW_TRACKING_URI",
            ) from error
        return cls.model_validate_json(Path(local).read_text(encoding="utf-8"))


def as_examples(
    data: Any, *, text_column: str = "text", label_column: str = "label", pair_column: str | None = None
) -> tuple[Example, ...]:
    """Examples from a DataFrame (text/label columns), a list of ``(text, label)`` pairs, or Examples."""
    if data is None:
        return ()
    if isinstance(data, pd.DataFrame):
        missing = [c for c in (text_column, label_column) if c not in data.columns]
        if missing:
            raise ConfigurationError(f"No column {missing} in the examples.", hint=f"columns are {list(data.columns)}")
        pairs = data[pair_column].astype(str).tolist() if pair_column else [None] * len(data)
        return tuple(
            Example(text=str(t), label=str(y), text_pair=p)
            for t, y, p in zip(data[text_column], data[label_column], pairs, strict=True)
        )
    return examples_from(data)


def run_search(
    start: TaskConfig,
    *,
    optimizer: str,
    kind: BackendKind,
    trainset: Sequence[Example],
    evaluate: Evaluate,
    meter: CallMeter,
    seed: int,
    propose: Propose | None,
    round_size: int,
) -> SearchContext:
    """Run the named optimiser from ``start``; returns its context (history, best, stop reason)."""
    search = OPTIMIZERS.resolve(optimizer)
    context = SearchContext(
        evaluate=evaluate,
        calls_left=lambda: meter.calls_left,
        trainset=tuple(trainset),
        kind=kind,
        seed=seed,
        propose=propose,
        round_size=round_size,
    )
    search(start, context)
    if not context.stop_reason:
        context.stop_reason = "search finished" if meter.refused == 0 else "budget reached"
    return context


def candidate_table(history: Sequence[Evaluation]) -> pd.DataFrame:
    """One row per scored candidate: order, origin, dev score, cost, template, verbalisers, examples."""
    return pd.DataFrame(
        [
            {
                "candidate": i,
                "origin": e.origin,
                "dev_score": e.score,
                "calls": e.calls,
                "fresh_calls": e.fresh_calls,
                "tokens": e.tokens,
                "seconds": round(e.seconds, 3),
                "failed": e.failed,
                "template": e.config.template,
                "verbalizers": json.dumps(dict(e.config.verbalizers or ()), ensure_ascii=False),
                "few_shot": len(e.config.few_shot),
            }
            for i, e in enumerate(history, start=1)
        ]
    )


def candidate_params(evaluation: Evaluation) -> dict[str, Any]:
    config = evaluation.config
    return {
        "origin": evaluation.origin,
        "template": config.template,
        "verbalizers": json.dumps(dict(config.verbalizers or ()), ensure_ascii=False),
        "few_shot": len(config.few_shot),
        "few_shot_texts": json.dumps([e.text[:60] for e in config.few_shot[:20]], ensure_ascii=False),
    }


def candidate_metrics(evaluation: Evaluation) -> dict[str, float]:
    return {
        "dev_score": float(evaluation.score or 0.0),
        "calls": evaluation.calls,
        "fresh_calls": evaluation.fresh_calls,
        "tokens": evaluation.tokens,
        "seconds": evaluation.seconds,
        "failed": evaluation.failed,
    }


def round_logger(run: Any) -> Callable[[list[Evaluation]], None]:
    """A hook logging each scored candidate as a nested MLflow run of ``run`` (a :class:`TrackedRun`)."""
    from openautoglm.adapters.tracking import log_child_run

    parent = run.handle()
    counter = {"n": 0}

    def on_round(evaluations: list[Evaluation]) -> None:
        for evaluation in evaluations:
            if evaluation.complete:
                counter["n"] += 1
                log_child_run(
                    parent, f"candidate-{counter['n']:04d}", candidate_params(evaluation), candidate_metrics(evaluation)
                )

    return on_round


def outcome(
    optimizer: str, model: str, seed: int, budget: Budget, start: TaskConfig, context: SearchContext, meter: CallMeter
) -> OptimisedPrompt:
    """The best candidate as an :class:`OptimisedPrompt` (test scores are filled in by the caller)."""
    best = context.best()
    start_eval = next((e for e in context.history if e.config == start), None)
    if best is None or start_eval is None:
        raise ConfigurationError(
            f"The budget ({budget.max_calls} calls) ran out before the starting prompt was scored on the dev set.",
            hint="give a budget of at least the dev set's size (one call per dev row) plus the labels",
        )
    return OptimisedPrompt(
        config=best.config,
        optimizer=optimizer,
        model=model,
        seed=seed,
        dev_score=float(best.score or 0.0),
        start_dev_score=float(start_eval.score or 0.0),
        calls=meter.spent.calls,
        fresh_calls=meter.spent.fresh_calls,
        tokens=meter.spent.tokens,
        budget=budget,
        candidates=len(context.history),
        stop_reason=context.stop_reason,
    )


def log_outcome(prompt: OptimisedPrompt, history: Sequence[Evaluation], folder: Path) -> dict[str, Path]:
    """Write the prompt JSON, the candidate table and the score curve to ``folder`` and log them to the active
    MLflow run; returns the files."""
    import mlflow

    from openautoglm.adapters.plots import score_curve_png
    from openautoglm.adapters.tracking import log_metrics

    files = {
        "prompt": prompt.save(folder / PROMPT_FILE),
        "candidates": folder / "candidates.csv",
        "curve": score_curve_png(
            [float(e.score or 0.0) for e in history],
            folder / "score_curve.png",
            title=f"{prompt.optimizer} on {prompt.model}",
            start=prompt.start_dev_score,
        ),
    }
    candidate_table(history).to_csv(files["candidates"], index=False)
    for path in files.values():
        mlflow.log_artifact(str(path))
    log_metrics(
        {
            "dev_score": prompt.dev_score,
            "start_dev_score": prompt.start_dev_score,
            "calls": prompt.calls,
            "fresh_calls": prompt.fresh_calls,
            "tokens": prompt.tokens,
            "candidates": prompt.candidates,
            **({"test_score": prompt.test_score} if prompt.test_score is not None else {}),
            **({"start_test_score": prompt.start_test_score} if prompt.start_test_score is not None else {}),
        }
    )
    return files


def log_example_sets(sets: dict[str, Sequence[Example]]) -> None:
    """Log each non-empty example set as an input dataset of the active MLflow run (context: its name), so an SDK
    optimisation lists its data under the run's "Datasets" as a flow's does."""
    from openautoglm.adapters.tracking import log_dataset

    for context, examples in sets.items():
        if not examples:
            continue
        columns: dict[str, list[str | None]] = {"text": [e.text for e in examples]}
        columns["label"] = [e.label for e in examples]
        if any(e.text_pair is not None for e in examples):
            columns["text_pair"] = [e.text_pair for e in examples]
        log_dataset(
            pd.DataFrame(columns),
            name=f"{context}set",
            source="PromptOptimizer.compile (examples in memory)",
            source_type="memory",
            context=context,
            tags={"rows": len(examples)},
        )


def register_outcome(prompt: OptimisedPrompt, *, name: str, alias: str | None, run_id: str | None) -> str | None:
    """Register ``prompt`` in MLflow's prompt registry (a new version of ``name``; ``alias`` moved to it when given),
    linked to ``run_id``; returns its ``prompts:/name/N`` reference (also set on ``prompt.registered``), or ``None``
    when it is too large for the registry.

    The stored JSON is what :meth:`OptimisedPrompt.save` writes, so the registered version and the run's
    ``optimised_prompt.json`` are the same text.
    """
    from openautoglm.adapters.prompt_registry import payload_tags, register_prompt

    payload = prompt.model_dump_json(indent=2)
    ref = register_prompt(
        payload,
        name=name,
        template=prompt.config.template,
        alias=alias,
        run_id=run_id,
        tags=payload_tags(json.loads(payload)),
        message=f"{prompt.optimizer} on {prompt.model}: dev {prompt.dev_score:.4f} "
        f"(start {prompt.start_dev_score:.4f})",
    )
    prompt.registered = ref.uri if ref is not None else None
    return prompt.registered


ScoreTest = Callable[[TaskConfig, TaskConfig, list[Example]], tuple[float | None, float | None]]


@dataclass(frozen=True)
class PromptPlan:
    """What one prompt search is: from ``start``, with ``optimizer`` on ``model``, within ``budget``."""

    start: TaskConfig
    optimizer: str
    model: str
    seed: int
    budget: Budget
    round_size: int


@dataclass(frozen=True)
class PromptSearchDone:
    """A finished search: the best prompt (test scores, MLflow run and registered reference filled in), every
    candidate scored, and the files written (none for an untracked search without a folder)."""

    prompt: OptimisedPrompt
    history: list[Evaluation]
    files: dict[str, Path] = field(default_factory=dict)


def run_prompt_search(
    plan: PromptPlan,
    trainset: Sequence[Example],
    testset: Sequence[Example],
    *,
    meter: CallMeter,
    kind: BackendKind,
    evaluate: Evaluate,
    propose: Propose | None,
    score_test: ScoreTest,
    run_id: str | None,
    folder: Path | None,
    register_as: tuple[str, str | None] | None = None,
) -> PromptSearchDone:
    """The prompt optimisation use case, written once: the search, the outcome, the best and the starting prompt
    on ``testset``, then (in an open MLflow run, ``run_id``) the prompt, candidate table and curve logged to it and
    the prompt registered as ``register_as`` = (name, alias). ``PromptOptimizer.compile`` and the
    ``optimize_prompt`` flow differ only in where ``evaluate``, ``propose`` and ``score_test`` score candidates:
    in this process, or as task runs on Dask."""
    context = run_search(
        plan.start,
        optimizer=plan.optimizer,
        kind=kind,
        trainset=trainset,
        evaluate=evaluate,
        meter=meter,
        seed=plan.seed,
        propose=propose,
        round_size=plan.round_size,
    )
    prompt = outcome(plan.optimizer, plan.model, plan.seed, plan.budget, plan.start, context, meter)
    if testset:
        prompt.test_score, prompt.start_test_score = score_test(prompt.config, plan.start, list(testset))
    files: dict[str, Path] = {}
    if run_id is not None:
        prompt.mlflow_run_id = run_id
        if folder is None:
            raise ConfigurationError("A tracked prompt search needs a folder for its files.")
        files = log_outcome(prompt, context.history, folder)
        if register_as is not None:
            register_outcome(prompt, name=register_as[0], alias=register_as[1], run_id=run_id)
    elif folder is not None:
        files = {"prompt": prompt.save(folder / PROMPT_FILE)}
    log.info("%s", prompt.outcome_line())
    return PromptSearchDone(prompt, list(context.history), files)
