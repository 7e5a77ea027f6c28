"""JWT rejection matrix, key rotation and the route x role matrix, through the real app (in-process client)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from openautoglm.core.errors import ConfigurationError
from openautoglm.serve.app import create_app
from openautoglm.serve.auth import ROUTE_ROLES, KeySet
from openautoglm.serve.settings import ServeSettings
from openautoglm.serve.testing import FakeModel, Signer, keys_json

AUD, ISS = "openautoglm-api", "openautoglm"
RSA = Signer.rsa("rsa-2026-11")
EC = Signer.ec("ec-2026-11")
OTHER = Signer.rsa("rsa-2026-11")  # same kid, a different key: an attacker's


def settings(*signers: Signer, **extra: Any) -> ServeSettings:
    options: dict[str, Any] = {
        "classify_model": "serve-fake",
        "ner_model": "serve-fake",
        "match_model": "serve-fake",
        "cache": "off",
        "jwt_keys": keys_json(*signers),
        "rate_limit": "10000/minute",
    }
    return ServeSettings(**{**options, **extra})


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(settings(RSA, EC))) as c:
        yield c


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "sub": "alice",
        "roles": ["viewer"],
        "aud": AUD,
        "iss": ISS,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def signed(payload: dict[str, Any], signer: Signer = RSA, kid: str | None = "default") -> str:
    headers = {"kid": signer.kid if kid == "default" else kid} if kid is not None else {}
    return jwt.encode(payload, signer.private, algorithm=signer.alg, headers=headers)


def unsigned_token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(payload).encode())
    return f"{head}.{body}.{b64(signature)}"


def hs_confusion() -> str:
    """An HS256 token whose HMAC key is the server's RSA *public* key (the classic algorithm confusion)."""
    header = {"alg": "HS256", "typ": "JWT", "kid": RSA.kid}
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims(roles=["admin"])).encode())
    mac = hmac.new(RSA.public_pem.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(mac)}"


def tampered() -> str:
    head, _, sig = signed(claims()).split(".")
    body = b64(json.dumps(claims(roles=["admin"])).encode())
    return f"{head}.{body}.{sig}"


def rejected() -> dict[str, str | None]:
    """The refused Authorization headers, signed now: built when a test runs, not at import, so that a token
    meant to be refused for another reason has not expired by then (a long suite reaches this file minutes after
    collecting it, and an expired token is refused as expired first)."""
    return {
        "no header": None,
        "not bearer": "Basic YWxpY2U6c2VjcmV0",
        "empty bearer": "Bearer ",
        "garbage": "Bearer not.a.jwt",
        "alg none": "Bearer " + unsigned_token({"alg": "none", "typ": "JWT", "kid": RSA.kid}, claims(roles=["admin"])),
        "alg none, no kid": "Bearer " + unsigned_token({"alg": "none"}, claims()),
        "HS/RS confusion": "Bearer " + hs_confusion(),
        "ES token on the RSA kid": "Bearer " + signed(claims(), EC, kid=RSA.kid),
        "expired": "Bearer " + signed(claims(iat=int(time.time()) - 7200, nbf=None, exp=int(time.time()) - 3600)),
        "nbf in the future": "Bearer " + signed(claims(nbf=int(time.time()) + 3600)),
        "iat in the future": "Bearer " + signed(claims(iat=int(time.time()) + 3600, nbf=None)),
        "wrong audience": "Bearer " + signed(claims(aud="someone-else")),
        "wrong issuer": "Bearer " + signed(claims(iss="https://evil.example")),
        "missing exp": "Bearer " + signed(claims(exp=None)),
        "missing iat": "Bearer " + signed(claims(iat=None)),
        "missing sub": "Bearer " + signed(claims(sub=None)),
        "missing aud": "Bearer " + signed(claims(aud=None)),
        "missing iss": "Bearer " + signed(claims(iss=None)),
        "empty sub": "Bearer " + signed(claims(sub="")),
        "tampered payload": "Bearer " + tampered(),
        "signed by another key with our kid": "Bearer " + signed(claims(), OTHER),
        "unknown kid": "Bearer " + signed(claims(), kid="rsa-1999"),
        "no kid": "Bearer " + signed(claims(), kid=None),
        # RFC 7515 4.1.11: critical extensions this server does not understand (it understands none).
        "crit header": "Bearer "
        + jwt.encode(claims(), RSA.private, algorithm=RSA.alg, headers={"kid": RSA.kid, "crit": ["exp"], "exp": 1}),
        # Lifetimes over OPENAUTOGLM_SERVE_JWT_MAX_LIFETIME_S (86400 s by default), and exp values PyJWT cannot compare.
        "exp 1e20": "Bearer " + signed(claims(exp=1e20)),
        "lifetime one second over the max": "Bearer " + signed(claims(exp=int(time.time()) + 86_401)),
        "iat long ago, exp soon": "Bearer " + signed(claims(iat=int(time.time()) - 86_400 * 30)),
        "exp Infinity": "Bearer " + signed(claims(exp=float("inf"))),
        "exp a list": "Bearer " + signed(claims(exp=[int(time.time()) + 600])),
    }


