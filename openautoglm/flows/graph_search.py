"""Flow ``graph_search``: meta-features -> prior -> baselines first, then the search with ``parallel`` trials in
flight on Dask -> optional HPO -> robust selection (survivors re-trained on more seeds or resampled folds, pick by
mean validation) -> the pick reported over ``final_seeds`` seeds -> best model saved -> report; an MLflow parent
run with a nested run per trial. The use case is ``usecases.graph.search_graph`` (``AutoGraph`` and the
graph-search stage run it too); this flow wires it to task runs (parameters and result: ``graph_search_params``)."""

from __future__ import annotations

import time

from prefect import flow, get_run_logger

from openautoglm.adapters.graph_runner import Trials
from openautoglm.adapters.tracking import supports_parallel_writers
from openautoglm.flows.graph_search_params import GraphSearchParams, GraphSearchResult, hpo_summary
from openautoglm.flows.runtime import task_runner, tracked_flow
from openautoglm.tasks.graph import meta_task, record_trial, save_model_task, task_trials
from openautoglm.tasks.graph_report import report_graph_search_task
from openautoglm.usecases.graph import search_graph

__all__ = ["GraphSearchParams", "GraphSearchResult", "graph_search"]


@flow(name="graph_search", task_runner=task_runner())
def graph_search(params: GraphSearchParams) -> GraphSearchResult:
    """Search GNN candidates for a graph (or NAS-Bench-Graph's tables), baselines first, and pick robustly."""
    logger = get_run_logger()
    started, name, config = time.monotonic(), params.graph_name(), params.train_config()
    logged = {k: v for k, v in params.model_dump(mode="json").items() if k != "graph"} | {"graph": name}
    with tracked_flow(
        "graph_search",
        params.experiment,
        output_dir=params.output_dir,
        params=logged,
        tags={"openautoglm.graph": name},
        what=f"graph_search on {name}",
    ) as tracked:
        parent = tracked.handle()
        if params.nasbench:
            from openautoglm.adapters.nasbench import PUBLISHED, LookupEvaluator, published_meta

            meta = published_meta(params.nasbench) if params.nasbench in PUBLISHED else None
            trials = Trials(screen=LookupEvaluator(params.nasbench))
        else:
            meta = meta_task(params.graph, params.task, params.split_seed)
            in_workers = parent if supports_parallel_writers(parent.tracking_uri) else None
            trials = task_trials(params.graph, params.task, config, params.seeds, params.split_seed, in_workers)
        plan, outcome = search_graph(
            params,
            meta,
            trials,
            config=config,
            on_trial=lambda t: record_trial(t, parent),
            on_plan=lambda p: logger.info("search prior: %s", p.describe_prior()),
            started=started,
        )
        logger.info(
            "pick %s (val %.4f over %d); test %.4f +- %.4f; %d trials (%s), at most %d in flight, %d re-run",
            outcome.arch.describe(),
            outcome.final.val,
            len(outcome.final.seeds),
            outcome.final.test,
            outcome.final.test_std,
            len(outcome.history.trials),
            outcome.history.stopped,
            outcome.history.max_in_flight,
            outcome.history.resubmitted,
        )
        model_path = None
        if not params.nasbench:
            model_path = save_model_task(
                outcome.arch.to_json(), params.graph, params.task, outcome.config, params.split_seed, tracked.folder
            )
        report_graph_search_task(
            parent, tracked.folder, name, params.algo, outcome, plan, hpo_summary(outcome), model_path
        )
        result = GraphSearchResult.of(outcome, plan, model_path, tracked.tail())
        tracked.summarise(result)
    tracked.push(result.headline())
    return result
