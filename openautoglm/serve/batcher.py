"""Micro-batching: concurrent requests gathered into one model call, with a bounded wait.

A dispatcher task takes the first waiting request, then waits at most ``max_wait_s`` for more until
``max_rows`` rows are gathered; requests with the same key (the task configuration) go to the model together,
in one call run on a worker thread, and each request gets back its own slice of the results. While a call runs,
new requests queue up, so under load batches grow by themselves and the wait is rarely paid.
``max_rows=1`` turns batching off (one call per request), which is the benchmark's baseline.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
I = TypeVar("I")  # noqa: E741
O = TypeVar("O")  # noqa: E741

#: Runs one batch: (key, items) -> one output per item, in order. Called on a worker thread.
BatchFunction = Callable[[K, list[I]], list[O]]


@dataclass
class _Pending(Generic[K, I, O]):
    key: K
    items: list[I]
    future: asyncio.Future[list[O]]
    queued_at: float = field(default_factory=time.perf_counter)


class MicroBatcher(Generic[K, I, O]):
    """Gathers ``submit`` calls into batches for ``function``.

    Args:
        function: The batch function (blocking; runs in a thread).
        max_rows: Rows per call at most; a single request larger than this is sent alone.
        max_wait_s: How long the first request of a batch waits for others.
        concurrency: Batches in flight at once (1 for a local model, more for an API).
        on_batch: Called with (key, rows, seconds) after each call (metrics).
    """

    def __init__(
        self,
        function: BatchFunction[K, I, O],
        *,
        max_rows: int = 64,
        max_wait_s: float = 0.005,
        concurrency: int = 1,
        on_batch: Callable[[K, int, float], None] | None = None,
    ) -> None:
        if max_rows < 1 or concurrency < 1 or max_wait_s < 0:
            raise ValueError("max_rows and concurrency must be >= 1 and max_wait_s >= 0")
        self.function = function
        self.max_rows = max_rows
        self.max_wait_s = max_wait_s
        self.concurrency = concurrency
        self.on_batch = on_batch
        self._queue: asyncio.Queue[_Pending[K, I, O]] | None = None
        self._workers: list[asyncio.Task[None]] = []
        self.batches = 0
        self.rows = 0

    def start(self) -> None:
        """Start the dispatcher tasks on the running loop."""
        if self._workers:
            return
        self._queue = asyncio.Queue()
        self._workers = [asyncio.create_task(self._run(), name=f"batcher-{i}") for i in range(self.concurrency)]

    def _started(self) -> asyncio.Queue[_Pending[K, I, O]]:
        if self._queue is None:
            self.start()
        if self._queue is None:  # pragma: no cover (start sets it)
            raise RuntimeError("the batcher did not start")
        return self._queue

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []

    async def submit(self, key: K, items: Sequence[I]) -> list[O]:
        """The outputs for ``items`` (in order), computed in a batch with other requests of the same key."""
        queue = self._started()
        future: asyncio.Future[list[O]] = asyncio.get_running_loop().create_future()
        await queue.put(_Pending(key, list(items), future))
        return await future

    async def _gather(
        self, carry: _Pending[K, I, O] | None
    ) -> tuple[list[_Pending[K, I, O]], _Pending[K, I, O] | None]:
        """One batch: the carried or first waiting request, plus others until full or the wait is over.
        Returns the batch and a request that did not fit (it starts the next batch)."""
        queue = self._started()
        first = carry if carry is not None else await queue.get()
        taken = [first]
        rows = len(first.items)
        deadline = time.perf_counter() + self.max_wait_s
        while rows < self.max_rows:
            try:
                pending = queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    pending = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    break
            if rows + len(pending.items) > self.max_rows:
                return taken, pending
            taken.append(pending)
            rows += len(pending.items)
        return taken, None

    async def _run(self) -> None:
        carry: _Pending[K, I, O] | None = None
        while True:
            taken, carry = await self._gather(carry)
            groups: dict[K, list[_Pending[K, I, O]]] = {}
            for pending in taken:
                if not pending.future.done():  # a client that went away is not computed
                    groups.setdefault(pending.key, []).append(pending)
            for key, members in groups.items():
                await self._call(key, members)

    async def _call(self, key: K, members: list[_Pending[K, I, O]]) -> None:
        flat: list[I] = [item for m in members for item in m.items]
        started = time.perf_counter()
        try:
            outputs = await asyncio.to_thread(self.function, key, flat)
            if len(outputs) != len(flat):
                raise RuntimeError(f"batch function returned {len(outputs)} outputs for {len(flat)} items")
        except Exception as error:  # every waiting request gets the error
            for m in members:
                if not m.future.done():
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
            if not m.future.done():
                m.future.set_result(part)


__all__ = ["BatchFunction", "MicroBatcher"]
