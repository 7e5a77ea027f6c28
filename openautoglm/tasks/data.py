"""Tasks of the data stages: load, clean (per chunk, then across chunks), validate, write.

The data-carrying tasks use ``NO_CACHE``: a file read again under the same path may hold new rows, and
hashing a large frame for a cache key costs more than the step it would skip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import SecretStr

from openautoglm.adapters.sources import SourceSpec, SqlSource
from openautoglm.adapters.sources.load import load_source
from openautoglm.adapters.validation import (
    GateMode,
    ValidationConfig,
    ValidationOutcome,
    apply_gate,
    validate_dataset,
)
from openautoglm.core.data.clean import (
    CleanConfig,
    CleanReport,
    drop_empty_and_duplicates,
    merge_reports,
    normalize_frame,
)
from openautoglm.core.data.schema import Dataset
from openautoglm.core.errors import AccountingError, SourceUnavailableError
from openautoglm.usecases.stream import Inferred


def _transient(task: object, task_run: object, state: object) -> bool:
    """Retry only errors that may go away (a database refusing connections, a network file system hiccup)."""
    try:
        state.result()  # type: ignore[attr-defined]
    except (SourceUnavailableError, TimeoutError, ConnectionError):
        return True
    except Exception:
        return False
    return False


def source_password(spec: SourceSpec) -> SecretStr | None:
    if isinstance(spec, SqlSource) and spec.password_block:
        from prefect.blocks.system import Secret

        return SecretStr(str(Secret.load(spec.password_block).get()))
    return None


@task(
    name="load-data",
    retries=3,
    retry_delay_seconds=[2, 5, 15],
    retry_condition_fn=_transient,
    cache_policy=NO_CACHE,
    tags=["io"],
)
def load_task(spec: SourceSpec, columns: Sequence[str] | None = None, rename: dict[str, str] | None = None) -> Dataset:
    """Read a source into a :class:`Dataset` (passwords from a Prefect Secret block or the environment)."""
    return load_source(spec, columns, rename, password=source_password(spec), progress=False)


normalize_chunk_task = task(name="clean-chunk", cache_policy=NO_CACHE)(normalize_frame)


@task(name="drop-empty-and-duplicates", cache_policy=NO_CACHE)
def finish_clean_task(
    dataset: Dataset, cleaned_chunks: Sequence[tuple[pd.DataFrame, CleanReport]], config: CleanConfig
) -> tuple[Dataset, CleanReport]:
    """Join the cleaned chunks (``clean-chunk`` outputs, in order), quarantine empty and duplicate rows across the
    whole dataset."""
    chunks = [frame for frame, _ in cleaned_chunks]
    reports = [report for _, report in cleaned_chunks]
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    kept, rejected, drop_report = drop_empty_and_duplicates(frame, config)
    cleaned = replace(dataset, frame=frame).reject(rejected)
    if len(cleaned.frame) != len(kept):  # reject() and drop_empty_and_duplicates() must agree
        raise AccountingError(f"{dataset.source}: cleaning kept {len(kept)} rows but the dataset {len(cleaned)}")
    return cleaned, merge_reports([*reports, drop_report], rows_in=len(dataset))


@task(name="validate", cache_policy=NO_CACHE)
def validate_task(dataset: Dataset, config: ValidationConfig) -> ValidationOutcome:
    """Run the Great Expectations suite of the task kind over the dataset."""
    return validate_dataset(dataset, config)


@task(name="apply-gate", cache_policy=NO_CACHE)
def gate_task(dataset: Dataset, outcome: ValidationOutcome, mode: GateMode) -> Dataset:
    """``fail``: raise unless the data passed; ``quarantine``: move the failing rows to the quarantine."""
    return apply_gate(dataset, outcome, mode)


@dataclass(frozen=True)
class DataSteps:
    """The chunk steps of a data-only run (the ``ingest`` flow): each chunk's cleaning and validation are task
    runs in the flow's process; its kept rows are its output (see :func:`~openautoglm.usecases.stream.stream`)."""

    clean: CleanConfig
    validation: ValidationConfig

    def normalise(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, CleanReport]:
        return normalize_chunk_task(frame, self.clean)  # type: ignore[no-any-return]

    def validate(self, dataset: Dataset) -> ValidationOutcome:
        return validate_task(dataset, self.validation)  # type: ignore[no-any-return]

    def submit(self, dataset: Dataset) -> Callable[[], Inferred]:
        return lambda: Inferred(output=dataset.frame)
