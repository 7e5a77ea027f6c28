"""Progress bars for long reads, shown on a terminal and silent elsewhere (logs, CI, Prefect workers)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def wants_progress(progress: bool | None) -> bool:
    """``None`` means: show a bar only when stderr is a terminal."""
    return sys.stderr.isatty() if progress is None else progress


@contextmanager
def progress_bar(description: str, total: float | None, enabled: bool | None) -> Iterator[Callable[[float], None]]:
    """Yield ``update(completed)``; draws a Rich bar when enabled, does nothing otherwise.

    Args:
        description: Shown left of the bar (``"reading feedback.csv"``).
        total: Units to reach (bytes, rows); ``None`` shows a spinner-like open bar.
        enabled: True/False, or None for "on a terminal only".
    """
    if not wants_progress(enabled):
        yield lambda completed: None
        return
    columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn()]
    columns += [MofNCompleteColumn()] if total is None else [TimeRemainingColumn()]
    with Progress(*columns, TimeElapsedColumn(), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda completed: bar.update(task, completed=completed)
