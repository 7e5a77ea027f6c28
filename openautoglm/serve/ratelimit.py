"""Rate limit per token subject with the ``limits`` library (moving window).

With ``redis://`` storage the counters live in Redis, so the limit holds across every process and replica;
``memory://`` is per process. Refusals are 429 with ``Retry-After`` (seconds until a slot frees). If the store is
unreachable the request is let through (fail open: the API stays up) and the failure is logged; ``/readyz``
reports the store as down.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse_many
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from openautoglm.core.errors import ConfigurationError
from openautoglm.serve.envelope import ApiError, Code

log = logging.getLogger(__name__)


def async_storage_uri(uri: str) -> str:
    """``redis://...`` -> ``async+redis://...`` (the asyncio storage); ``memory://`` likewise."""
    return uri if uri.startswith("async+") else f"async+{uri}"


class RateLimiter:
    """Per-subject limits.

    Args:
        limits: ``limits`` notation, e.g. ``"120/minute"`` or ``"10/second;600/hour"``.
        storage_uri: ``memory://`` or ``redis://host:port/db``.
        namespace: Prefix of every key (APIs sharing one Redis keep apart).
    """

    def __init__(self, limits: str, storage_uri: str, namespace: str = "openautoglm") -> None:
        try:
            self.items: list[RateLimitItem] = parse_many(limits)
        except ValueError:
            raise ConfigurationError(
                f"Rate limit '{limits}' is not in the limits notation.", hint="e.g. 120/minute or 10/second;600/hour"
            ) from None
        uri = async_storage_uri(storage_uri)
        options: dict[str, float | str | bool] = {}
        if uri.startswith("async+redis"):
            options["implementation"] = "redispy"  # redis-py is installed; coredis is not
        storage = storage_from_string(uri, **options)
        if not isinstance(storage, Storage):
            raise ConfigurationError(f"'{storage_uri}' is not an asyncio storage for limits.")
        self.storage = storage
        self.limiter = MovingWindowRateLimiter(storage)
        self.namespace = namespace
        self.shared = not uri.startswith("async+memory")

    async def hit(self, subject: str) -> None:
        """Count one request of ``subject``; :class:`ApiError` 429 when a limit is reached."""
        try:
            for item in self.items:
                if not await self.limiter.hit(item, self.namespace, subject):
                    stats = await self.limiter.get_window_stats(item, self.namespace, subject)
                    retry = max(1, math.ceil(stats.reset_time - time.time()))
                    raise ApiError(
                        Code.RATE_LIMITED,
                        f"rate limit {item} reached for this subject",
                        data={"limit": str(item), "retry_after_s": retry},
                        headers={"Retry-After": str(retry)},
                    )
        except ApiError:
            raise
        except Exception as error:  # store down: fail open, but say so
            log.warning("rate-limit store unreachable (%s); request let through", type(error).__name__)

    async def healthy(self) -> bool:
        try:
            return bool(await self.storage.check())
        except Exception:
            return False
