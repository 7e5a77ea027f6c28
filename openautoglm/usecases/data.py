"""Loading and cleaning a whole dataset, as plain functions: the ``load`` and ``clean`` catalogue stages call them
(a stage calls no task's ``.fn``); ``tasks/data.py``'s ``load-data`` and ``drop-empty-and-duplicates`` tasks are to
wrap them (``task(...)(load_dataset)``) rather than repeat their bodies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pandas as pd
from pydantic import SecretStr

from openautoglm.adapters.sources import SourceSpec, SqlSource
from openautoglm.adapters.sources.load import load_source
from openautoglm.core.data.clean import CleanConfig, CleanReport, drop_empty_and_duplicates, merge_reports
from openautoglm.core.data.schema import Dataset
from openautoglm.core.errors import AccountingError


def source_password(spec: SourceSpec) -> SecretStr | None:
    """The password in the Prefect Secret block an SQL source names (``password_block``), else ``None``."""
    if isinstance(spec, SqlSource) and spec.password_block:
        from prefect.blocks.system import Secret

        return SecretStr(str(Secret.load(spec.password_block).get()))
    return None


def load_dataset(
    spec: SourceSpec, columns: Sequence[str] | None = None, rename: dict[str, str] | None = None
) -> Dataset:
    """Read a source into a :class:`Dataset` (passwords from a Prefect Secret block or the environment)."""
    return load_source(spec, columns, rename, password=source_password(spec), progress=False)


def finish_clean(
    dataset: Dataset, cleaned_chunks: Sequence[tuple[pd.DataFrame, CleanReport]], config: CleanConfig
) -> tuple[Dataset, CleanReport]:
    """Join the cleaned chunks (``normalize_frame`` outputs, in order), quarantine empty and duplicate rows across
    the whole dataset."""
    chunks = [frame for frame, _ in cleaned_chunks]
    reports = [report for _, report in cleaned_chunks]
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    kept, rejected, drop_report = drop_empty_and_duplicates(frame, config)
    cleaned = replace(dataset, frame=frame).reject(rejected)
    if len(cleaned.frame) != len(kept):  # reject() and drop_empty_and_duplicates() must agree
        raise AccountingError(f"{dataset.source}: cleaning kept {len(kept)} rows but the dataset {len(cleaned)}")
    return cleaned, merge_reports([*reports, drop_report], rows_in=len(dataset))
