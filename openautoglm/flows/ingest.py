"""Flow ``ingest``: load -> clean -> validate -> write, a chunk of rows at a time, tracked in MLflow, summarised as
Prefect artifacts.

Every row read ends up in exactly one place: the output file or the quarantine file (with its stage and
reason). The source streams through in chunks of ``chunk_rows`` rows (``usecases.stream``; duplicates are still
found across chunks), and the flow checks ``rows_read == rows_out + rows_quarantined`` over all of them before it
reports success. Parameters and result: ``ingest_params``.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from openautoglm.adapters.tracking import log_to_run
from openautoglm.flows.ingest_params import IngestParams, IngestResult
from openautoglm.flows.runtime import task_runner, tracked_flow
from openautoglm.flows.stages import stream_input
from openautoglm.tasks.data import DataSteps

__all__ = ["IngestParams", "IngestResult", "ingest"]


@flow(name="ingest", task_runner=task_runner(), log_prints=True)
def ingest(params: IngestParams) -> IngestResult:
    """Load, clean and validate a data source; write the kept rows and the quarantine with reasons."""
    logger = get_run_logger()
    logger.info("ingest %s", params.source.describe())
    with tracked_flow(
        "ingest", params.experiment, output_dir=params.output_dir, params=params.tracking_params()
    ) as tracked:
        steps = DataSteps(params.clean_config(), params.validation_config())
        streamed = stream_input(params, tracked.folder, steps)
        totals = streamed.totals
        data_path = streamed.join("out", tracked.folder, "data", params.output_format)
        quarantine_path = streamed.join("quarantine", tracked.folder, "quarantine", "csv")
        create_table_artifact(
            key="row-counts",
            table=streamed.counts_table(),
            description=f"Rows of {params.source.describe()} at each step",
        )
        result = IngestResult(
            passed_validation=totals.validation_success,
            rows_read=totals.rows_read,
            rows_out=totals.rows_out,
            rows_quarantined=totals.rows_quarantined,
            quarantined_by_stage=totals.quarantined_by_stage,
            data_path=data_path,
            quarantine_path=quarantine_path,
            validation_path=tracked.folder / "validation.json",
            summary_path=tracked.folder / "summary.json",
            **tracked.tail(),
        )
        tracked.summarise(result)
        streamed.store.clear()  # the run's files are written: its chunks are not needed for a resume any more
        log_to_run(  # one store write for the metrics and the tag
            tracked.handle(),
            {"seconds": result.seconds, "rows_per_second": result.rows_read / max(result.seconds, 1e-9)},
            [quarantine_path],
            tags={"openautoglm.output": str(data_path)},
        )
    logger.info(
        "kept %d of %d rows; %d quarantined -> %s",
        result.rows_out,
        result.rows_read,
        result.rows_quarantined,
        quarantine_path,
    )
    tracked.push(result.headline())
    return result
