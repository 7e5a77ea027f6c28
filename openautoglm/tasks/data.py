"""Tasks of the data stages (load, clean per chunk and across chunks, validate, gate), wrapping the use cases'
functions, and the chunk steps of a streamed data-only run (:class:`DataSteps`).

The data-carrying tasks use ``NO_CACHE``: a file read again under the same path may hold new rows, and
hashing a large frame for a cache key costs more than the step it would skip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from prefect import task
from prefect.cache_policies import NO_CACHE

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
    normalize_frame,
)
from openautoglm.core.data.schema import Dataset
from openautoglm.core.errors import SourceUnavailableError
from openautoglm.usecases.data import finish_clean, load_dataset
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


load_task = task(
    name="load-data",
    retries=3,
    retry_delay_seconds=[2, 5, 15],
    retry_condition_fn=_transient,
    cache_policy=NO_CACHE,
    tags=["io"],
)(load_dataset)

normalize_chunk_task = task(name="clean-chunk", cache_policy=NO_CACHE)(normalize_frame)

finish_clean_task = task(name="drop-empty-and-duplicates", cache_policy=NO_CACHE)(finish_clean)


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
    runs in the flow's process, each waiting for the one before it (so the run graph shows clean-chunk ->
    validate -> what follows); its kept rows are its output (see :func:`~openautoglm.usecases.stream.stream`)."""

    clean: CleanConfig
    validation: ValidationConfig
    #: The state of the chunk's last task run, which the next step's task runs wait for (a data edge in the UI).
    after: list[Any] = field(default_factory=list, compare=False)

    def normalise(self, frame: pd.DataFrame) -> tuple[pd.DataFrame, CleanReport]:
        state = normalize_chunk_task(frame, self.clean, return_state=True)
        self.after[:] = [state]
        return state.result()  # type: ignore[no-any-return]

    def validate(self, dataset: Dataset) -> ValidationOutcome:
        state = validate_task(dataset, self.validation, wait_for=list(self.after), return_state=True)
        self.after[:] = [state]
        return state.result()  # type: ignore[no-any-return]

    def submit(self, dataset: Dataset) -> Callable[[], Inferred]:
        return lambda: Inferred(output=dataset.frame)
