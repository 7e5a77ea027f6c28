"""The response envelope ``{"code": 0, "data": ..., "message": "success"}`` and the error codes.

Every response of the API, errors included, has this shape. ``code`` is 0 on success, else one of
:class:`Code`; the HTTP status says the class of error and ``code`` the exact reason.

| code | HTTP | meaning |
|---|---|---|
| 0 | 200 | success |
| 40000 | 400 | the body is not valid JSON, not UTF-8, or nested deeper than ``max_json_depth`` |
| 42200 | 422 | the body or a parameter fails validation (``data.errors`` lists where) |
| 40100 | 401 | no bearer token, an invalid one (signature, alg, ``kid``, exp/nbf/iat, lifetime, aud/iss), or two |
| 40300 | 403 | the token's roles may not use this route |
| 40400 | 404 | no such route, or no such job (another user's job is "no such job"), another user's schedule |
| 40500 | 405 | method not allowed on this route |
| 40900 | 409 | a conflicting write (a workflow saved by others at the same moment, again and again) |
| 41300 | 413 | request body larger than the limit |
| 41301 | 413 | too many items in a batch request |
| 43100 | 431 | request headers larger than the limit |
| 42900 | 429 | rate limit of this subject reached (see ``Retry-After``) |
| 50000 | 500 | internal error (details are in the server log, never in the response) |
| 50200 | 502 | the model upstream failed (GLM error or timeout) |
| 50300 | 503 | the circuit breaker around the upstream is open (see ``Retry-After``) |
| 50301 | 503 | not ready: models still loading |
| 50302 | 503 | a dependency is down (Prefect server, rate-limit store) |
| 50400 | 504 | the model did not answer in time |
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any, Generic, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

T = TypeVar("T")


class Code(IntEnum):
    """Envelope codes (see the module table)."""

    OK = 0
    BAD_JSON = 40000
    INVALID = 42200
    UNAUTHENTICATED = 40100
    FORBIDDEN = 40300
    NOT_FOUND = 40400
    METHOD_NOT_ALLOWED = 40500
    CONFLICT = 40900
    BODY_TOO_LARGE = 41300
    BATCH_TOO_LARGE = 41301
    RATE_LIMITED = 42900
    HEADERS_TOO_LARGE = 43100
    INTERNAL = 50000
    UPSTREAM = 50200
    CIRCUIT_OPEN = 50300
    NOT_READY = 50301
    DEPENDENCY_DOWN = 50302
    TIMEOUT = 50400

    @property
    def http_status(self) -> int:
        return 200 if self is Code.OK else self.value // 100


class Envelope(BaseModel, Generic[T]):
    """A successful response."""

    code: int = Field(default=0, description="0 on success")
    data: T
    message: str = "success"


class ErrorEnvelope(BaseModel):
    """An error response: ``code`` is one of the documented codes, ``data`` holds details or null."""

    code: int = Field(description="error code (see the table in docs/deployment/serve.md)", ge=40000, le=59999)
    data: dict[str, Any] | None = None
    message: str


class ApiError(Exception):
    """An error to answer with the envelope; ``headers`` go out too (``Retry-After``, ``WWW-Authenticate``)."""

    def __init__(
        self,
        code: Code,
        message: str,
        *,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data
        self.headers = headers or {}


def ok(data: Any) -> dict[str, Any]:
    """The success envelope around ``data``."""
    return {"code": 0, "data": data, "message": "success"}


def error_response(
    code: Code, message: str, *, data: dict[str, Any] | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    """An error envelope with the HTTP status of ``code``."""
    return JSONResponse(
        {"code": int(code), "data": data, "message": message}, status_code=code.http_status, headers=headers
    )


def error_body(code: Code, message: str, data: dict[str, Any] | None = None) -> bytes:
    """The JSON bytes of an error envelope (for the raw ASGI middleware)."""
    import json

    return json.dumps({"code": int(code), "data": data, "message": message}).encode()


#: OpenAPI ``responses=`` entries for the errors a route can give.
def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    described = {
        400: "body is not JSON",
        401: "missing or invalid token",
        403: "role not allowed",
        404: "not found",
        409: "conflicting write",
        413: "body or batch too large",
        422: "validation failed",
        429: "rate limited",
        500: "internal error",
        502: "upstream failed",
        503: "circuit open, not ready or dependency down",
        504: "model timed out",
    }
    return {c: {"model": ErrorEnvelope, "description": described[c]} for c in codes}
