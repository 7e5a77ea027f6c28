"""Flow ``optimize_prompt``: ingest -> split (train / dev / test) -> search (candidates scored in parallel on Dask,
within a hard call budget) -> score the best and the starting prompt on the test split -> (with ``learner``: fit
the few-label heads on the train rows and score them on the same splits) -> artifacts.

Every candidate is a nested MLflow run under the flow's run; the best prompt is logged as
``optimised_prompt.json`` (load it with ``OptimisedPrompt.load(<path or MLflow run id>)``, or give it to
``run_task`` as ``prompt``) and registered in MLflow's prompt registry as a new version of ``prompt_name``
(``prompts:/<name>/<version>``; ``alias`` moved to it only when given). Model calls go through the call cache, so a
rerun costs no call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from pydantic import ConfigDict, Field

from openautoglm.adapters.candidates import backend_kind, proposer
from openautoglm.adapters.compute import worker_processes
from openautoglm.adapters.few_label import LEARNED_FOLDER, LearnedOutcome, log_learned, winner
from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.models.run import check_supported, default_cache
from openautoglm.adapters.prompt_search import (
    OptimisedPrompt,
    as_examples,
    candidate_table,
    log_outcome,
    outcome,
    register_outcome,
    round_logger,
    run_search,
)
from openautoglm.adapters.sources import SourceSpec
from openautoglm.adapters.tracking import log_params
from openautoglm.adapters.validation import GateMode, ValidationConfig
from openautoglm.blocks.credentials import api_key_for
from openautoglm.core.data.clean import CleanConfig
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.types import Example, TaskConfig
from openautoglm.core.prompt.budget import Budget, CallMeter
from openautoglm.core.prompt.optimizers import Evaluation
from openautoglm.core.prompt.reference import default_prompt_name
from openautoglm.flows.runtime import RunTail, task_runner, tracked_flow
from openautoglm.flows.stages import prepare
from openautoglm.settings import get_settings
from openautoglm.stages.prompt import PromptSearch
from openautoglm.tasks.prompt import ChunkScores, learn_task, score_chunk_task


class OptimizePromptParams(PromptSearch):
    """Parameters of the ``optimize_prompt`` flow (a form in the Prefect UI): the search (shared with the
    ``optimize-prompt`` stage) over labelled rows read from ``source``."""

    model_config = ConfigDict(extra="forbid")

    source: SourceSpec = Field(description="Labelled data: a CSV, JSONL or Parquet file, or an SQL table/query.")
    gate: GateMode = Field(default="quarantine", description="What to do with rows that fail validation.")
    output_dir: Path | None = Field(default=None, description="Output folder (default: a new one under home).")
    experiment: str = Field(default="optimize_prompt", min_length=1, description="MLflow experiment name.")


class OptimizePromptResult(RunTail):
    """What an optimisation found and what it cost."""

    prompt: OptimisedPrompt
    prompt_path: Path
    registered_prompt: str | None = Field(
        default=None, description="The prompt registry version (prompts:/name/N), when registered."
    )
    learned: LearnedOutcome | None = Field(default=None, description="The learner's model and scores (learner).")
    winner: Literal["prompt", "learned"] = Field(
        default="prompt", description="Which scored higher on dev: the best prompt or the learned model."
    )
    rows: dict[str, int]
    rows_quarantined: int


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


def _parallel_evaluate(params: OptimizePromptParams, meter: CallMeter, dev: list[Example], workers: int) -> Any:
    """Score a round of candidates as Prefect tasks on the task runner, each within its share of the budget."""

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
        return out

    return evaluate


@flow(name="optimize_prompt", task_runner=task_runner())
def optimize_prompt(params: OptimizePromptParams) -> OptimizePromptResult:
    """Search prompt templates, verbalisers, instructions and few-shot examples against a labelled dev set."""
    logger = get_run_logger()
    check_supported(params.model, params.task)
    with tracked_flow(
        "optimize_prompt",
        params.experiment,
        output_dir=params.output_dir,
        tags={"openautoglm.model": params.model.model},
        what=f"optimize_prompt ({params.optimizer}, {params.model.model})",
    ) as tracked:
        folder = tracked.folder
        columns = [params.text_column, *([params.text_pair_column] if params.text_pair_column else [])]
        labels = params.task.labels if params.task.task_type == "text_classification" else None
        prepared = prepare(
            params.source,
            columns=None,
            rename=None,
            clean=CleanConfig(text_columns=tuple(columns)),
            validation=ValidationConfig(
                task=params.task.task_type,
                text_columns=tuple(columns),
                label_column=params.label_column if labels else None,
                labels=labels,
            ),
            gate=params.gate,
            chunk_rows=20_000,
            folder=folder,
        )
        frame = prepared.dataset.frame
        if params.label_column not in frame.columns:
            raise ConfigurationError(
                f"No gold column '{params.label_column}' in the data.", hint=f"columns are {list(frame.columns)}"
            )
        examples = as_examples(
            frame, text_column=params.text_column, label_column=params.label_column, pair_column=params.text_pair_column
        )
        train, dev, test = split_examples(
            examples, params.dev_size, params.test_size, params.seed, params.task.task_type == "text_classification"
        )
        logger.info("%d labelled rows: %d train, %d dev, %d test", len(examples), len(train), len(dev), len(test))
        log_params(
            {
                "optimizer": params.optimizer,
                "model": params.model.model,
                "task_type": params.task.task_type,
                "labels": params.task.labels,
                "start_template": params.task.template,
                "max_calls": params.budget.max_calls,
                "max_tokens": params.budget.max_tokens,
                "seed": params.seed,
                "train_size": len(train),
                "dev_size": len(dev),
                "test_size": len(test),
                "source": params.source.describe(),
                "proposer": params.proposer,
                "learner": params.learner,
            }
        )

        meter = CallMeter(params.budget)
        cache = default_cache(params.cache)
        kind = backend_kind(params.model)
        propose = None
        if params.proposer or kind == "generative":
            spec = ModelSpec(model=params.proposer) if params.proposer else params.model
            key = api_key_for(spec, params.credentials_block)
            propose = proposer(spec, meter, api_key=key, cache=cache)
        workers = worker_processes(get_settings()) or 1
        score_round = _parallel_evaluate(params, meter, dev, workers)
        log_round = round_logger(tracked.run)

        def evaluate(
            configs: Sequence[TaskConfig], origins: Sequence[str], on: Sequence[Example] | None
        ) -> list[Evaluation]:
            out = score_round(configs, origins, on)
            if on is None:
                log_round(out)
                best = max((e.score for e in out if e.score is not None), default=None)
                logger.info(
                    "%d candidates scored (round best %s); %d of %d calls spent",
                    len(out),
                    "-" if best is None else f"{best:.4f}",
                    meter.spent.calls,
                    params.budget.max_calls,
                )
            return out

        context = run_search(
            params.task,
            optimizer=params.optimizer,
            kind=kind,
            trainset=train,
            evaluate=evaluate,
            meter=meter,
            seed=params.seed,
            propose=propose,
            round_size=params.round_size,
        )
        prompt = outcome(params.optimizer, params.model.model, params.seed, params.budget, params.task, context, meter)
        if test:
            unlimited = Budget(max_calls=10**12)
            futures = [
                score_chunk_task.submit(
                    [config], [name], test, params.model, params.credentials_block, params.cache, unlimited, []
                )
                for config, name in ((prompt.config, "best"), (params.task, "start"))
            ]
            best_test, start_test = (f.result().evaluations[0].score for f in futures)
            prompt.test_score, prompt.start_test_score = best_test, start_test
        prompt.mlflow_run_id = tracked.run.run_id
        learned = _learn(params, train, dev, test, folder) if params.learner else None
        files = log_outcome(prompt, context.history, folder)
        if params.register_prompt:
            name = params.prompt_name or default_prompt_name(params.experiment, params.task.task_type)
            register_outcome(prompt, name=name, alias=params.alias, run_id=tracked.run.run_id)
        _artifacts(params, prompt, context.history, learned)
        logger.info(
            "best dev %.4f (start %.4f), test %s (start %s); %d candidates, %d calls (%d sent to the model): %s",
            prompt.dev_score,
            prompt.start_dev_score,
            _fmt(prompt.test_score),
            _fmt(prompt.start_test_score),
            prompt.candidates,
            prompt.calls,
            prompt.fresh_calls,
            prompt.stop_reason,
        )
        result = OptimizePromptResult(
            prompt=prompt,
            prompt_path=files["prompt"],
            registered_prompt=prompt.registered,
            learned=learned,
            winner=winner(prompt.dev_score, learned),
            rows={"train": len(train), "dev": len(dev), "test": len(test)},
            rows_quarantined=len(prepared.dataset.quarantine),
            **tracked.tail(),
        )
        tracked.summarise(result)
    tracked.push(
        {
            "dev_score": prompt.dev_score,
            "start_dev_score": prompt.start_dev_score,
            "test_score": prompt.test_score,
            "start_test_score": prompt.start_test_score,
            "calls": prompt.calls,
            "fresh_calls": prompt.fresh_calls,
            "candidates": prompt.candidates,
            "seconds": result.seconds,
            **({"learned_dev_score": learned.dev_score, "learned_test_score": learned.test_score} if learned else {}),
        }
    )
    return result


def _learn(
    params: OptimizePromptParams, train: list[Example], dev: list[Example], test: list[Example], folder: Path
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
        _fmt(learned.dev_score),
        _fmt(learned.test_score),
    )
    return learned


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _artifacts(
    params: OptimizePromptParams,
    prompt: OptimisedPrompt,
    history: Sequence[Evaluation],
    learned: LearnedOutcome | None,
) -> None:
    table = candidate_table(history)
    top = table.sort_values("dev_score", ascending=False).head(20)
    create_table_artifact(
        key="prompt-candidates",
        table=top.assign(template=top["template"].str.slice(0, 80)).to_dict(orient="records"),
        description="The 20 best candidates by dev score",
    )
    curve = [max(table["dev_score"].iloc[: i + 1]) for i in range(len(table))]
    marks = sorted({0, len(curve) // 4, len(curve) // 2, 3 * len(curve) // 4, len(curve) - 1}) if curve else []
    curve_rows = "\n".join(f"| {i + 1} | {curve[i]:.4f} |" for i in marks)
    verbal = "\n".join(f"- {label}: {text}" for label, text in (prompt.config.verbalizers or ()))
    create_markdown_artifact(
        key="optimised-prompt",
        markdown=(
            f"# Optimised prompt ({prompt.optimizer}, {prompt.model})\n\n"
            f"| | starting prompt | optimised |\n|---|---|---|\n"
            f"| dev score | {prompt.start_dev_score:.4f} | {prompt.dev_score:.4f} |\n"
            f"| test score | {_fmt(prompt.start_test_score)} | {_fmt(prompt.test_score)} |\n\n"
            f"{_learned_markdown(prompt, learned)}"
            f"**Template**\n\n```\n{prompt.config.template}\n```\n\n"
            f"**Verbalisers**\n\n{verbal or '(the labels)'}\n\n"
            f"**Few-shot examples / prototypes**: {len(prompt.config.few_shot)}\n\n"
            f"**Cost**: {prompt.calls} of {prompt.budget.max_calls} calls ({prompt.fresh_calls} sent to the model, "
            f"the rest from the cache), {prompt.tokens} tokens, {prompt.candidates} candidates; stopped: "
            f"{prompt.stop_reason}.\n\n"
            f"**Best dev score so far**\n\n| candidates scored | best dev score |\n|---|---|\n{curve_rows}\n\n"
            f"Use it: `openautoglm run DATA --prompt {prompt.registered or prompt.mlflow_run_id}` or "
            f"`TaskPipeline(...).configure(prompt='{prompt.registered or prompt.mlflow_run_id}')`."
        ),
        description="The best prompt, its scores against the starting prompt, and the cost",
    )


def _learned_markdown(prompt: OptimisedPrompt, learned: LearnedOutcome | None) -> str:
    if learned is None:
        return ""
    pick = "the learned model" if winner(prompt.dev_score, learned) == "learned" else "the prompt"
    return (
        f"**Few-label learner** ({' x '.join(learned.views)}, {learned.labelled_rows} labelled rows): dev "
        f"{_fmt(learned.dev_score)}, test {_fmt(learned.test_score)} — {pick} scores higher on dev. Use it: "
        f"`openautoglm run DATA --model {learned.model}`.\n\n"
    )
