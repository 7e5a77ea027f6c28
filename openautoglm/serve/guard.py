"""The route guard: a FastAPI dependency per route that checks the bearer token, the route's role and the caller's
rate limit, in that order, and leaves the principal in the request state.

No ``from __future__ import annotations`` here: FastAPI reads the dependency's types from its annotations.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from openautoglm.serve.auth import Authenticator, Principal, authorize
from openautoglm.serve.envelope import ApiError
from openautoglm.serve.metrics import Metrics
from openautoglm.serve.ratelimit import RateLimiter

Guard = Callable[[str], Callable[..., Awaitable[Principal]]]


def make_guard(authenticator: Authenticator, limiter: RateLimiter, metrics: Metrics) -> Guard:
    """``guard(route)``: the dependency of one route (its name is the key of its role in ``ROUTE_ROLES``)."""
    bearer = HTTPBearer(auto_error=False, bearerFormat="JWT", description="JWT signed by a key the server knows")

    def guard(route: str) -> Callable[..., Awaitable[Principal]]:
        async def dependency(
            request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
        ) -> Principal:
            principal = getattr(request.state, "principal", None)  # verified by GateMiddleware
            if principal is None:
                principal = authenticator.verify_headers(request.headers.raw)
            authorize(principal, route)
            try:
                await limiter.hit(principal.owner)
            except ApiError:
                metrics.rate_limited.labels(route=route).inc()
                raise
            request.state.principal = principal
            return principal

        return dependency

    return guard
