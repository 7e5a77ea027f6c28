"""JWT authentication (PyJWT) and role-based access.

- The algorithm is never taken from the token: each key (``kid``) is bound to one algorithm, and that algorithm
  must also be in the configured allow-list. ``alg: none``, HS/RS confusion (an HS256 token "signed" with an RSA
  public key) and tokens for an unknown ``kid`` are rejected.
- ``exp``, ``iat``, ``sub``, ``aud`` and ``iss`` are required; ``nbf`` is honoured when present; a token whose
  lifetime ``exp - iat`` is over ``max_lifetime_s`` (``OPENAUTOGLM_SERVE_JWT_MAX_LIFETIME_S``) is refused.
- Exactly one ``Authorization`` header: with two or more, which one counts would depend on the framework or proxy
  (the last one, the first one, or both joined), so the request is refused.
- Key rotation: several kids are valid at once; drop a kid from the key set to retire it.
- Roles come from the ``roles`` claim (a list, or one string); :data:`ROUTE_ROLES` is the route x role matrix.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from openautoglm.core.errors import ConfigurationError
from openautoglm.serve.envelope import ApiError, Code

log = logging.getLogger(__name__)

Role = Literal["viewer", "operator", "admin", "annotator", "reviewer"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "admin", "annotator", "reviewer")
#: The annotation routes' roles: an annotator labels, a reviewer adjudicates, each only on the projects granted to
#: them (see :mod:`openautoglm.serve.routes_annotation`, which checks the grant).
_LABEL: frozenset[Role] = frozenset({"annotator", "admin"})
_REVIEW: frozenset[Role] = frozenset({"reviewer", "admin"})
_ANY_GRANT: frozenset[Role] = frozenset({"annotator", "reviewer", "admin"})
_ADMIN: frozenset[Role] = frozenset({"admin"})

#: Route name -> roles allowed. Routes not listed here (``healthz``, ``readyz``, ``metrics``, the OpenAPI
#: schema) need no token. Admins are listed explicitly: there is no implicit hierarchy.
ROUTE_ROLES: dict[str, frozenset[Role]] = {
    "classify": frozenset({"viewer", "operator", "admin"}),
    "classify_batch": frozenset({"viewer", "operator", "admin"}),
    "ner": frozenset({"viewer", "operator", "admin"}),
    "ner_batch": frozenset({"viewer", "operator", "admin"}),
    "match": frozenset({"viewer", "operator", "admin"}),
    "match_batch": frozenset({"viewer", "operator", "admin"}),
    "stages": frozenset({"viewer", "operator", "admin"}),
    "jobs_create": frozenset({"operator", "admin"}),
    "jobs_list": frozenset({"operator", "admin"}),
    "jobs_read": frozenset({"operator", "admin"}),
    "workflows_list": frozenset({"viewer", "operator", "admin"}),
    "workflows_read": frozenset({"viewer", "operator", "admin"}),
    "workflows_versions": frozenset({"viewer", "operator", "admin"}),
    "workflows_diff": frozenset({"viewer", "operator", "admin"}),
    "workflows_export": frozenset({"viewer", "operator", "admin"}),
    "workflows_save": frozenset({"operator", "admin"}),
    "workflows_check": frozenset({"operator", "admin"}),
    "workflows_run": frozenset({"operator", "admin"}),
    "workflow_runs_read": frozenset({"operator", "admin"}),
    "workflows_schedule_read": frozenset({"viewer", "operator", "admin"}),
    "workflows_schedule": frozenset({"operator", "admin"}),
    "workflow_runs_retry": frozenset({"operator", "admin"}),
    "data_files_upload": frozenset({"operator", "admin"}),
    "admin_circuit": frozenset({"admin"}),
    "admin_circuit_reset": frozenset({"admin"}),
    "annotation_projects": _ANY_GRANT,
    "annotation_project": _ANY_GRANT,
    "annotation_status": _ANY_GRANT,
    "annotation_create": _ADMIN,
    "annotation_items_add": _ADMIN,
    "annotation_grants": _ADMIN,
    "annotation_grant": _ADMIN,
    "annotation_revoke": _ADMIN,
    "annotation_round": _ADMIN,
    "annotation_next": _LABEL,
    "annotation_answer": _LABEL,
    "annotation_skip": _LABEL,
    "annotation_undo": _LABEL,
    "annotation_disagreements": _REVIEW,
    "annotation_adjudicate": _REVIEW,
    "annotation_export": _REVIEW,
    "metrics": frozenset({"admin"}),  # only when OPENAUTOGLM_SERVE_METRICS_PUBLIC=false
}

SYMMETRIC = {"HS256", "HS384", "HS512"}
ASYMMETRIC = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
REQUIRED_CLAIMS = ["exp", "iat", "sub", "aud", "iss"]


@dataclass(frozen=True)
class VerifyingKey:
    """One key of the key set: its id, its single algorithm, and the key material (never logged)."""

    kid: str
    alg: str
    key: Any

    def __repr__(self) -> str:
        return f"VerifyingKey(kid={self.kid!r}, alg={self.alg!r})"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject, issuer and roles."""

    sub: str
    iss: str
    roles: frozenset[str]

    @property
    def owner(self) -> str:
        """A stable id for ownership (jobs): issuer and subject together."""
        return hashlib.sha256(f"{self.iss}\n{self.sub}".encode()).hexdigest()[:32]


