"""Micro-batching with a fair share of the model for every subject.

Concurrent requests are gathered into one model call (run on a worker thread), and each request gets back its own
slice of the results. Which requests go next is decided per subject (the token's subject), by cost:

- **Fair order.** Requests wait in one queue per subject. A free lane takes the head request of the subject charged
  the least model time so far, then requests with the same key (the task configuration) from any subject, until the
  batch holds ``max_rows`` rows or ``max_cost`` estimated seconds; a single request over either goes alone and is
  never split (a transductive model sees a request whole). Every subject is charged the estimated cost of its
  requests when they are taken, and a subject that had nothing waiting starts at the charge of the request last
  started, so idling banks no credit: start-time fair queuing (Goyal, Vin and Cheng 1996) with cost as the length.
  One subject's heavy batch therefore goes after everyone else's small requests that came before it was finished
  being paid for, however many it sends.
- **A share of the lanes.** ``concurrency`` lanes (model copies) run batches at once; a subject has at most
  ``share`` batches in flight (default ``concurrency - 1``, at least 1), so with two lanes one subject's long call
  never holds the last free lane: the others' requests start at once.
- **Deadlines.** A request carries its deadline; one still waiting when it passes is answered
  :class:`DeadlineExceeded` and never reaches the model, and one whose caller went away (its future cancelled) is
  dropped. A call that has started runs to its end (a thread cannot be stopped): what bounds it is the per-request
  cost cap the caller checks before submitting.

The first request of a batch waits at most ``max_wait_s`` for company, unless its batch is already full; while the
lanes are busy new requests queue up, so under load batches grow by themselves and the wait is rarely paid.
``max_rows=1`` turns batching off (one call per request), which is the benchmark's baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741

#: Runs one batch: (key, items) -> one output per item, in order. Called on a worker thread.
BatchFunction = Callable[[K, list[I]], list[O]]


class DeadlineExceeded(TimeoutError):
    """The request's deadline passed while it waited: it was never given to the model."""


@dataclass(eq=False)
class Pending(Generic[K, I, O]):
    """One submitted request: its rows, who sent it, what it is estimated to cost and when its answer is due
    (``time.monotonic()`` seconds)."""

    key: K
    items: list[I]
    future: asyncio.Future[list[O]] | None = None
    subject: str = ""
    cost: float = 1.0
    deadline: float = math.inf
    queued_at: float = field(default_factory=time.monotonic)

    @property
    def gone(self) -> bool:
        """The caller stopped waiting (its future was cancelled or answered)."""
        return self.future is not None and self.future.done()


