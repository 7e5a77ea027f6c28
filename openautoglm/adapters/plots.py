"""Figures logged as artifacts (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

_CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
)


def _cjk_font() -> str | None:
    from matplotlib import font_manager

    installed = {f.name for f in font_manager.fontManager.ttflist}
    return next((name for name in _CJK_FONTS if name in installed), None)


def _tick_labels(names: list[Any]) -> list[str]:
    """Label names, or their positions when they need a CJK font this machine lacks (see the JSON artifact)."""
    text = [str(n) for n in names]
    if all(t.isascii() for t in text):
        return text
    font = _cjk_font()
    if font is not None:
        plt.rcParams["font.sans-serif"] = [font, "DejaVu Sans"]
        return text
    return [f"#{i}" if not t.isascii() else t for i, t in enumerate(text)]


def confusion_matrix_png(confusion: dict[str, Any], path: Path, title: str = "Confusion matrix") -> Path:
    """Draw ``{"labels", "columns", "matrix"}`` (rows gold, columns predicted) as a PNG.

    Without a CJK font, non-ASCII labels are shown as ``#i`` (their position in ``labels``).
    """
    labels, columns, matrix = confusion["labels"], confusion["columns"], confusion["matrix"]
    fig, ax = plt.subplots(figsize=(1.2 + 0.8 * len(columns), 1.0 + 0.7 * len(labels)))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(columns)), _tick_labels(columns), rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), _tick_labels(labels))
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    ax.set_title(title)
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046)
    return _save(fig, path)


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _curve_axes(ax: Any, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")


def search_curve_png(val: list[float], test: list[float], path: Path, title: str = "Search") -> Path:
    """Best validation score so far, and the test score of that architecture, against trials."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    trials = list(range(1, len(val) + 1))
    ax.plot(trials, val, label="best validation so far")
    ax.plot(trials, test, label="test of the best-validation architecture", linestyle="--")
    _curve_axes(ax, "trained candidates", "score", title)
    return _save(fig, path)


def score_curve_png(scores: list[float], path: Path, title: str = "Prompt search", start: float | None = None) -> Path:
    """Each candidate's dev score and the best so far, against candidates scored."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    trials = list(range(1, len(scores) + 1))
    best = [max(scores[: i + 1]) for i in range(len(scores))]
    ax.scatter(trials, scores, s=10, alpha=0.5, label="candidate")
    ax.plot(trials, best, label="best so far")
    if start is not None:
        ax.axhline(start, color="grey", linestyle=":", label="starting prompt")
    _curve_axes(ax, "candidates scored", "dev score", title)
    return _save(fig, path)
