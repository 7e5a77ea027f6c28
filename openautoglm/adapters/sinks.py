"""Writing frames to files: Parquet, CSV (UTF-8 with BOM so spreadsheet programs read Chinese) or JSONL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pandas as pd

from openautoglm.core.registry import Registry

OutputFormat = Literal["parquet", "csv", "jsonl"]
Writer = Callable[[pd.DataFrame, Path], None]

#: File writers by format; the file suffix is the format name.
WRITERS: Registry[Writer] = Registry("output format")


@WRITERS.register("parquet")
def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Parquet, keeping dtypes."""
    frame.to_parquet(path, index=False)


@WRITERS.register("csv")
def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """CSV in UTF-8 with a byte-order mark."""
    frame.to_csv(path, index=False, encoding="utf-8-sig")


@WRITERS.register("jsonl")
def write_jsonl(frame: pd.DataFrame, path: Path) -> None:
    """One JSON object per line, non-ASCII kept as is."""
    frame.to_json(path, orient="records", lines=True, force_ascii=False)


def write_frame(frame: pd.DataFrame, folder: Path, stem: str, fmt: OutputFormat) -> Path:
    """Write ``frame`` to ``folder/stem.fmt`` (folder created) and return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.{fmt}"
    WRITERS.resolve(fmt)(frame, path)
    return path