class FairQueue(Generic[K, I, O]):
    """The waiting requests and the order they are served in (no I/O, no clock of its own: tests drive it).

    Args:
        max_rows: Rows per batch at most (a larger request goes alone).
        max_cost: Estimated seconds per batch at most (a costlier request goes alone).
        share: Batches one subject may have in flight at once.
    """

    def __init__(self, *, max_rows: int = 64, max_cost: float = math.inf, share: int = 1) -> None:
        if max_rows < 1 or share < 1 or not max_cost > 0:
            raise ValueError("max_rows and share must be >= 1 and max_cost > 0")
        self.max_rows = max_rows
        self.max_cost = max_cost
        self.share = share
        self._waiting: dict[str, deque[Pending[K, I, O]]] = {}
        self._charge: dict[str, float] = {}  # per subject: the start tag of its next request
        self._virtual = 0.0  # the start tag of the request last taken
        self.in_flight: dict[str, int] = {}

    def __len__(self) -> int:
        return sum(len(q) for q in self._waiting.values())

    def push(self, pending: Pending[K, I, O]) -> None:
        """Queue ``pending`` behind its subject's earlier requests."""
        subject = pending.subject
        if subject not in self._waiting:  # idle until now: no credit banked, a debt still owed
            self._waiting[subject] = deque()
            self._charge[subject] = max(self._charge.get(subject, self._virtual), self._virtual)
        self._waiting[subject].append(pending)

    def drop_expired(self, now: float) -> list[Pending[K, I, O]]:
        """Remove and return the waiting requests whose deadline has passed or whose caller went away."""
        dropped: list[Pending[K, I, O]] = []
        for subject in list(self._waiting):
            queue = self._waiting[subject]
            keep = deque(p for p in queue if not (p.gone or p.deadline <= now))
            if len(keep) != len(queue):
                dropped += [p for p in queue if p.gone or p.deadline <= now]
                self._set(subject, keep)
        return dropped

    def next_deadline(self) -> float:
        """The earliest deadline among waiting requests (``inf`` when none)."""
        return min((p.deadline for q in self._waiting.values() for p in q), default=math.inf)

    def _eligible(self) -> list[str]:
        """Subjects with a request waiting and a batch to spare, least charged first (then the oldest head)."""
        subjects = [s for s, q in self._waiting.items() if q and self.in_flight.get(s, 0) < self.share]
        return sorted(subjects, key=lambda s: (self._charge[s], self._waiting[s][0].queued_at))

    def head(self) -> Pending[K, I, O] | None:
        """The request the next batch starts with, or ``None`` when no subject may start one."""
        eligible = self._eligible()
        return self._waiting[eligible[0]][0] if eligible else None

    def _companions(self, head: Pending[K, I, O]) -> tuple[list[Pending[K, I, O]], bool]:
        """The batch ``head`` would start: requests of the same key in fair order while it has room; and whether
        it is full (a row or cost bound reached, or the next such request did not fit)."""
        rows, cost, chosen = len(head.items), head.cost, [head]
        for subject in self._eligible():
            for pending in self._waiting[subject]:
                if pending is head or pending.key != head.key:
                    continue
                if rows + len(pending.items) > self.max_rows or cost + pending.cost > self.max_cost:
                    return chosen, True  # in order: a later, smaller request does not jump this one
                chosen.append(pending)
                rows += len(pending.items)
                cost += pending.cost
        return chosen, rows >= self.max_rows or cost >= self.max_cost

    def full(self, head: Pending[K, I, O]) -> bool:
        """Whether ``head``'s batch can grow no further (so waiting for company gains nothing)."""
        return self._companions(head)[1]

    def take(self) -> list[Pending[K, I, O]]:
        """The next batch (removed from the queue, its subjects charged and counted in flight); ``[]`` when none
        may start."""
        head = self.head()
        if head is None:
            return []
        batch, _ = self._companions(head)
        self._virtual = max(self._virtual, self._charge[head.subject])
        for pending in batch:
            subject = pending.subject
            self._waiting[subject].remove(pending)
            self._charge[subject] += pending.cost
            self._set(subject, self._waiting[subject])
        for subject in {p.subject for p in batch}:
            self.in_flight[subject] = self.in_flight.get(subject, 0) + 1
        return batch

    def release(self, batch: Sequence[Pending[K, I, O]]) -> None:
        """The batch's call has ended: its subjects may start other batches."""
        for subject in {p.subject for p in batch}:
            left = self.in_flight.get(subject, 0) - 1
            if left > 0:
                self.in_flight[subject] = left
            else:
                self.in_flight.pop(subject, None)
        self._forget_paid()

    def _set(self, subject: str, queue: deque[Pending[K, I, O]]) -> None:
        if queue:
            self._waiting[subject] = queue
        else:
            self._waiting.pop(subject, None)
            self._forget_paid()

    def _forget_paid(self) -> None:
        """Drop the charges of idle subjects that owe nothing (they would restart at the virtual time anyway), so
        the table holds only subjects with work or debt."""
        for subject in [s for s, c in self._charge.items() if s not in self._waiting and c <= self._virtual]:
            if not self.in_flight.get(subject):
                del self._charge[subject]


