"""``few_shot``: choose demonstrations (generative models) or label prototypes (embedding models) from the
trainset to maximise the dev score.

Two strategies, run in this order while the budget lasts:

- ``random``: for each size k (examples per label) draw a few random sets; then local moves around the best set
  (replace a few examples, grow or shrink it).
- ``bootstrap`` (DSPy's BootstrapFewShot idea): answer a train sample with the best prompt so far and draw the
  demonstrations from the examples it got right (they agree with what the model can follow).

The examples go into ``few_shot``: a generative model sees them as earlier turns; an embedding model averages
them with the label's verbaliser into the label's prototype.
"""

from __future__ import annotations

from collections.abc import Sequence

from openautoglm.core.nlp.types import Example, TaskConfig
from openautoglm.core.prompt.optimizers.base import OPTIMIZERS, SearchContext, examples_by_label

#: Examples per label tried, by model kind (prototypes average many; chat prompts hold few).
SIZES = {"embedding": (2, 4, 8, 16, 32, 64), "generative": (1, 2, 4), "tagger": (1, 2)}
BOOTSTRAP_SAMPLE = 100


def _draw(grouped: dict[str, list[Example]], k: int, context: SearchContext) -> tuple[Example, ...]:
    chosen: list[Example] = []
    for label in sorted(grouped):
        members = grouped[label]
        chosen.extend(context.rng.sample(members, min(k, len(members))))
    context.rng.shuffle(chosen)
    return tuple(chosen)


def _with(config: TaskConfig, examples: Sequence[Example]) -> TaskConfig:
    return TaskConfig.model_validate({**config.model_dump(), "few_shot": tuple(examples)})


def _neighbour(
    examples: tuple[Example, ...], grouped: dict[str, list[Example]], context: SearchContext
) -> tuple[Example, ...]:
    """Replace a quarter of the examples (at least one) with others of the same label."""
    rng = context.rng
    out = list(examples)
    taken = set(out)
    for _ in range(max(1, len(out) // 4)):
        i = rng.randrange(len(out))
        members = grouped[out[i].label]
        for _ in range(8):  # a few tries at an example not already in the set
            other = members[rng.randrange(len(members))]
            if other not in taken:
                taken.discard(out[i])
                taken.add(other)
                out[i] = other
                break
    return tuple(out)


def search(start: TaskConfig, context: SearchContext, *, draws_per_size: int = 2, local_rounds: int = 20) -> None:
    if not start.kind.labelled_demos or not context.trainset:
        context.score([start], ["start"])
        context.stop_reason = context.stop_reason or "no trainset to draw examples from"
        return
    grouped = examples_by_label(context.trainset)
    if start.labels:
        grouped = {label: grouped[label] for label in start.labels if label in grouped}
    base = TaskConfig.model_validate({**start.model_dump(), "few_shot": ()})
    context.score([start], ["start"])
    sizes = SIZES[context.kind]

    # random: every size, a few draws each, in rounds.
    candidates = [
        (_with(base, _draw(grouped, k, context)), f"few_shot:random:k={k}")
        for k in sizes
        for _ in range(draws_per_size)
    ]
    for i in range(0, len(candidates), context.round_size):
        if not context.can_continue():
            return
        chunk = candidates[i : i + context.round_size]
        context.score([c for c, _ in chunk], [o for _, o in chunk])

    # bootstrap: demonstrations among the train examples the best prompt answers correctly.
    best = context.best_config(start)
    sample = list(context.trainset)
    context.rng.shuffle(sample)
    sample = sample[:BOOTSTRAP_SAMPLE]
    if context.can_continue() and sample:
        [answered] = context.evaluate([best], ["bootstrap:answer-train-sample"], sample)
        if answered.complete and any(answered.correct):
            good = examples_by_label([e for e, ok in zip(sample, answered.correct, strict=True) if ok])
            k_best = max(1, len(best.few_shot) // max(1, len(grouped)))
            draws = [
                (_with(base, _draw(good, k, context)), f"few_shot:bootstrap:k={k}")
                for k in sorted({k_best, *sizes[:3]})
            ]
            context.score([c for c, _ in draws], [o for _, o in draws])
        elif not answered.complete:
            context.exhausted = True
            context.stop_reason = "budget reached"

    # local moves around the best set.
    for _ in range(local_rounds):
        if not context.can_continue():
            return
        best = context.best_config(start)
        if not best.few_shot:
            break
        moves = [_with(base, _neighbour(best.few_shot, grouped, context)) for _ in range(context.round_size)]
        context.score(moves, ["few_shot:local"] * len(moves))


OPTIMIZERS.add("few_shot", search)
