"""The circuit breaker around the GLM upstream (pybreaker), with its state exported as a metric.

A model call (one micro-batch) counts as a failure when every row of it failed upstream (HTTP 5xx, 429,
timeouts, connection errors, a refused key). After ``fail_max`` failures in a row the circuit opens: requests for
that model are answered 503 at once, without a call, until ``reset_s`` have passed; then one trial call decides
(success closes the circuit, failure opens it again). With a Redis storage the state is shared by every process.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pybreaker

from openautoglm.serve.metrics import Metrics

log = logging.getLogger(__name__)


class UpstreamFailure(Exception):
    """Every row of a model call failed upstream; ``codes`` counts the error codes."""

    def __init__(self, message: str, codes: dict[str, int]) -> None:
        super().__init__(message)
        self.codes = codes


class _StateToMetric(pybreaker.CircuitBreakerListener):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any, new_state: Any) -> None:
        name = getattr(new_state, "name", str(new_state))
        log.warning("circuit %s: %s -> %s", cb.name, getattr(old_state, "name", old_state), name)
        self.metrics.set_circuit(cb.name or "upstream", name)


def make_breaker(
    name: str, *, fail_max: int, reset_s: float, storage: str, metrics: Metrics, namespace: str = "openautoglm"
) -> pybreaker.CircuitBreaker:
    """A breaker named ``name``; ``storage`` is ``memory`` or a Redis URL (state shared under ``namespace``)."""
    state_storage: pybreaker.CircuitBreakerStorage | None = None
    if storage != "memory":
        import redis

        client = redis.Redis.from_url(storage, socket_timeout=1.0, socket_connect_timeout=1.0)
        state_storage = pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED, client, namespace=f"{namespace}:circuit:{name}"
        )
    breaker = pybreaker.CircuitBreaker(
        fail_max=fail_max,
        reset_timeout=reset_s,
        name=name,
        state_storage=state_storage,
        listeners=[_StateToMetric(metrics)],
    )
    metrics.set_circuit(name, breaker.current_state)
    return breaker


def open_for(breaker: pybreaker.CircuitBreaker) -> float | None:
    """Seconds the circuit stays open from now, or ``None`` when it is not open (or the trial call is due)."""
    if breaker.current_state != pybreaker.STATE_OPEN:
        return None
    opened = breaker._state_storage.opened_at  # the library keeps it there; no public accessor
    if opened is None:
        return None
    if opened.tzinfo is None:
        opened = opened.replace(tzinfo=UTC)
    left = breaker.reset_timeout - (datetime.now(UTC) - opened).total_seconds()
    return left if left > 0 else None
