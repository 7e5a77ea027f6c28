"""Dataset schema, cleaning and row accounting."""

from openautoglm.core.data.clean import CleanConfig, CleanReport, clean_frame, clean_text
from openautoglm.core.data.schema import QUARANTINE_COLUMNS, ROW_ID, Dataset, quarantine_records

__all__ = [
    "QUARANTINE_COLUMNS",
    "ROW_ID",
    "CleanConfig",
    "CleanReport",
    "Dataset",
    "clean_frame",
    "clean_text",
    "quarantine_records",
]
