"""Flow ``ingest``: load -> clean -> validate -> write, tracked in MLflow, summarised as Prefect artifacts.

Every row read ends up in exactly one place: the output file or the quarantine file (with its stage and
reason). The flow checks ``rows_read == rows_out + rows_quarantined`` before it reports success. Parameters and
result: ``ingest_params``.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from openautoglm.adapters.tracking import log_to_run
from openautoglm.flows.ingest_params import IngestParams, IngestResult
from openautoglm.flows.runtime import task_runner, tracked_flow
from openautoglm.flows.stages import prepare_input, row_counts
from openautoglm.tasks.data import write_outputs_task

__all__ = ["IngestParams", "IngestResult", "ingest"]


@flow(name="ingest", task_runner=task_runner(), log_prints=True)
def ingest(params: IngestParams) -> IngestResult:
    """Load, clean and validate a data source; write the kept rows and the quarantine with reasons."""
    logger = get_run_logger()
    logger.info("ingest %s", params.source.describe())
    with tracked_flow(
        "ingest", params.experiment, output_dir=params.output_dir, params=params.tracking_params()
    ) as tracked:
        prepared = prepare_input(params, tracked.folder, params.chunk_rows)
        dataset = prepared.dataset
        summary = dataset.summary()
        data_path, quarantine_path = write_outputs_task(dataset, tracked.folder, params.output_format)
        create_table_artifact(
            key="row-counts",
            table=row_counts(dataset, prepared.clean_report),
            description=f"Rows of {params.source.describe()} at each step",
        )
        result = IngestResult(
            passed_validation=prepared.passed,
            rows_read=summary["rows_read"],
            rows_out=summary["rows_out"],
            rows_quarantined=summary["rows_quarantined"],
            quarantined_by_stage=summary["quarantined_by_stage"],
            data_path=data_path,
            quarantine_path=quarantine_path,
            validation_path=prepared.validation_path,
            summary_path=tracked.folder / "summary.json",
            **tracked.tail(),
        )
        tracked.summarise(result)
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
