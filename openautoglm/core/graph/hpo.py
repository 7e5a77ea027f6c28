"""Hyper-parameter tuning of a chosen candidate: Optuna TPE with median pruning over learning rate, weight decay,
dropout and hidden size (DAG candidates) or learning rate, weight decay and the two dropouts (stack candidates,
whose recipe is part of the candidate), within a trial budget and a time budget."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import optuna

from openautoglm.core.graph.space import Architecture
from openautoglm.core.graph.stack import StackArch
from openautoglm.core.graph.trainer import Report, TrainConfig, TrainResult


@dataclass(frozen=True)
class HpoResult:
    """The best configuration found and every trial's outcome (``params``: the best trial's values)."""

    arch: Any
    config: TrainConfig
    val: float
    trials: list[dict[str, Any]]
    pruned: int
    seconds: float
    params: dict[str, Any]


Trainer = Callable[[Any, TrainConfig, int, Report | None], TrainResult]


def _stack_candidate(arch: StackArch, trial: optuna.Trial | optuna.trial.FixedTrial) -> StackArch:
    return arch.replace(
        lr=trial.suggest_float("lr", 1e-3, 5e-2, log=True),
        weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
        dropout=trial.suggest_float("dropout", 0.0, 0.8),
        in_dropout=trial.suggest_float("in_dropout", 0.0, 0.8),
        name="",
    )


def tune(
    arch: Any,
    train: Trainer,
    *,
    base: TrainConfig,
    trials: int = 20,
    timeout_s: float | None = None,
    seed: int = 0,
    hidden: tuple[int, ...] = (32, 64, 128, 256),
) -> HpoResult:
    """Tune ``arch`` with ``train(arch, config, seed, report)`` as the objective (validation score).

    The first trial is the untuned starting point, so the result is never worse than it on validation.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(5, trials)),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=10),
    )
    stack = isinstance(arch, StackArch)
    if stack:
        start = {"lr": arch.lr, "weight_decay": max(arch.weight_decay, 1e-6), "dropout": arch.dropout}
        start["in_dropout"] = arch.in_dropout
    elif isinstance(arch, Architecture):
        start = {"lr": base.lr, "weight_decay": base.weight_decay, "dropout": arch.dropout}
        start["hidden"] = arch.hidden if arch.hidden in hidden else hidden[0]
    else:
        raise TypeError(f"cannot tune a {type(arch).__name__}")
    study.enqueue_trial(start)
    started = time.perf_counter()

    def objective(trial: optuna.Trial) -> float:
        if stack:
            config, candidate = base, _stack_candidate(arch, trial)
        else:
            config = replace(
                base,
                lr=trial.suggest_float("lr", 1e-3, 5e-2, log=True),
                weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True),
            )
            candidate = arch.replace(
                dropout=trial.suggest_float("dropout", 0.0, 0.8),
                hidden=trial.suggest_categorical("hidden", list(hidden)),
            )

        def report(epoch: int, value: float) -> bool:
            trial.report(value, epoch)
            return trial.should_prune()

        result = train(candidate, config, seed, report)
        if trial.should_prune():
            raise optuna.TrialPruned()
        return result.val

    study.optimize(objective, n_trials=trials, timeout=timeout_s, catch=())
    best = study.best_trial
    if stack:
        best_arch = _stack_candidate(arch, optuna.trial.FixedTrial(best.params))
        best_config = base
    else:
        best_arch = arch.replace(dropout=best.params["dropout"], hidden=best.params["hidden"])
        best_config = replace(base, lr=best.params["lr"], weight_decay=best.params["weight_decay"])
    rows = [{"number": t.number, "state": t.state.name, "value": t.value, **t.params} for t in study.trials]
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return HpoResult(
        arch=best_arch,
        config=best_config,
        val=float(best.value or 0.0),
        trials=rows,
        pruned=pruned,
        seconds=time.perf_counter() - started,
        params=dict(best.params),
    )
