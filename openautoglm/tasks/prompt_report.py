"""The ``report-prompt-search`` task: the best prompt beside the starting one (and the learner), as artifacts."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from openautoglm.adapters.few_label import LearnedOutcome, winner
from openautoglm.adapters.prompt_search import OptimisedPrompt, candidate_table
from openautoglm.core.prompt.optimizers import Evaluation


def fmt(value: float | None) -> str:
    """A score with 4 decimals, or '-' when there is none."""
    return "-" if value is None else f"{value:.4f}"


@task(name="report-prompt-search", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE, tags=["io"])
def report_prompt_search_task(
    prompt: OptimisedPrompt, history: Sequence[Evaluation], learned: LearnedOutcome | None
) -> None:
    """The 20 best candidates (prompt-candidates) and the optimised prompt with its scores and cost
    (optimised-prompt) on the flow run."""
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
            f"| test score | {fmt(prompt.start_test_score)} | {fmt(prompt.test_score)} |\n\n"
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
        f"{fmt(learned.dev_score)}, test {fmt(learned.test_score)} — {pick} scores higher on dev. Use it: "
        f"`openautoglm run DATA --model {learned.model}`.\n\n"
    )