def _key_alg(material: Any) -> str:
    if isinstance(material, rsa.RSAPublicKey):
        return "RS256"
    if isinstance(material, ec.EllipticCurvePublicKey):
        return {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}[material.curve.name]
    if isinstance(material, ed25519.Ed25519PublicKey):
        return "EdDSA"
    raise ConfigurationError(f"Unsupported public key type {type(material).__name__}.")


def _load(kid: str, alg: str, raw: str | bytes) -> VerifyingKey:
    if alg in SYMMETRIC:
        secret = raw.encode() if isinstance(raw, str) else raw
        if len(secret) < 32:
            raise ConfigurationError(f"JWT key '{kid}': an {alg} secret needs at least 32 bytes.")
        return VerifyingKey(kid, alg, secret)
    if alg not in ASYMMETRIC:
        raise ConfigurationError(
            f"JWT key '{kid}': unknown algorithm '{alg}'.", hint=f"use one of {sorted(ASYMMETRIC)}"
        )
    data = raw.encode() if isinstance(raw, str) else raw
    try:
        material = serialization.load_pem_public_key(data)
    except ValueError:
        raise ConfigurationError(
            f"JWT key '{kid}' is not a PEM public key.", hint="give the public key, never the private one"
        ) from None
    family = _key_alg(material)
    if family[:2] != alg[:2] and not (family == "RS256" and alg.startswith("PS")):
        raise ConfigurationError(f"JWT key '{kid}' is a {family[:2]} key but is declared {alg}.")
    return VerifyingKey(kid, alg, material)


class KeySet:
    """Verifying keys by ``kid``, each bound to one algorithm.

    Args:
        keys: The keys.
        algorithms: Allow-list; a key whose algorithm is not in it is refused at load time.
    """

    def __init__(self, keys: Iterable[VerifyingKey], algorithms: Iterable[str]) -> None:
        self.algorithms = frozenset(algorithms)
        self.keys: dict[str, VerifyingKey] = {}
        for key in keys:
            if key.alg not in self.algorithms:
                raise ConfigurationError(
                    f"JWT key '{key.kid}' uses {key.alg}, which is not in the allowed algorithms "
                    f"{sorted(self.algorithms)}.",
                    hint="add it to OPENAUTOGLM_SERVE_JWT_ALGORITHMS or use another key",
                )
            if key.kid in self.keys:
                raise ConfigurationError(f"JWT key id '{key.kid}' is given twice.")
            self.keys[key.kid] = key

    @classmethod
    def from_config(cls, keys_json: str | None, keys_dir: str | None, algorithms: Iterable[str]) -> KeySet:
        """Keys from a JSON object ``{kid: {"alg": ..., "key": ...}}`` and/or a folder of ``<kid>.<alg>.pem``
        (public keys) and ``<kid>.<alg>.secret`` files."""
        loaded: list[VerifyingKey] = []
        if keys_json:
            try:
                document = json.loads(keys_json)
            except json.JSONDecodeError:
                raise ConfigurationError("OPENAUTOGLM_SERVE_JWT_KEYS is not JSON.") from None
            if not isinstance(document, Mapping):
                raise ConfigurationError("OPENAUTOGLM_SERVE_JWT_KEYS must be a JSON object {kid: {alg, key}}.")
            for kid, entry in document.items():
                if not isinstance(entry, Mapping) or "alg" not in entry or "key" not in entry:
                    raise ConfigurationError(f"JWT key '{kid}' needs 'alg' and 'key'.")
                loaded.append(_load(str(kid), str(entry["alg"]), entry["key"]))
        if keys_dir:
            folder = Path(keys_dir)
            if not folder.is_dir():
                raise ConfigurationError(f"OPENAUTOGLM_SERVE_JWT_KEYS_DIR={keys_dir} is not a folder.")
            for path in sorted(folder.iterdir()):
                if path.suffix not in (".pem", ".secret") or path.stem.count(".") != 1:
                    continue
                kid, alg = path.stem.split(".")
                loaded.append(_load(kid, alg, path.read_bytes().strip()))
        return cls(loaded, algorithms)

    def __len__(self) -> int:
        return len(self.keys)


#: What an expired token is told (one line a page can show on its sign-in form; ``data.reason`` is "expired").
EXPIRED = (
    "invalid token: expired: sign in again with a new token (python -m openautoglm.serve.tokens --ttl SECONDS; "
    "1 h by default, at most OPENAUTOGLM_SERVE_JWT_MAX_LIFETIME_S)"
)


