"""The REST API: ``openautoglm serve`` (FastAPI + uvicorn).

Modules: :mod:`.app` (the app factory), :mod:`.envelope` (response shape and error codes), :mod:`.auth` (JWT and
the route x role matrix), :mod:`.batcher` (micro-batching), :mod:`.service` (models, breaker),
:mod:`.ratelimit`, :mod:`.metrics`, :mod:`.jobs` (Prefect), :mod:`.settings`, :mod:`.tokens` (issue a token).
"""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any) -> Any:
    """See :func:`openautoglm.serve.app.create_app` (imported lazily: FastAPI is loaded only when serving)."""
    from openautoglm.serve.app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["create_app"]
