"""The ``optimize_prompt`` flow's parameters (a form in the Prefect UI, a deployment's body), its result, and the
seeded train / dev / test split of the labelled rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import ConfigDict, Field

from openautoglm.adapters.few_label import LearnedOutcome
from openautoglm.adapters.prompt_search import OptimisedPrompt, PromptPlan
from openautoglm.adapters.sources import SourceSpec
from openautoglm.adapters.validation import GateMode, ValidationConfig
from openautoglm.core.data.clean import CleanConfig
from openautoglm.flows.runtime import RunTail
from openautoglm.usecases.prompt import PromptSearch


class OptimizePromptParams(PromptSearch):
    """Parameters of the ``optimize_prompt`` flow (a form in the Prefect UI): the search (shared with the
    ``optimize-prompt`` stage) over labelled rows read from ``source``."""

    model_config = ConfigDict(extra="forbid")

    source: SourceSpec = Field(description="Labelled data: a CSV, JSONL or Parquet file, or an SQL table/query.")
    gate: GateMode = Field(default="quarantine", description="What to do with rows that fail validation.")
    output_dir: Path | None = Field(default=None, description="Output folder (default: a new one under home).")
    experiment: str = Field(default="optimize_prompt", min_length=1, description="MLflow experiment name.")

    @property
    def columns(self) -> list[str] | None:
        """Every source column is read (the search needs the text and gold columns only)."""
        return None

    @property
    def rename(self) -> dict[str, str] | None:
        return None

    def text_columns(self) -> tuple[str, ...]:
        return (self.text_column, *([self.text_pair_column] if self.text_pair_column else []))

    def clean_config(self) -> CleanConfig:
        return CleanConfig(text_columns=self.text_columns())

    def validation_config(self) -> ValidationConfig:
        labels = self.task.labels if self.task.kind.closed_labels else None
        return ValidationConfig(
            task=self.task.task_type,
            text_columns=self.text_columns(),
            label_column=self.label_column if labels else None,
            labels=labels,
        )

    def plan(self) -> PromptPlan:
        """The search these parameters ask for."""
        return PromptPlan(self.task, self.optimizer, self.model.model, self.seed, self.budget, self.round_size)

    def tracking_params(self, rows: dict[str, int]) -> dict[str, Any]:
        """Flat, secret-free parameters for MLflow (``rows``: the split's sizes)."""
        return {
            "optimizer": self.optimizer,
            "model": self.model.model,
            "task_type": self.task.task_type,
            "labels": self.task.labels,
            "start_template": self.task.template,
            "max_calls": self.budget.max_calls,
            "max_tokens": self.budget.max_tokens,
            "seed": self.seed,
            **{f"{name}_size": n for name, n in rows.items()},
            "source": self.source.describe(),
            "proposer": self.proposer,
            "learner": self.learner,
        }


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

    def headline(self) -> dict[str, float | int | None]:
        """The figures pushed to the Prometheus Pushgateway."""
        prompt, learned = self.prompt, self.learned
        return {
            "dev_score": prompt.dev_score,
            "start_dev_score": prompt.start_dev_score,
            "test_score": prompt.test_score,
            "start_test_score": prompt.start_test_score,
            "calls": prompt.calls,
            "fresh_calls": prompt.fresh_calls,
            "candidates": prompt.candidates,
            "seconds": self.seconds,
            **({"learned_dev_score": learned.dev_score, "learned_test_score": learned.test_score} if learned else {}),
        }
