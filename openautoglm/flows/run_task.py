"""Flow ``run_task``: load -> clean -> validate -> infer (batches on Dask) -> write -> evaluate -> report.

Each batch of rows is one task run on the task runner; model calls go through the on-disk call cache, and a
finished batch's result is persisted, so a rerun (or a resumed crashed run) calls the model only for what is
missing. Every step is a task; the flow only wires them (parameters and result: ``run_task_params``).
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from openautoglm.adapters.models.run import check_supported
from openautoglm.adapters.prediction import predict
from openautoglm.adapters.prompt_registry import link_prompt
from openautoglm.flows.run_task_params import RunTaskParams, RunTaskResult
from openautoglm.flows.runtime import task_runner, tracked_flow
from openautoglm.flows.stages import prepare_input, row_counts
from openautoglm.tasks.nlp import (
    batch_rows_task,
    evaluate_task,
    infer_batch_task,
    on_task_runner,
    write_results_task,
    write_sql_task,
)
from openautoglm.tasks.report import report_run_task

__all__ = ["RunTaskParams", "RunTaskResult", "run_task"]


@flow(name="run_task", task_runner=task_runner())
def run_task(params: RunTaskParams) -> RunTaskResult:
    """Run a text classification, NER or matching task over a data source with a GLM or local model."""
    logger = get_run_logger()
    params, registered = params.with_prompt()
    if params.prompt:
        logger.info("prompt from %s: %r", params.prompt, params.task.template)
    check_supported(params.model, params.task)
    what = f"{params.task.task_type} with {params.model.model}"
    with tracked_flow(
        "run_task",
        params.experiment,
        output_dir=params.output_dir,
        params=params.tracking_params(),
        what=what,
        tags={"openautoglm.model": params.model.model},
    ) as tracked:
        if registered:
            link_prompt(tracked.run.run_id, registered)
        prepared = prepare_input(params, tracked.folder)
        dataset = prepared.dataset
        work = batch_rows_task(dataset, params.text_column, params.text_pair_column, params.effective_batch_size())
        started = time.perf_counter()
        infer = infer_batch_task.with_options(refresh_cache=params.cache != "use")
        batches = predict(work, on_task_runner(infer, *params.infer_args()))
        infer_seconds = time.perf_counter() - started
        results_path, quarantine_path, output = write_results_task(
            dataset, batches.outputs, params.model, tracked.folder, params.output_format
        )
        if params.output_sql_url and params.output_table:
            written = write_sql_task(output, params.output_sql_url, params.output_table, params.output_password_env)
            logger.info("wrote %d rows to table %s", written, params.output_table)
        metrics = (
            evaluate_task(params.task, dataset, batches.outputs, params.text_column, params.label_column)
            if params.label_column
            else {}
        )
        status = {str(k): int(v) for k, v in output["status"].value_counts().items()}
        counters = {
            "seconds": time.perf_counter() - tracked.started,
            "rows_predicted": batches.rows,
            "infer_seconds": infer_seconds,
            "batches": len(work),
            "batches_cached": batches.cached_batches,
        }
        metrics_path = report_run_task(
            tracked.handle(),
            tracked.folder,
            what,
            metrics,
            batches.stats,
            status,
            counters,
            [results_path, quarantine_path],
            row_counts(dataset, prepared.clean_report),
            output.head(10),
            params.text_column,
        )
        paths = (results_path, quarantine_path, metrics_path)
        result = RunTaskResult.of(dataset, batches, status, metrics, paths, counters, tracked.tail())
        tracked.summarise(result)
    logger.info("%d rows predicted (%s); %d model calls -> %s", batches.rows, status, result.calls, results_path)
    tracked.push(result.headline())
    return result
