"""Flow ``optimize_prompt``: ingest -> split (train / dev / test) -> search (candidates scored in parallel on Dask,
within a hard call budget) -> score the best and the starting prompt on the test split -> (with ``learner``: fit
the few-label heads on the train rows and score them on the same splits) -> artifacts.

Every candidate is a nested MLflow run under the flow's run; the best prompt is logged as
``optimised_prompt.json`` (load it with ``OptimisedPrompt.load(<path or MLflow run id>)``, or give it to
``run_task`` as ``prompt``) and registered in MLflow's prompt registry as a new version of ``prompt_name``
(``prompts:/<name>/<version>``; ``alias`` moved to it only when given). Model calls go through the call cache, so a
rerun costs no call. Parameters, result and the split: ``optimize_prompt_params``.
"""

from __future__ import annotations

from prefect import flow, get_run_logger

from openautoglm.adapters.compute import worker_processes
from openautoglm.adapters.few_label import winner
from openautoglm.adapters.models.run import check_supported
from openautoglm.adapters.tracking import log_params
from openautoglm.blocks.credentials import api_key_for
from openautoglm.core.prompt.budget import CallMeter
from openautoglm.flows.optimize_prompt_params import OptimizePromptParams, OptimizePromptResult
from openautoglm.flows.runtime import task_runner, tracked_flow
from openautoglm.flows.stages import prepare_input
from openautoglm.settings import get_settings
from openautoglm.tasks.prompt import learn_beside, round_reporter, task_scorer
from openautoglm.tasks.prompt_report import report_prompt_search_task
from openautoglm.usecases.prompt import optimise_prompt, split_examples

__all__ = ["OptimizePromptParams", "OptimizePromptResult", "optimize_prompt", "split_examples"]


@flow(name="optimize_prompt", task_runner=task_runner())
def optimize_prompt(params: OptimizePromptParams) -> OptimizePromptResult:
    """Search prompt templates, verbalisers, instructions and few-shot examples against a labelled dev set."""
    logger = get_run_logger()
    check_supported(params.model, params.task)
    with tracked_flow(
        "optimize_prompt",
        params.experiment,
        output_dir=params.output_dir,
        tags={"openautoglm.model": params.model.model},
        what=f"optimize_prompt ({params.optimizer}, {params.model.model})",
    ) as tracked:
        prepared = prepare_input(params, tracked.folder)
        train, dev, test = params.splits(prepared.dataset.frame)
        rows = {"train": len(train), "dev": len(dev), "test": len(test)}
        logger.info("labelled rows: %s", rows)
        log_params(params.tracking_params(rows))

        meter = CallMeter(params.budget)
        done = optimise_prompt(
            params,
            train,
            dev,
            test,
            scorer=task_scorer(params),
            key_for=lambda spec: api_key_for(spec, params.credentials_block),
            workers=worker_processes(get_settings()) or 1,
            on_round=round_reporter(tracked.run, meter, params.budget.max_calls),
            meter=meter,
            run_id=tracked.run.run_id,
            folder=tracked.folder,
            experiment=params.experiment,
        )
        prompt = done.prompt
        learned = learn_beside(params, train, dev, test, tracked.folder) if params.learner else None
        report_prompt_search_task(prompt, done.history, learned)
        logger.info("%s", prompt.outcome_line())
        result = OptimizePromptResult(
            prompt=prompt,
            prompt_path=done.files["prompt"],
            registered_prompt=prompt.registered,
            learned=learned,
            winner=winner(prompt.dev_score, learned),
            rows=rows,
            rows_quarantined=len(prepared.dataset.quarantine),
            **tracked.tail(),
        )
        tracked.summarise(result)
    tracked.push(result.headline())
    return result
