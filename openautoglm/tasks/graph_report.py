"""The ``report-graph-search`` task: a finished search's metrics, files and artifacts.

It runs wherever the task runner puts it (a thread or a Dask worker), so it logs to the flow's MLflow run by id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from openautoglm.adapters.graph_runner import SearchOutcome, SearchPlan
from openautoglm.adapters.plots import search_curve_png
from openautoglm.adapters.sinks import write_json
from openautoglm.adapters.tracking import ParentRun, log_to_run


@task(name="report-graph-search", retries=2, retry_delay_seconds=[2, 10], cache_policy=NO_CACHE, tags=["io"])
def report_graph_search_task(
    run: ParentRun,
    folder: Path,
    name: str,
    algo: str,
    outcome: SearchOutcome,
    plan: SearchPlan,
    hpo: dict[str, Any] | None,
    model_path: Path | None,
) -> Path:
    """Write history.json and the search curve, log metrics, meta-features and files to the MLflow run, and leave
    the leaderboard, selection and search-prior artifacts on the flow run; returns the history file's path."""
    history, final, selection = outcome.history, outcome.final, outcome.selection
    best = history.best
    trials = [
        {
            "index": t.index,
            "round": t.round,
            "baseline": t.baseline,
            "kind": "baseline" if t.baseline else "searched",
            "attempts": t.attempts,
            "arch": t.arch.as_dict(),
            "val": t.val,
            "test": t.test,
            "seconds": t.seconds,
        }
        for t in history.trials
    ]
    history_path = write_json(folder / "history.json", trials)
    curve = search_curve_png(
        history.best_so_far(), history.test_of_best_so_far(), folder / "search_curve.png", title=f"{algo} on {name}"
    )
    metrics = {
        "best_val": best.val,
        "best_test": best.test,
        "final_val_mean": final.val,
        "final_val_std": final.val_std,
        "final_test_mean": final.test,
        "final_test_std": final.test_std,
        "trials": len(history.trials),
        "search_seconds": history.seconds,
        "max_in_flight": history.max_in_flight,
        "resubmitted": history.resubmitted,
        **{f"hpo_{k}": v for k, v in (hpo or {}).items() if isinstance(v, int | float)},
    }
    tags = {
        "openautoglm.pick_kind": outcome.kind,
        "openautoglm.pick": outcome.arch.describe(),
        "openautoglm.prior": plan.describe_prior(),
        **({"openautoglm.transfer": plan.transfer} if plan.transfer else {}),
    }
    meta = plan.meta.as_dict() if plan.meta else {}
    log_to_run(
        run,
        metrics,
        [path for path in (model_path, curve, history_path) if path is not None],
        params={f"meta_{k}": v for k, v in meta.items()},
        tags=tags,
    )
    board = [
        {
            "rank": i + 1,
            "trial": t.index,
            "kind": "baseline" if t.baseline else "searched",
            "baseline": t.baseline,
            "val": round(t.val, 4),
            "test": round(t.test, 4),
            "candidate": t.arch.describe(),
            "seconds": round(t.seconds, 2),
        }
        for i, t in enumerate(history.leaderboard(10, with_baselines=True))
    ]
    create_table_artifact(key="leaderboard", table=board, description=f"Top candidates on {name}")
    if selection is not None:
        create_table_artifact(
            key="selection",
            table=[
                {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in selection.survivors
            ],
            description=f"Survivors re-trained with {selection.select_seeds} "
            + ("folds (resampled splits)" if selection.resampled else "seeds")
            + "; the pick is the best mean val",
        )
    create_markdown_artifact(
        key="search-prior",
        markdown=f"# Search on {name}\n\n**Pick** ({outcome.kind}): {outcome.arch.describe()}\n\n"
        f"**Prior**: {plan.describe_prior()}\n\n"
        f"**Meta-features**: `{json.dumps(meta)}`\n",
    )
    return history_path
