"""``template_search``: a genetic search over prompt templates and label verbalisers.

Genes: the template and, per label, its verbaliser (what an embedding model compares a text against).
Templates come from the task type's library (``TaskKind.templates``) and are tried first, a round at a time
(each re-reads the dev set, so they are the costly genes). Then, with the best template, verbalisers evolve:
candidates come from the label itself, patterns around it, and short training texts of that label (data-driven
label words); a mutation replaces one label's verbaliser or joins a second phrase to it, crossover takes each
label's verbaliser from either parent. Generations of ``round_size`` children are scored together; the best
``population`` are parents. Needs no generative model.
"""

from __future__ import annotations

from collections.abc import Sequence

from openautoglm.core.nlp.types import TaskConfig
from openautoglm.core.prompt.optimizers.base import OPTIMIZERS, SearchContext, examples_by_label

#: Patterns turning a label into a phrase (``{label}`` is filled in).
PATTERNS = ("{label}", "这是{label}", "{label}的内容", "总之，{label}", "It is {label}.")

MAX_VERBALISER_CHARS = 40
#: Templates tried per model kind (for an embedding model each costs one call per dev text).
MAX_TEMPLATES = {"embedding": 2}


def verbaliser_pool(
    labels: Sequence[str], context: SearchContext, start: TaskConfig, per_label: int = 12
) -> dict[str, list[str]]:
    """Per label: the start verbaliser, pattern phrases, and short training texts of the label."""
    grouped = examples_by_label(context.trainset)
    pool: dict[str, list[str]] = {}
    for label in labels:
        phrases = [start.verbalizer(label), *(p.format(label=label) for p in PATTERNS)]
        texts = [e.text for e in grouped.get(label, []) if len(e.text) <= MAX_VERBALISER_CHARS]
        context.rng.shuffle(texts)
        phrases.extend(texts[:per_label])
        pool[label] = list(dict.fromkeys(phrases))
    return pool


def template_pool(start: TaskConfig) -> list[str]:
    kind = start.kind
    library = tuple(t for t in kind.templates if all(slot in t for slot in kind.placeholders))
    return list(dict.fromkeys([start.template if start.prompt_template else library[0], *library]))


def _with(config: TaskConfig, template: str, verbalisers: dict[str, str] | None) -> TaskConfig:
    update: dict[str, object] = {"prompt_template": template}
    if verbalisers is not None:
        update["verbalizers"] = tuple(verbalisers.items())
    return TaskConfig.model_validate({**config.model_dump(), **update})


def _genes(config: TaskConfig, labels: Sequence[str]) -> tuple[str, dict[str, str]]:
    return config.template, {label: config.verbalizer(label) for label in labels}


def search(start: TaskConfig, context: SearchContext, *, population: int = 6, generations: int = 50) -> None:
    labels = list(start.labels or ()) if start.kind.closed_labels else []
    use_verbalisers = context.kind == "embedding" and bool(labels)
    rng = context.rng
    context.score([start], ["start"])

    # Templates first, a round at a time: each new template re-reads the whole dev set (for an embedding model
    # every dev text is embedded again), so they are the costly genes; verbalisers then vary around the best.
    library = [t for t in template_pool(start) if t != start.template]
    # The library's first template (the bare text for classification) is always tried, the rest in random order.
    templates = library[:1] + rng.sample(library[1:], len(library) - 1)
    limit = MAX_TEMPLATES.get(context.kind, len(templates))
    templates = templates[:limit]
    for i in range(0, len(templates), context.round_size):
        if not context.can_continue():
            return
        best = context.best_config(start)
        chunk = [_with(best, t, None) for t in templates[i : i + context.round_size]]
        context.score(chunk, ["template"] * len(chunk))
    if not use_verbalisers:
        context.stop_reason = context.stop_reason or "every template tried"
        return

    pool = verbaliser_pool(labels, context, start)

    def mutate(config: TaskConfig) -> TaskConfig:
        template, verbal = _genes(config, labels)
        label = rng.choice(labels)
        phrase = rng.choice(pool[label])
        if rng.random() < 0.5 and phrase not in verbal[label]:
            verbal[label] = f"{verbal[label]}；{phrase}"
        else:
            verbal[label] = phrase
        return _with(config, template, verbal)

    def crossover(a: TaskConfig, b: TaskConfig) -> TaskConfig:
        _, va = _genes(a, labels)
        _, vb = _genes(b, labels)
        return _with(a, a.template, {label: rng.choice((va[label], vb[label])) for label in labels})

    template = context.best_config(start).template
    stale = 0
    for _ in range(generations):
        if not context.can_continue():
            break
        ranked = sorted(
            (e for e in context.history if e.score is not None and e.config.template == template),
            key=lambda e: -(e.score or 0.0),
        )
        parents = [e.config for e in ranked[:population]] or [context.best_config(start)]
        children, origins = [], []
        for _ in range(context.round_size):
            if len(parents) > 1 and rng.random() < 0.5:
                a, b = rng.sample(parents, 2)
                child = crossover(a, b)
                children.append(mutate(child) if rng.random() < 0.5 else child)
                origins.append("verbaliser:crossover")
            else:
                children.append(mutate(rng.choice(parents[:3])))
                origins.append("verbaliser:mutation")
        before = len(context.history)
        context.score(children, origins)
        stale = stale + 1 if len(context.history) == before else 0
        if stale >= 5 and not context.exhausted:
            # Five rounds of children all seen before: the reachable space is small and explored.
            context.stop_reason = context.stop_reason or "no new candidates"
            break


OPTIMIZERS.add("template_search", search)
