"""A hard cap on model calls and tokens, enforced where calls are made.

The budget counts the distinct model requests a search needs (each embedded text, each chat request), whether the
answer comes from the model or from the call cache. So a rerun of the same search takes the same path, stops at
the same point and pays nothing (every request is cached), and the calls actually sent to the model
(``fresh_calls``, retries included) are never more than the budget either.

The optimiser opens a :class:`CallMeter` with :func:`metered`; backends call :func:`charge` with the request's
cache key before looking it up, :func:`record_fresh` for each call they send, and :func:`record_tokens` for its
tokens. ``charge`` raises :class:`BudgetExhausted` instead of admitting a request that could pass a cap; tokens are
checked against an upper estimate of the request (prompt characters plus the completion limit).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

from openautoglm.core.errors import OpenAutoGLMError


class Budget(BaseModel):
    """Caps for one optimisation. ``None`` means no cap on tokens."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_calls: int = Field(default=2000, ge=0, description="Model calls (each embedded text, each chat request).")
    max_tokens: int | None = Field(default=None, ge=0, description="Tokens billed (prompt + completion).")


class BudgetExhausted(OpenAutoGLMError):
    """The next model request could pass the budget; nothing more is asked."""


@dataclass
class Spent:
    """``calls``: distinct requests charged (the budget's count); ``fresh_calls``: calls sent to the model."""

    calls: int = 0
    tokens: int = 0
    fresh_calls: int = 0


class CallMeter:
    """Counts requests and tokens against a :class:`Budget`; safe to share between threads.

    Args:
        budget: The caps.
        seen: Request keys already charged elsewhere in the same search (e.g. by other Dask tasks).
    """

    def __init__(self, budget: Budget, seen: Iterable[str] = ()) -> None:
        self.budget = budget
        self.spent = Spent()
        self.seen: set[str] = set(seen)
        self.charged: list[str] = []
        self.refused = 0
        self._lock = threading.Lock()

    def charge(self, key: str, token_estimate: int = 0) -> bool:
        """Admit request ``key``; True if it is new to this search (charged now), False if charged before."""
        with self._lock:
            if key in self.seen:
                return False
            if self.spent.calls + 1 > self.budget.max_calls:
                self.refused += 1
                raise BudgetExhausted(
                    f"call budget reached: {self.spent.calls} of {self.budget.max_calls} calls spent",
                    hint="raise the budget to search further; every answer so far is cached and costs nothing again",
                )
            cap = self.budget.max_tokens
            if cap is not None and self.spent.tokens + token_estimate > cap:
                self.refused += 1
                raise BudgetExhausted(
                    f"token budget reached: {self.spent.tokens} of {cap} tokens spent (the next request may use up "
                    f"to {token_estimate})",
                    hint="raise the token budget to search further",
                )
            self.seen.add(key)
            self.charged.append(key)
            self.spent.calls += 1
            return True

    def record_tokens(self, tokens: int) -> None:
        with self._lock:
            self.spent.tokens += tokens

    def record_fresh(self, calls: int) -> None:
        """Count calls about to be sent; raise :class:`BudgetExhausted` if they would pass the cap (retries of a
        failed call are sent again, so they count here even though the request was charged once)."""
        with self._lock:
            if self.spent.fresh_calls + calls > self.budget.max_calls:
                self.refused += 1
                raise BudgetExhausted(
                    f"call budget reached: {self.spent.fresh_calls} calls sent of {self.budget.max_calls}",
                    hint="raise the budget to search further; every answer so far is cached and costs nothing again",
                )
            self.spent.fresh_calls += calls

    def absorb(self, keys: Iterable[str], tokens: int, fresh_calls: int) -> None:
        """Add what another meter of the same search charged (a Dask task's share of a round); never passes the
        caps because the shares of a round add up to at most this meter's remainder. A request charged by two
        tasks of one round counts twice (both may have sent it), so calls sent never exceed the count."""
        with self._lock:
            for key in keys:
                self.spent.calls += 1
                if key not in self.seen:
                    self.seen.add(key)
                    self.charged.append(key)
            self.spent.tokens += tokens
            self.spent.fresh_calls += fresh_calls

    @property
    def calls_left(self) -> int:
        """What may still be charged or sent (whichever count is higher limits both)."""
        return self.budget.max_calls - max(self.spent.calls, self.spent.fresh_calls)

    @property
    def tokens_left(self) -> int | None:
        cap = self.budget.max_tokens
        return None if cap is None else cap - self.spent.tokens


_ACTIVE: contextvars.ContextVar[CallMeter | None] = contextvars.ContextVar("openautoglm_call_meter", default=None)


@contextmanager
def metered(meter: CallMeter) -> Iterator[CallMeter]:
    """Model requests made in this context (and in threads started with its context copied) go on ``meter``."""
    token = _ACTIVE.set(meter)
    try:
        yield meter
    finally:
        _ACTIVE.reset(token)


def charge(key: str, token_estimate: int = 0) -> bool:
    """Charge the active meter for request ``key`` (backends call this before the cache lookup). True when the
    request is new to the search (its tokens should then be recorded), or when no meter is active."""
    meter = _ACTIVE.get()
    return True if meter is None else meter.charge(key, token_estimate)


def record_tokens(tokens: int) -> None:
    meter = _ACTIVE.get()
    if meter is not None and tokens:
        meter.record_tokens(tokens)


def record_fresh(calls: int = 1) -> None:
    meter = _ACTIVE.get()
    if meter is not None and calls:
        meter.record_fresh(calls)
