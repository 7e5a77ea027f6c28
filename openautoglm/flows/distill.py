"""Flow ``distill``: ingest -> clean -> validate -> teach (budgeted) -> train student -> register.

A teacher (a GLM model through the API, or an offline pipeline such as ``local-auto``) labels the rows in a seeded
order within a call budget, through the call cache; a small student learns its labels and is measured on
held-out rows (agreement with the teacher; accuracy of both against a gold column when one is named), then logged
to MLflow and registered in the Model Registry. Load it with ``model="mlflow:/<name>/<version>"`` anywhere a model
is named (SDK, ``run_task``, the REST API), or from the run folder's ``student`` with ``model="local:<folder>"``.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from openautoglm import __version__
from openautoglm.adapters.models.run import check_supported, model_identity
from openautoglm.flows.distill_params import DistillFlowResult, DistillParams
from openautoglm.flows.runtime import task_runner, tracked_flow
from openautoglm.flows.stages import prepare_input
from openautoglm.tasks.distill import register_student_task, teach_task, train_student_task
from openautoglm.usecases.distill import distil

__all__ = ["DistillFlowResult", "DistillParams", "distill"]


@flow(name="distill", task_runner=task_runner())
def distill(params: DistillParams) -> DistillFlowResult:
    """Distil a teacher (GLM or an offline pipeline) into a small student registered in the MLflow Model Registry."""
    logger = get_run_logger()
    check_supported(params.teacher, params.task)
    options = params.distill
    with tracked_flow(
        "distill",
        params.experiment,
        output_dir=params.output_dir,
        params=params.tracking_params(),
        tags={"openautoglm.model": params.teacher.model},
        what=f"distill ({params.teacher.model} -> {options.student} '{options.name}')",
    ) as tracked:
        folder = tracked.folder
        prepared = prepare_input(params, folder)
        version = f"{__version__}|{model_identity(params.teacher)}"
        done = distil(
            prepared.dataset.frame,
            task=params.task,
            options=options,
            teach=lambda rows: teach_task(
                rows,
                params.task,
                params.teacher,
                params.credentials_block,
                params.cache,
                options.budget,
                options.seed,
                params.effective_batch_size(),
                version,
            ),
            teacher=params.teacher.model,
            text_column=params.text_column,
            label_column=params.label_column,
            cache_mode=params.cache,
            folder=folder,
            learn=train_student_task,
            keep=register_student_task,
        )
        registered, saved, metrics = done.registered, done.folder, done.metrics
        _summary_artifact(params, registered.model, done.labels, metrics)
        summary_path = folder / "summary.json"
        result = DistillFlowResult(
            name=registered.name,
            version=registered.version,
            model=registered.model,
            labels=done.labels,
            metrics=metrics,
            rows_read=prepared.dataset.rows_read,
            rows_quarantined=len(prepared.dataset.quarantine),
            student_folder=saved,
            summary_path=summary_path,
            **tracked.tail(),
        )
        tracked.summarise(result)
    logger.info(
        "%s -> %s: %d teacher calls, %s", params.teacher.model, registered.model, metrics["teacher_calls"], metrics
    )
    return result


def _summary_artifact(params: DistillParams, model: str, labels: list[str], metrics: dict[str, float | int]) -> None:
    lines = "\n".join(f"| {k} | {v} |" for k, v in metrics.items())
    create_markdown_artifact(
        key="distill-summary",
        markdown=(
            f"# {params.teacher.model} -> {params.distill.student}: `{model}`\n\nlabels {labels}; load it with "
            f'`TaskPipeline("text_classification", model="{model}")`\n\n| metric | value |\n|---|---|\n{lines}\n'
        ),
        description="The registered student and its metrics (no input rows)",
    )