def _unauthenticated(reason: str, kind: str = "invalid") -> ApiError:
    """401 with ``data.reason`` (``expired``, ``missing`` or ``invalid``): what a page needs to choose its words."""
    return ApiError(
        Code.UNAUTHENTICATED,
        reason if kind == "expired" else f"invalid token: {reason}",
        data={"reason": kind},
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


class Authenticator:
    """Verifies bearer tokens against a :class:`KeySet`."""

    def __init__(
        self, keys: KeySet, *, audience: str, issuer: str, leeway_s: int = 10, max_lifetime_s: int = 86_400
    ) -> None:
        self.keys = keys
        self.audience = audience
        self.issuer = issuer
        self.leeway_s = leeway_s
        self.max_lifetime_s = max_lifetime_s

    def verify_headers(self, headers: Iterable[tuple[bytes, bytes]]) -> Principal:
        """The principal of a request given its raw headers (ASGI ``scope["headers"]``, Starlette's
        ``request.headers.raw``): :meth:`verify` of its one ``Authorization`` header; two or more are 401."""
        values = [value.decode("latin-1") for name, value in headers if name.lower() == b"authorization"]
        if len(values) > 1:
            raise _unauthenticated(f"{len(values)} Authorization headers; send exactly one")
        return self.verify(values[0] if values else None)

    def verify(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization: Bearer <jwt>`` header, or :class:`ApiError` 401."""
        if not authorization:
            raise ApiError(
                Code.UNAUTHENTICATED,
                "missing bearer token: sign in",
                data={"reason": "missing"},
                headers={"WWW-Authenticate": 'Bearer realm="api"'},
            )
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthenticated("the Authorization header must be 'Bearer <token>'")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _unauthenticated("malformed") from None
        if "crit" in header:
            # RFC 7515 4.1.11: a token naming critical extensions must be refused unless all are understood;
            # this verifier understands none.
            raise _unauthenticated("unsupported critical header parameters (crit)")
        kid = header.get("kid")
        key = self.keys.keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise _unauthenticated("unknown or missing key id (kid)")
        if header.get("alg") != key.alg:
            raise _unauthenticated("algorithm does not match the key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[key.alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": REQUIRED_CLAIMS, "verify_signature": True},
            )
        except jwt.ExpiredSignatureError:
            raise _unauthenticated(EXPIRED, "expired") from None
        except jwt.ImmatureSignatureError:
            raise _unauthenticated("not valid yet (nbf/iat in the future)") from None
        except jwt.MissingRequiredClaimError as error:
            raise _unauthenticated(f"missing claim '{error.claim}'") from None
        except jwt.InvalidAudienceError:
            raise _unauthenticated("wrong audience") from None
        except jwt.InvalidIssuerError:
            raise _unauthenticated("wrong issuer") from None
        except jwt.InvalidTokenError:
            raise _unauthenticated("signature or claims do not verify") from None
        except (OverflowError, TypeError, ValueError):  # PyJWT's int() of an exp/iat/nbf of inf, null or a list
            raise _unauthenticated("'exp', 'iat' and 'nbf' must be finite numbers (seconds since the epoch)") from None
        exp, iat = claims.get("exp"), claims.get("iat")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (exp, iat)):
            raise _unauthenticated("'exp' and 'iat' must be finite numbers (seconds since the epoch)")
        if iat > time.time() + self.leeway_s:
            raise _unauthenticated("issued in the future")
        if exp - iat > self.max_lifetime_s:
            raise _unauthenticated(
                f"lifetime (exp - iat) of {exp - iat:.0f} s is over the {self.max_lifetime_s} s this API accepts; "
                "ask for a shorter-lived token"
            )
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise _unauthenticated("'sub' must be a non-empty string")
        raw_roles = claims.get("roles", [])
        roles = [raw_roles] if isinstance(raw_roles, str) else raw_roles
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise _unauthenticated("'roles' must be a string or a list of strings")
        return Principal(sub=sub, iss=str(claims["iss"]), roles=frozenset(r for r in roles if r in ROLES))


def authorize(principal: Principal, route: str) -> None:
    """Raise 403 unless one of the principal's roles may use ``route``."""
    allowed = ROUTE_ROLES[route]
    if not principal.roles & allowed:
        raise ApiError(
            Code.FORBIDDEN,
            f"role(s) {sorted(principal.roles) or '[]'} may not use this route",
            data={"needs_one_of": sorted(allowed)},
        )


def issue_token(
    private_key: Any,
    *,
    kid: str,
    alg: str,
    sub: str,
    roles: Iterable[str],
    audience: str = "openautoglm-api",
    issuer: str = "openautoglm",
    ttl_s: int = 3600,
    extra: Mapping[str, Any] | None = None,
) -> str:
    """A signed token for ``sub`` with ``roles`` (for operators' tooling and tests).

    Args:
        private_key: A PEM private key (bytes/str) or a cryptography key object; the secret for HS256.
    """
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": list(roles),
        "aud": audience,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + ttl_s,
        **(extra or {}),
    }
    return jwt.encode(claims, private_key, algorithm=alg, headers={"kid": kid})
