"""Flow ``run_task``: load -> clean -> validate -> infer (batches on Dask) -> write -> evaluate -> report, a chunk
of rows at a time.

The source streams through in chunks of ``chunk_rows`` rows (``usecases.stream``): each chunk is cleaned,
validated, inferred (each batch one task run on the task runner, up to ``chunks_in_flight`` chunks at once) and
written as it comes, so memory does not grow with the source. A finished chunk is kept under its (source,
chunk, parameters) key until the run's files are joined, so a killed run started again calls the model only for
the chunks not yet written; model calls also go through the on-disk call cache and each batch's result is
persisted. The flow only wires the steps (parameters and result: ``run_task_params``).
"""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from openautoglm.adapters.models.run import check_supported
from openautoglm.adapters.prompt_registry import link_prompt
from openautoglm.flows.run_task_params import RunTaskParams, RunTaskResult
from openautoglm.flows.runtime import task_runner, tracked_flow
from openautoglm.flows.stages import stream_input
from openautoglm.tasks.nlp import InferSteps, evaluate_chunks_task, infer_batch_task, write_sql_chunks_task
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
        infer = infer_batch_task.with_options(refresh_cache=params.cache != "use")
        steps = InferSteps(
            params.clean_config(),
            params.validation_config(),
            infer=infer,
            shared=params.infer_args(),
            text_column=params.text_column,
            text_pair_column=params.text_pair_column,
            batch_size=params.effective_batch_size(),
            spec=params.model,
        )
        started = time.perf_counter()
        streamed = stream_input(params, tracked.folder, steps, keep_results=bool(params.label_column))
        infer_seconds = time.perf_counter() - started
        totals = streamed.totals
        results_path = streamed.join("out", tracked.folder, "results", params.output_format)
        quarantine_path = streamed.join("quarantine", tracked.folder, "quarantine", "csv")
        if params.output_sql_url and params.output_table:
            written = write_sql_chunks_task(
                streamed.store, totals.chunks, params.output_sql_url, params.output_table, params.output_password_env
            )
            logger.info("wrote %d rows to table %s", written, params.output_table)
        metrics = (
            evaluate_chunks_task(params.task, streamed.store, totals.chunks, params.text_column, params.label_column)
            if params.label_column
            else {}
        )
        counters = {
            "seconds": time.perf_counter() - tracked.started,
            "rows_predicted": totals.rows_out,
            "infer_seconds": infer_seconds,
            "batches": totals.batches,
            "batches_cached": totals.batches_cached,
            "chunks": totals.chunks,
            "chunks_resumed": totals.chunks_resumed,
        }
        metrics_path = report_run_task(
            tracked.handle(),
            tracked.folder,
            what,
            metrics,
            totals.stats,
            totals.status,
            counters,
            [results_path, quarantine_path],
            streamed.counts_table(),
            streamed.sample(10),
            params.text_column,
        )
        paths = (results_path, quarantine_path, metrics_path)
        result = RunTaskResult.of(totals, metrics, paths, counters, tracked.tail())
        tracked.summarise(result)
        streamed.store.clear()  # the run's files are written: its chunks are not needed for a resume any more
    status = totals.status
    logger.info("%d rows predicted (%s); %d model calls -> %s", totals.rows_out, status, result.calls, results_path)
    tracked.push(result.headline())
    return result
