"""Registering the deployments of ``deployments/prefect.yaml`` and starting a worker.

The YAML file is the one place the deployments are declared; :func:`deploy` reads it and deploys each entry from
this checkout with Prefect's Python API (``flow.from_source(<checkout>, entrypoint).deploy(...)``), after creating
the process work pool if it is absent. That gives every deployment a pull step that sets the working directory to
the checkout, wherever the command is run from.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from openautoglm._env import apply_defaults
from openautoglm.core.errors import ConfigurationError

apply_defaults()

log = logging.getLogger(__name__)

POOL = "openautoglm-pool"
PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = PROJECT / "deployments" / "prefect.yaml"


@dataclass(frozen=True)
class Deployed:
    """A registered deployment."""

    name: str
    flow: str
    deployment_id: str
    schedules: int


def read_deployments(path: Path = DEFAULT_FILE) -> list[dict[str, Any]]:
    """The ``deployments`` entries of a prefect.yaml."""
    if not path.is_file():
        raise ConfigurationError(f"{path}: no such file.", hint="run from a checkout, or pass --file")
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = document.get("deployments") or []
    if not entries:
        raise ConfigurationError(f"{path} declares no deployments.")
    return list(entries)


def ensure_pool(name: str = POOL) -> bool:
    """Create the process work pool if it does not exist; True if it was created."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            return True


def deploy(
    path: Path = DEFAULT_FILE,
    *,
    only: Sequence[str] = (),
    pool: str = POOL,
    project: Path = PROJECT,
    interval_s: float | None = None,
) -> list[Deployed]:
    """Register the deployments of ``path`` (all, or those named in ``only``) on the configured Prefect server.

    Args:
        interval_s: Replace every schedule with an interval of this many seconds (for tests and demos).
    """
    from prefect.flows import load_flow_from_entrypoint

    ensure_pool(pool)
    entries = read_deployments(path)
    unknown = sorted(set(only) - {e["name"] for e in entries})
    if unknown:
        raise ConfigurationError(
            f"No deployment named {unknown} in {path}.", hint=f"choose from {[e['name'] for e in entries]}"
        )
    done = []
    for entry in entries:
        if only and entry["name"] not in only:
            continue
        entrypoint = entry["entrypoint"]
        # A module path (package.module.flow) imports as itself; a file path (dir/file.py:flow) loads from the checkout.
        flow = load_flow_from_entrypoint(str(project / entrypoint) if ".py:" in entrypoint else entrypoint)
        source = flow.from_source(source=str(project), entrypoint=entrypoint)
        options: dict[str, Any] = {
            "name": entry["name"],
            "work_pool_name": pool,
            "parameters": entry.get("parameters") or {},
            "tags": entry.get("tags") or [],
            "description": entry.get("description"),
            "print_next_steps": False,
            "build": False,
            "push": False,
        }
        schedules = entry.get("schedules") or []
        if interval_s is not None:
            options["interval"] = timedelta(seconds=interval_s)
            count = 1
        elif schedules:
            from prefect.schedules import Cron

            options["schedules"] = [Cron(s["cron"], timezone=s.get("timezone")) for s in schedules]
            count = len(schedules)
        else:
            count = 0
        if entry.get("triggers"):  # event triggers (e.g. train_round after N labels): automations tied to it
            from prefect.events import DeploymentTriggerTypes
            from pydantic import TypeAdapter

            options["triggers"] = TypeAdapter(list[DeploymentTriggerTypes]).validate_python(entry["triggers"])
        if entry.get("concurrency_limit") is not None:  # e.g. one train_round at a time; the rest wait (ENQUEUE)
            from prefect.client.schemas.objects import ConcurrencyLimitConfig
            from pydantic import TypeAdapter

            options["concurrency_limit"] = TypeAdapter(int | ConcurrencyLimitConfig).validate_python(
                entry["concurrency_limit"]
            )
        deployment_id = source.deploy(**options)
        done.append(Deployed(name=entry["name"], flow=flow.name, deployment_id=str(deployment_id), schedules=count))
        log.info("deployed %s/%s", flow.name, entry["name"])
    return done
