"""Prometheus metrics (prometheus-client), one registry per app.

| metric | type | labels |
|---|---|---|
| ``openautoglm_http_requests_total`` | counter | route, method, status |
| ``openautoglm_http_request_duration_seconds`` | histogram | route, method, status |
| ``openautoglm_model_batch_rows`` | histogram | task, model (rows per model call: the micro-batch size) |
| ``openautoglm_model_batch_duration_seconds`` | histogram | task, model |
| ``openautoglm_model_calls_total`` | counter | task, model (rows the model computed) |
| ``openautoglm_cache_lookups_total`` | counter | task, result = hit or miss (hit ratio = hit / all) |
| ``openautoglm_upstream_errors_total`` | counter | code (``503``, ``1305``, ``timeout``, ``circuit_open``...) |
| ``openautoglm_circuit_state`` | gauge | name; 0 closed, 1 half-open, 2 open |
| ``openautoglm_rate_limited_total`` | counter | route |
| ``openautoglm_jobs_triggered_total`` | counter | deployment |
| ``openautoglm_models_ready`` | gauge | 1 when every configured model is loaded |
| ``openautoglm_model_seconds_per_char`` | gauge | task, model, part (an encoder, or the model): timed at start-up |
| ``openautoglm_model_requests_refused_total`` | counter | task, reason: ``cost_cap`` (422), ``deadline`` (504) |
| ``openautoglm_model_swaps_total`` | counter | task, result: ``swapped``, ``failed``, ``lookup_failed`` |
| ``openautoglm_model_swap_duration_seconds`` | histogram | task (load + warm-up of a version an alias moved to) |
| ``openautoglm_model_version`` | gauge | task: the registered version served (``mlflow:`` models) |

With several worker processes (``--workers N``) set ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder so that
``/metrics`` adds up every process (prometheus-client's multiprocess mode); in Kubernetes run one worker per pod.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
CIRCUIT_STATES = {"closed": 0, "half-open": 1, "open": 2}


class Metrics:
    """The app's metrics on their own registry (so that several apps in one process do not collide)."""

    def __init__(self) -> None:
        disable_created_metrics()  # the *_created series only double the scrape size
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("openautoglm_http_requests", "HTTP requests", ["route", "method", "status"], registry=r)
        self.latency = Histogram(
            "openautoglm_http_request_duration_seconds",
            "HTTP request latency",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_rows = Histogram(
            "openautoglm_model_batch_rows", "Rows per model call", ["task", "model"], buckets=BATCH_BUCKETS, registry=r
        )
        self.batch_seconds = Histogram(
            "openautoglm_model_batch_duration_seconds",
            "Model call duration",
            ["task", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.model_rows = Counter("openautoglm_model_calls", "Rows computed by a model", ["task", "model"], registry=r)
        self.cache = Counter("openautoglm_cache_lookups", "Call-cache lookups", ["task", "result"], registry=r)
        self.upstream_errors = Counter(
            "openautoglm_upstream_errors", "Upstream (GLM) errors by code", ["code"], registry=r
        )
        self.circuit = Gauge(
            "openautoglm_circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open",
            ["name"],
            registry=r,
            multiprocess_mode="livemax",  # with several workers: the worst state among live processes
        )
        self.rate_limited = Counter("openautoglm_rate_limited", "Requests refused with 429", ["route"], registry=r)
        self.jobs = Counter(
            "openautoglm_jobs_triggered", "Prefect deployment runs triggered", ["deployment"], registry=r
        )
        self.ready = Gauge(
            "openautoglm_models_ready",
            "1 when the configured models are loaded",
            registry=r,
            multiprocess_mode="livemin",  # ready only when every live worker is
        )

        self.seconds_per_char = Gauge(
            "openautoglm_model_seconds_per_char",
            "Seconds of model time one input character costs, timed at start-up",
            ["task", "model", "part"],
            registry=r,
            multiprocess_mode="livemax",
        )
        self.refused = Counter(
            "openautoglm_model_requests_refused",
            "Requests refused before the model: over the cost cap (422), or past their deadline while waiting (504)",
            ["task", "reason"],
            registry=r,
        )

        self.model_swaps = Counter(
            "openautoglm_model_swaps",
            "Versions an alias moved to: swapped in, failed to load or answer, or the registry lookup failed",
            ["task", "result"],
            registry=r,
        )
        self.model_swap_seconds = Histogram(
            "openautoglm_model_swap_duration_seconds",
            "Seconds to load and warm a version an alias moved to",
            ["task"],
            buckets=(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0),
            registry=r,
        )
        self.model_version = Gauge(
            "openautoglm_model_version",
            "The registered model version a task is served by",
            ["task"],
            registry=r,
            multiprocess_mode="livemax",
        )

    def set_circuit(self, name: str, state: str) -> None:
        self.circuit.labels(name=name).set(CIRCUIT_STATES.get(state, 0))

    def exposition(self) -> bytes:
        """The text exposition format (every process's metrics in multiprocess mode)."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            return generate_latest(registry)
        return generate_latest(self.registry)