class MicroBatcher(Generic[K, I, O]):
    """Gathers ``submit`` calls into batches for ``function``, served fairly between subjects (module docstring).

    Args:
        function: The batch function (blocking; runs in a thread).
        max_rows: Rows per call at most; a single request larger than this is sent alone.
        max_wait_s: How long the first request of a batch waits for others.
        concurrency: Batches in flight at once (lanes: model copies for a local model, calls for an API).
        max_cost: Estimated seconds per call at most; a single costlier request is sent alone.
        share: Batches one subject may have in flight (default ``concurrency - 1``, at least 1).
        on_batch: Called with (key, rows, seconds) after each call (metrics).
    """

    def __init__(
        self,
        function: BatchFunction[K, I, O],
        *,
        max_rows: int = 64,
        max_wait_s: float = 0.005,
        concurrency: int = 1,
        max_cost: float = math.inf,
        share: int | None = None,
        on_batch: Callable[[K, int, float], None] | None = None,
    ) -> None:
        if max_rows < 1 or concurrency < 1 or max_wait_s < 0:
            raise ValueError("max_rows and concurrency must be >= 1 and max_wait_s >= 0")
        self.function = function
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self.concurrency = concurrency
        self.on_batch = on_batch
        self.queue: FairQueue[K, I, O] = FairQueue(
            max_rows=max_rows, max_cost=max_cost, share=share or max(1, concurrency - 1)
        )
        self._changed: asyncio.Event | None = None
        self._workers: list[asyncio.Task[None]] = []
        self.batches = 0
        self.rows = 0
        self.expired = 0

    def start(self) -> None:
        """Start the lanes on the running loop."""
        if self._workers:
            return
        self._changed = asyncio.Event()
        self._workers = [asyncio.create_task(self._run(), name=f"batcher-{i}") for i in range(self.concurrency)]

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self.start()
        if self._changed is None:  # pragma: no cover (start sets it)
            raise RuntimeError("the batcher did not start")
        return self._changed

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []

    async def submit(
        self,
        key: K,
        items: Sequence[I],
        *,
        subject: str = "",
        cost: float | None = None,
        deadline: float | None = None,
    ) -> list[O]:
        """The outputs for ``items`` (in order), computed in a batch with other requests of the same key.

        Args:
            subject: Who asks (the fair share is per subject).
            cost: Estimated seconds of model time (default: one per item).
            deadline: ``time.monotonic()`` after which the request is not started (:class:`DeadlineExceeded`).
        """
        changed = self._event()
        future: asyncio.Future[list[O]] = asyncio.get_running_loop().create_future()
        self.queue.push(
            Pending(
                key,
                list(items),
                future,
                subject=subject,
                cost=float(len(items)) if cost is None else cost,
                deadline=math.inf if deadline is None else deadline,
            )
        )
        changed.set()
        return await future

    async def _next(self) -> list[Pending[K, I, O]]:
        """Wait for a batch this lane may start, answering expired requests meanwhile."""
        changed = self._event()
        while True:
            now = time.monotonic()
            for pending in self.queue.drop_expired(now):
                if pending.future is not None and not pending.future.done():
                    self.expired += 1
                    pending.future.set_exception(DeadlineExceeded("the request's deadline passed before it started"))
            head = self.queue.head()
            wake = self.queue.next_deadline()
            if head is not None:
                ready = head.queued_at + self.max_wait_s
                if ready <= now or self.queue.full(head):
                    return self.queue.take()
                wake = min(wake, ready)
            changed.clear()
            timeout = None if math.isinf(wake) else max(0.0, wake - now)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), timeout)

    async def _run(self) -> None:
        while True:
            batch = await self._next()
            try:
                await self._call(batch[0].key, [p for p in batch if not p.gone])
            finally:
                self.queue.release(batch)
                self._event().set()  # a lane and a subject's share are free again

    async def _call(self, key: K, members: list[Pending[K, I, O]]) -> None:
        if not members:
            return
        flat: list[I] = [item for m in members for item in m.items]
        started = time.perf_counter()
        try:
            outputs = await asyncio.to_thread(self.function, key, flat)
            if len(outputs) != len(flat):
                raise RuntimeError(f"batch function returned {len(outputs)} outputs for {len(flat)} items")
        except Exception as error:  # every waiting request gets the error
            for m in members:
                if m.future is not None and not m.future.done():
                    m.future.set_exception(error)
            return
        finally:
            seconds = time.perf_counter() - started
            self.batches += 1
            self.rows += len(flat)
            if self.on_batch is not None:
                try:
                    self.on_batch(key, len(flat), seconds)
                except Exception:  # metrics must never break serving
                    log.exception("on_batch callback failed")
        start = 0
        for m in members:
            part = outputs[start : start + len(m.items)]
            start += len(m.items)
            if m.future is not None and not m.future.done():
                m.future.set_result(part)


__all__ = ["BatchFunction", "DeadlineExceeded", "FairQueue", "MicroBatcher", "Pending"]