@pytest.mark.parametrize("case", list(rejected()))
def test_bad_tokens_are_401_before_any_model_call(client: TestClient, case: str) -> None:
    FakeModel.reset()
    header = rejected()[case]
    response = client.post(
        "/api/v1/classify", json={"text": "很好"}, headers={"Authorization": header} if header else {}
    )
    assert response.status_code == 401, (case, response.text)
    body = response.json()
    reason = "expired" if case == "expired" else "missing" if not header else "invalid"
    assert body["code"] == 40100 and body["data"] == {"reason": reason}, body  # what the page chooses its words by
    if case == "expired":
        assert body["message"].startswith("invalid token: expired: sign in again") and "\n" not in body["message"]
    assert "Traceback" not in response.text
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert FakeModel.batches == []


def test_valid_tokens_of_both_keys_are_accepted(client: TestClient) -> None:
    for signer in (RSA, EC):
        response = client.post(
            "/api/v1/classify",
            json={"text": "很正面", "labels": ["正面", "负面"]},
            headers={"Authorization": f"Bearer {signer.token('alice', ['viewer'])}"},
        )
        assert response.status_code == 200, response.text
        assert response.json()["data"]["label"] == "正面"


def test_a_token_may_live_the_max_lifetime_and_no_longer(monkeypatch: pytest.MonkeyPatch) -> None:
    body = {"text": "x"}
    now = int(time.time())
    with TestClient(create_app(settings(RSA))) as default:
        at_max = {"Authorization": f"Bearer {signed(claims(iat=now, exp=now + 86_400))}"}
        assert default.post("/api/v1/classify", json=body, headers=at_max).status_code == 200
        over = default.post(
            "/api/v1/classify", json=body, headers={"Authorization": f"Bearer {signed(claims(exp=1e20))}"}
        )
        assert over.status_code == 401 and "over the 86400 s" in over.json()["message"], over.text
    monkeypatch.setenv("OPENAUTOGLM_SERVE_JWT_MAX_LIFETIME_S", "600")
    with TestClient(create_app(settings(RSA))) as short:
        for ttl, status in ((600, 200), (601, 401)):
            token = signed(claims(iat=now, exp=now + ttl))
            response = short.post("/api/v1/classify", json=body, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == status, (ttl, response.text)


def test_two_authorization_headers_are_401_whichever_comes_last(client: TestClient) -> None:
    FakeModel.reset()
    good, other = RSA.token("alice", ["viewer"]), EC.token("bob", ["admin"])
    for pair in (("Bearer not.a.jwt", f"Bearer {good}"), (f"Bearer {good}", f"Bearer {other}")):
        response = client.post(
            "/api/v1/classify", json={"text": "x"}, headers=[("Authorization", pair[0]), ("Authorization", pair[1])]
        )
        assert response.status_code == 401, response.text
        assert response.json() == {
            "code": 40100,
            "data": {"reason": "invalid"},
            "message": "invalid token: 2 Authorization headers; send exactly one",
        }
    assert FakeModel.batches == []
    # The admin-only /metrics (outside /api/v1) reads the header through the same check.
    with TestClient(create_app(settings(RSA, metrics_public=False))) as c:
        admin = RSA.token("root", ["admin"])
        assert c.get("/metrics", headers={"Authorization": f"Bearer {admin}"}).status_code == 200
        twice = c.get("/metrics", headers=[("Authorization", f"Bearer {admin}"), ("Authorization", f"Bearer {admin}")])
        assert twice.status_code == 401, twice.text


def test_key_rotation_retires_a_kid() -> None:
    new = Signer.rsa("rsa-2027-01")
    old_token, new_token = RSA.token("alice", ["viewer"]), new.token("alice", ["viewer"])
    body = {"text": "x"}
    with TestClient(create_app(settings(RSA, new))) as both:  # during the rotation both kids verify
        for token in (old_token, new_token):
            assert (
                both.post("/api/v1/classify", json=body, headers={"Authorization": f"Bearer {token}"}).status_code
                == 200
            )
    with TestClient(create_app(settings(new))) as rotated:  # the old kid removed
        assert (
            rotated.post("/api/v1/classify", json=body, headers={"Authorization": f"Bearer {old_token}"}).status_code
            == 401
        )
        assert (
            rotated.post("/api/v1/classify", json=body, headers={"Authorization": f"Bearer {new_token}"}).status_code
            == 200
        )


def test_keys_from_a_folder(tmp_path: Any) -> None:
    (tmp_path / f"{RSA.kid}.RS256.pem").write_text(RSA.public_pem)
    (tmp_path / "notes.txt").write_text("ignored")
    with TestClient(create_app(settings(jwt_keys=None, jwt_keys_dir=str(tmp_path)))) as c:
        token = RSA.token("bob", ["viewer"])
        assert (
            c.post("/api/v1/classify", json={"text": "x"}, headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )


def test_key_set_refuses_weak_or_mismatched_keys() -> None:
    with pytest.raises(ConfigurationError, match="not in the allowed"):
        KeySet.from_config(json.dumps({"h": {"alg": "HS256", "key": "x" * 40}}), None, ["RS256"])
    with pytest.raises(ConfigurationError, match="32 bytes"):
        KeySet.from_config(json.dumps({"h": {"alg": "HS256", "key": "short"}}), None, ["HS256"])
    with pytest.raises(ConfigurationError, match="declared"):
        KeySet.from_config(json.dumps({"e": {"alg": "RS256", "key": EC.public_pem}}), None, ["RS256"])
    with pytest.raises(ConfigurationError, match="PEM public key"):
        KeySet.from_config(json.dumps({"p": {"alg": "RS256", "key": RSA.private_pem().decode()}}), None, ["RS256"])


def test_keys_never_appear_in_reprs() -> None:
    keys = KeySet.from_config(keys_json(RSA), None, ["RS256"])
    assert "BEGIN" not in repr(keys.keys) and RSA.kid in repr(keys.keys)
    assert "BEGIN" not in repr(settings(RSA))


# --- route x role matrix ----------------------------------------------------------------------------------
ROUTES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "classify": ("POST", "/api/v1/classify", {"text": "好"}),
    "classify_batch": ("POST", "/api/v1/classify/batch", {"texts": ["好", "差"]}),
    "ner": ("POST", "/api/v1/ner", {"text": "从北京到上海"}),
    "ner_batch": ("POST", "/api/v1/ner/batch", {"texts": ["北京"]}),
    "match": ("POST", "/api/v1/match", {"text": "a", "text_pair": "b"}),
    "match_batch": ("POST", "/api/v1/match/batch", {"pairs": [{"text": "a", "text_pair": "a"}]}),
    "stages": ("GET", "/api/v1/stages", None),
    "jobs_create": ("POST", "/api/v1/jobs", {"deployment": "run_task/nightly-classification"}),
    "jobs_list": ("GET", "/api/v1/jobs", None),
    "jobs_read": ("GET", "/api/v1/jobs/6f1c2c1e-0000-4000-8000-000000000000", None),
    "workflows_list": ("GET", "/api/v1/workflows", None),
    "workflows_read": ("GET", "/api/v1/workflows/ingest", None),
    "workflows_versions": ("GET", "/api/v1/workflows/ingest/versions", None),
    "workflows_diff": ("GET", "/api/v1/workflows/ingest/diff?from=1&to=1", None),
    "workflows_export": ("GET", "/api/v1/workflows/ingest/export", None),
    "workflows_save": ("PUT", "/api/v1/workflows/matrix", {"nodes": [{"id": "load", "stage": "clean"}]}),
    "workflows_check": ("POST", "/api/v1/workflows/check", {"nodes": [{"id": "load", "stage": "clean"}]}),
    "workflows_run": ("POST", "/api/v1/workflows/ingest/runs", None),
    "workflow_runs_read": ("GET", "/api/v1/workflow-runs/6f1c2c1e-0000-4000-8000-000000000000", None),
    "workflows_schedule_read": ("GET", "/api/v1/workflows/ingest/schedule", None),
    "workflows_schedule": ("PUT", "/api/v1/workflows/ingest/schedule", {"cron": "0 2 * * *"}),
    "workflow_runs_retry": ("POST", "/api/v1/workflow-runs/6f1c2c1e-0000-4000-8000-000000000000/retry", None),
    "data_files_upload": ("PUT", "/api/v1/data-files/m.csv", None),
    "admin_circuit": ("GET", "/api/v1/admin/circuit", None),
    "admin_circuit_reset": ("POST", "/api/v1/admin/circuit/reset", None),
}
WORKFLOW_READS = {
    "workflows_list",
    "workflows_read",
    "workflows_versions",
    "workflows_diff",
    "workflows_export",
    "workflows_schedule_read",
}
EXPECTED = {  # the documented matrix, written out independently of ROUTE_ROLES
    "viewer": {"classify", "classify_batch", "ner", "ner_batch", "match", "match_batch", "stages", *WORKFLOW_READS},
    "operator": {
        "stages",
        "classify",
        "classify_batch",
        "ner",
        "ner_batch",
        "match",
        "match_batch",
        "jobs_create",
        "jobs_list",
        "jobs_read",
        *WORKFLOW_READS,
        "workflows_save",
        "workflows_check",
        "workflows_run",
        "workflow_runs_read",
        "workflows_schedule",
        "workflow_runs_retry",
        "data_files_upload",
    },
    "admin": set(ROUTES),
}


#: The annotation routes have their own matrix, with grants (tests/unit/test_annotation_routes.py).
ANNOTATION = {r for r in ROUTE_ROLES if r.startswith("annotation_")}


def test_matrix_covers_every_protected_route() -> None:
    assert set(ROUTES) == set(ROUTE_ROLES) - {"metrics"} - ANNOTATION
    for role, allowed in EXPECTED.items():
        assert {r for r, roles in ROUTE_ROLES.items() if role in roles} - {"metrics"} - ANNOTATION == allowed


@pytest.mark.parametrize("role", [*EXPECTED, "none", "superuser"])
@pytest.mark.parametrize("route", list(ROUTES))
def test_role_matrix(client: TestClient, monkeypatch: pytest.MonkeyPatch, route: str, role: str) -> None:
    # Prefect is pointed at a closed port: an allowed job route answers 503 (dependency down), never 401/403.
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    method, path, body = ROUTES[route]
    roles = [] if role == "none" else [role]
    token = RSA.token(f"user-{role}", roles)
    response = client.request(method, path, json=body, headers={"Authorization": f"Bearer {token}"})
    payload = response.json()
    assert set(payload) == {"code", "data", "message"}
    if role in EXPECTED and route in EXPECTED[role]:
        assert response.status_code not in (401, 403), response.text
        # an upload with no data root configured here is 422: allowed, and told why
        assert response.status_code in (200, 404, 503) or route == "data_files_upload", response.text
        assert response.status_code != 500, response.text
    else:
        assert response.status_code == 403, response.text
        assert payload["code"] == 40300
