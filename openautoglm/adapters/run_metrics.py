"""Flow runs push their headline numbers to a Prometheus Pushgateway (``OPENAUTOGLM_PUSHGATEWAY_URL``).

Batch runs end before Prometheus could scrape them, so each flow pushes gauges when it finishes: one group per
flow (``job="openautoglm_<flow>"``) and deployment, replaced by the next run. ``openautoglm_flow_last_success_
timestamp_seconds`` lets an alert fire when a nightly run stops succeeding (infra/prometheus/alerts.yml). A
Pushgateway that cannot be reached is logged and never fails the run.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from openautoglm.settings import get_settings

log = logging.getLogger(__name__)

_NAME = re.compile(r"[^a-zA-Z0-9_]")


def push_run_metrics(flow: str, metrics: Mapping[str, float | int | None], deployment: str | None = None) -> bool:
    """Push ``metrics`` (numbers; ``None`` skipped) as ``openautoglm_flow_<name>`` gauges; True when pushed."""
    url = get_settings().pushgateway_url
    if not url:
        return False
    registry = CollectorRegistry()
    for name, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        metric = f"openautoglm_flow_{_NAME.sub('_', name)}"
        Gauge(metric, f"{name} of the last {flow} run", registry=registry).set(float(value))
    Gauge(
        "openautoglm_flow_last_success_timestamp_seconds",
        f"When the last {flow} run finished successfully",
        registry=registry,
    ).set_to_current_time()
    grouping = {"deployment": deployment or "adhoc"}
    try:
        push_to_gateway(url, job=f"openautoglm_{flow}", grouping_key=grouping, registry=registry, timeout=10)
    except OSError as error:  # URLError is an OSError: a gateway that is down must not fail the run
        log.warning("could not push run metrics to %s: %s", url, error)
        return False
    return True


def deployment_name() -> str | None:
    """The current flow run's deployment, if it came from one."""
    from prefect.runtime import deployment

    name = deployment.name
    return str(name) if name else None
