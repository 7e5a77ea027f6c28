"""Optimised prompts in MLflow's prompt registry: register a version (optionally move an alias), load one, link
one to a run (the run page's "Registered prompts").

A registered version holds:

- as its template, the task's prompt template with ``{text}`` / ``{text_pair}`` written ``{{text}}`` /
  ``{{text_pair}}`` (MLflow's variable syntax), so the registry UI shows a readable prompt;
- in the version tag :data:`PAYLOAD_TAG`, the whole optimised prompt JSON (template, labels, verbalisers, few-shot
  examples, scores, cost) exactly as ``optimised_prompt.json`` holds it: loading reads it back unchanged;
- a few searchable tags (task type, model, optimiser, dev score, the MLflow run that found it).

The registry keeps tag values up to 100,000 characters; a prompt JSON longer than that (thousands of few-shot
examples) is not registered (a warning says so; the run's ``optimised_prompt.json`` artifact still has it).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.prompt.reference import PromptRef, check_alias, check_prompt_name, parse_prompt_ref
from openautoglm.settings import Settings, get_settings

log = logging.getLogger(__name__)

#: The version tag holding the optimised prompt JSON.
PAYLOAD_TAG = "openautoglm.optimised_prompt"
#: The registry's limit on a tag value.
MAX_PAYLOAD = 100_000
_PLACEHOLDER = re.compile(r"\{(text|text_pair)\}")


def mlflow_template(template: str) -> str:
    """The task template with its placeholders in MLflow's ``{{name}}`` form (other braces left alone)."""
    return _PLACEHOLDER.sub(r"{{\1}}", template)


def _client(settings: Settings | None = None) -> Any:
    from openautoglm.adapters.tracking import registry_client

    return registry_client(settings or get_settings())


def register_prompt(
    payload: str,
    *,
    name: str,
    template: str,
    alias: str | None = None,
    run_id: str | None = None,
    tags: dict[str, str] | None = None,
    message: str | None = None,
    settings: Settings | None = None,
) -> PromptRef | None:
    """Register ``payload`` (an optimised prompt's JSON) as a new version of prompt ``name``.

    Args:
        payload: The JSON to store (read back unchanged by :func:`load_payload`).
        name: The registered prompt's name (created on first use).
        template: The task's prompt template (shown in the registry UI).
        alias: Point this alias at the new version (e.g. ``production``); default: no alias moves.
        run_id: An MLflow run to link the version to (its page lists it under "Registered prompts").
        tags: More version tags (short, searchable strings).
        message: The version's commit message.

    Returns:
        The new version (``prompts:/name/N``), or ``None`` when the payload is over the registry's size limit.

    Raises:
        ConfigurationError: A bad name or alias.
    """
    check_prompt_name(name)
    if alias is not None:
        check_alias(alias)
    if len(payload) > MAX_PAYLOAD:
        log.warning(
            "The optimised prompt is %d characters of JSON, over the prompt registry's %d: not registered as '%s' "
            "(use the run's optimised_prompt.json, or fewer few-shot examples)",
            len(payload),
            MAX_PAYLOAD,
            name,
        )
        return None
    client = _client(settings)
    version = client.register_prompt(
        name=name,
        template=mlflow_template(template),
        commit_message=message,
        tags={**(tags or {}), PAYLOAD_TAG: payload},
    )
    ref = PromptRef(name, int(version.version))
    if alias is not None:
        client.set_prompt_alias(name, alias, int(version.version))
    if run_id is not None:
        client.link_prompt_version_to_run(run_id, version)
    log.info("registered prompt %s%s", ref.uri, f" (alias {alias})" if alias else "")
    return ref


def load_payload(reference: str | PromptRef, *, settings: Settings | None = None) -> tuple[str, PromptRef]:
    """The optimised prompt JSON of a registered version, and that version by number.

    Raises:
        ConfigurationError: A malformed reference, a prompt or version that does not exist, or a prompt that was
            not registered by Open-AutoGLM (no :data:`PAYLOAD_TAG`).
    """
    ref = reference if isinstance(reference, PromptRef) else parse_prompt_ref(reference)
    client = _client(settings)
    try:
        # cache_ttl_seconds=0: an alias just moved (by another process) must be read as it is now.
        version = client.load_prompt(ref.uri, cache_ttl_seconds=0)
    except Exception as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigurationError(
            f"Could not load prompt {ref.uri} from the prompt registry: {first}",
            hint="check the name and version or alias (openautoglm optimize-prompt prints the reference) and "
            "OPENAUTOGLM_MLFLOW_TRACKING_URI",
        ) from error
    payload = (version.tags or {}).get(PAYLOAD_TAG)
    if not payload:
        raise ConfigurationError(
            f"Prompt {ref.uri} holds no Open-AutoGLM optimised prompt (no '{PAYLOAD_TAG}' tag).",
            hint="register prompts with openautoglm optimize-prompt or PromptOptimizer.compile",
        )
    return payload, PromptRef(ref.name, int(version.version))


def link_prompt(run_id: str, reference: str | PromptRef, *, settings: Settings | None = None) -> None:
    """List a registered prompt version on an MLflow run's page (its ``mlflow.linkedPrompts`` tag)."""
    ref = reference if isinstance(reference, PromptRef) else parse_prompt_ref(reference)
    client = _client(settings)
    client.link_prompt_version_to_run(run_id, client.load_prompt(ref.uri, cache_ttl_seconds=0))


def payload_tags(data: dict[str, Any]) -> dict[str, str]:
    """Short searchable version tags from an optimised prompt's fields."""
    config = data.get("config") or {}
    tags = {
        "openautoglm.task_type": str(config.get("task_type", "")),
        "openautoglm.model": str(data.get("model", "")),
        "openautoglm.optimizer": str(data.get("optimizer", "")),
        "openautoglm.dev_score": f"{float(data.get('dev_score') or 0.0):.4f}",
        "openautoglm.labels": json.dumps(config.get("labels") or [], ensure_ascii=False)[:500],
    }
    if data.get("test_score") is not None:
        tags["openautoglm.test_score"] = f"{float(data['test_score']):.4f}"
    if data.get("mlflow_run_id"):
        tags["openautoglm.mlflow_run_id"] = str(data["mlflow_run_id"])
    return tags
