"""Schemathesis over the published OpenAPI schema of a real `openautoglm serve` process (offline models): for
generated requests to every NLP and operations route, no 5xx, and every response (errors included) matches the
schema, its status code is documented and its content type is the declared one. The job routes need a Prefect
server and are covered in test_serve_jobs.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from openautoglm.serve.testing import Signer, api_process, keys_json

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNER = Signer.rsa("schema-1")
HEADERS = {"Authorization": f"Bearer {SIGNER.token('fuzzer', ['admin'], ttl_s=3600)}"}
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    folder = tmp_path_factory.mktemp("schema")
    env = {
        "OPENAUTOGLM_HOME": str(folder / "home"),
        "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(SIGNER),
        "OPENAUTOGLM_SERVE_RATE_LIMIT": "100000/minute",
        "OPENAUTOGLM_SERVE_CACHE": "off",
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
    }
    with api_process(env, folder / "api.log") as base:
        yield schemathesis.openapi.from_url(f"{base}/openapi.json").exclude(tag="jobs")


def _operations() -> list[tuple[str, str, GenerationMode]]:
    """(method, path, mode) of every non-job operation, read from the app's own schema (no server needed);
    negative cases (invalid data) only where there is a body or a parameter to get wrong."""
    from openautoglm.serve.app import create_app
    from openautoglm.serve.settings import ServeSettings

    document = create_app(ServeSettings(jwt_keys=keys_json(SIGNER))).openapi()
    cases = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if "jobs" in operation.get("tags", []):
                continue
            cases.append((method.upper(), path, GenerationMode.POSITIVE))
            if operation.get("requestBody") or operation.get("parameters"):
                cases.append((method.upper(), path, GenerationMode.NEGATIVE))
    return cases


@pytest.mark.parametrize(("method", "path", "mode"), _operations(), ids=lambda v: getattr(v, "value", str(v)))
def test_api_conforms_to_its_schema(api_schema: Any, method: str, path: str, mode: GenerationMode) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def check(case: Any) -> None:
        response = case.call_and_validate(headers=HEADERS, checks=CHECKS)
        statuses.append(response.status_code)

    statuses: list[int] = []
    check()
    assert len(statuses) >= (5 if method == "POST" else 1)  # requests were really sent (GETs take no input)
    if mode is GenerationMode.NEGATIVE:
        assert any(400 <= s < 500 for s in statuses)  # invalid data is refused with a 4xx


def test_schema_has_every_route(api_schema: Any) -> None:
    paths = set(api_schema.raw_schema["paths"])
    assert {"/api/v1/classify", "/api/v1/ner/batch", "/api/v1/match", "/healthz", "/readyz", "/metrics"} <= paths
    assert {"/api/v1/jobs", "/api/v1/jobs/{job_id}"} <= paths
