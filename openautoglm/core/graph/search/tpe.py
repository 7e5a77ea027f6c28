"""Tree-structured Parzen estimator (Optuna's TPESampler) over the space's categorical decisions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna

from openautoglm.core.graph.candidates import Space
from openautoglm.core.graph.search.base import SEARCHERS, Searcher


@SEARCHERS.register("tpe", "optuna")
class TPESearch(Searcher):
    """Args: startup (random trials before TPE models the rewards), multivariate (model decisions jointly)."""

    def __init__(
        self,
        space: Space,
        seed: int = 0,
        warm_start: Sequence[Any] = (),
        startup: int = 10,
        multivariate: bool = True,
        **_: Any,
    ) -> None:
        super().__init__(space, seed, warm_start)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, multivariate=multivariate)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.open: dict[Any, list[optuna.trial.Trial]] = {}
        for arch in self.warm_start:
            self.study.enqueue_trial({k: v for k, v in space.choice(arch).items()})
        self.warm_start = []  # enqueued: Optuna proposes them first

    def propose(self, n: int) -> list[Any]:
        out: list[Any] = []
        while len(out) < n:
            trial = self.study.ask()
            choice = {d.name: trial.suggest_categorical(d.name, list(d.options)) for d in self.space.decisions}
            arch = self.space.build(choice)
            if not arch.valid:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            self.open.setdefault(arch, []).append(trial)
            out.append(arch)
        return out

    def tell(self, arch: Any, reward: float) -> None:
        trials = self.open.get(arch)
        if trials:
            self.study.tell(trials.pop(0), reward)
            return
        # Not proposed by this study (a baseline): learn from it as a finished trial.
        choice = self.space.choice(arch)
        distributions: dict[str, optuna.distributions.BaseDistribution] = {
            d.name: optuna.distributions.CategoricalDistribution(list(d.options)) for d in self.space.decisions
        }
        self.study.add_trial(optuna.trial.create_trial(params=choice, distributions=distributions, value=reward))
