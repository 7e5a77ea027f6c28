"""Bounded model cost per request, with no model: the fair queue (order by subject and cost, batch bounds, the
per-subject share, deadlines), the lanes of the micro-batcher, the cost cap through the API, the encoders' cut and
cost estimate on fake encoders, and a template that repeats {text}."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.models.embedding import EmbeddingBackend, Encoder
from openautoglm.adapters.models.zero_shot import ZeroShotBackend
from openautoglm.core.nlp.types import Example, Row, TaskConfig
from openautoglm.core.prompt.optimizers.instruction_search import parse_instruction
from openautoglm.serve.app import create_app
from openautoglm.serve.batcher import DeadlineExceeded, FairQueue, MicroBatcher, Pending
from openautoglm.serve.envelope import Code
from openautoglm.serve.testing import FakeModel
from tests.unit.test_serve_api import auth, make_settings


def pending(subject: str, cost: float, key: str = "k", rows: int = 1, deadline: float = float("inf")) -> Pending:
    return Pending(key, list(range(rows)), subject=subject, cost=cost, deadline=deadline)


def drain(queue: FairQueue) -> list[list[Pending]]:
    """Every batch in the order one lane would run them (each released before the next is taken)."""
    batches = []
    while batch := queue.take():
        batches.append(batch)
        queue.release(batch)
    return batches


# --- the fair queue on its own ------------------------------------------------------------------------------
def test_a_heavy_subject_goes_after_the_others_small_requests() -> None:
    queue: FairQueue[str, int, int] = FairQueue(max_rows=64, max_cost=1.0)
    heavy = [pending("heavy", 5.0, key=f"h{i}") for i in range(3)]
    small = [pending("small", 0.1, key=f"s{i}") for i in range(3)]
    for p in heavy + small:  # the heavy subject queued first
        queue.push(p)
    order = [batch[0] for batch in drain(queue)]
    # Its first request came first; then every small request goes before its second (charged 5 s already).
    assert order == [heavy[0], *small, heavy[1], heavy[2]]


def test_an_idle_subject_banks_no_credit_and_keeps_its_debt() -> None:
    queue: FairQueue[str, int, int] = FairQueue(max_rows=64)
    for i in range(6):
        queue.push(pending("a", 1.0, key=f"a{i}"))
    for _ in range(3):
        queue.release(queue.take())  # "a" has been charged 3; the clock stands at 2
    late = [pending("b", 1.0, key=f"b{i}") for i in range(3)]
    for p in late:
        queue.push(p)
    order = [batch[0].subject for batch in drain(queue)]
    assert order == ["b", "a", "b", "a", "b", "a"]  # "b" starts level with the clock, not at 0: no burst of 3
    # A subject that spent more than its share stays charged after going idle.
    queue.push(pending("a", 10.0, key="a-big"))
    queue.release(queue.take())
    queue.push(pending("a", 1.0, key="a-next"))
    queue.push(pending("c", 1.0, key="c0"))
    assert queue.head() is not None and queue.head().subject == "c"


def test_batches_are_bounded_in_rows_and_cost_and_a_big_request_goes_alone() -> None:
    queue: FairQueue[str, int, int] = FairQueue(max_rows=4, max_cost=1.0)
    for i in range(4):
        queue.push(pending(f"u{i}", 0.4))  # the same key: they may share a call, but at most 1 s of it
    sizes = [[p.subject for p in batch] for batch in drain(queue)]
    assert sizes == [["u0", "u1"], ["u2", "u3"]]
    queue.push(pending("x", 3.0))
    queue.push(pending("y", 0.1))
    assert [len(b) for b in drain(queue)] == [1, 1]  # 3 s: alone, never split (and never refused here)
    queue.push(pending("r", 0.0, rows=3))
    queue.push(pending("s", 0.0, rows=3))
    assert [sum(len(p.items) for p in b) for b in drain(queue)] == [3, 3]
    queue.push(pending("z", 0.0, rows=9))
    assert queue.full(queue.head()) and [len(b[0].items) for b in drain(queue)] == [9]


def test_only_the_same_key_shares_a_call_and_fullness_says_when_to_stop_waiting() -> None:
    queue: FairQueue[str, int, int] = FairQueue(max_rows=3)
    queue.push(pending("a", 0.1, key="x"))
    queue.push(pending("b", 0.1, key="y"))
    assert not queue.full(queue.head())  # room for more of key x: worth waiting a little
    queue.push(pending("c", 0.1, key="x", rows=2))
    assert queue.full(queue.head())
    batch = queue.take()
    assert [p.subject for p in batch] == ["a", "c"] and {p.key for p in batch} == {"x"}


def test_a_subject_holds_at_most_its_share_of_the_lanes() -> None:
    queue: FairQueue[str, int, int] = FairQueue(share=1)
    queue.push(pending("heavy", 10.0, key="h1"))
    queue.push(pending("heavy", 10.0, key="h2"))
    first = queue.take()
    assert [p.key for p in first] == ["h1"]
    assert queue.head() is None and queue.take() == []  # its next request waits for its own lane to free up
    queue.push(pending("other", 0.1, key="o"))
    assert [p.key for p in queue.take()] == ["o"]  # the second lane is the others'
    queue.release(first)
    assert [p.key for p in queue.take()] == ["h2"]
    assert queue.in_flight == {"other": 1, "heavy": 1}


def test_expired_and_abandoned_requests_are_dropped_before_they_start() -> None:
    queue: FairQueue[str, int, int] = FairQueue()
    late = pending("a", 1.0, key="late", deadline=10.0)
    fine = pending("a", 1.0, key="fine", deadline=100.0)
    queue.push(late)
    queue.push(fine)
    assert queue.next_deadline() == 10.0
    assert queue.drop_expired(now=10.0) == [late]
    assert [b[0].key for b in drain(queue)] == ["fine"] and len(queue) == 0


# --- the micro-batcher's lanes and deadlines ------------------------------------------------------------------
def test_a_waiting_request_past_its_deadline_is_never_computed() -> None:
    seen: list[list[str]] = []

    def slow(key: str, items: list[str]) -> list[str]:
        seen.append(list(items))
        time.sleep(0.3)
        return items

    async def scenario() -> list[Any]:
        batcher: MicroBatcher[str, str, str] = MicroBatcher(slow, max_rows=1, max_wait_s=0.0, concurrency=1)
        try:
            first = asyncio.create_task(batcher.submit("k", ["first"], subject="a"))
            await asyncio.sleep(0.05)  # the only lane is busy with "first"
            late = batcher.submit("k", ["late"], subject="b", deadline=time.monotonic() + 0.1)
            return await asyncio.gather(first, late, return_exceptions=True)
        finally:
            await batcher.stop()

    first, late = asyncio.run(scenario())
    assert first == ["first"] and isinstance(late, DeadlineExceeded) and isinstance(late, TimeoutError)
    assert seen == [["first"]]


def test_one_subjects_long_calls_leave_a_lane_to_everyone_else() -> None:
    """Two lanes, share one: a subject's four 0.5-s calls run one at a time on one lane, and another subject's
    twenty small requests, sent one after another meanwhile, each start at once on the other."""
    running = threading.Semaphore(2)

    def model(key: str, items: list[str]) -> list[str]:
        if not running.acquire(blocking=False):
            raise AssertionError("more calls at once than lanes")
        try:
            time.sleep(0.5 if items[0] == "heavy" else 0.01)
            return items
        finally:
            running.release()

    async def scenario() -> tuple[list[float], float]:
        batcher: MicroBatcher[str, str, str] = MicroBatcher(model, max_rows=64, max_wait_s=0.002, concurrency=2)
        try:
            started = time.perf_counter()
            heavy = asyncio.gather(*[batcher.submit(f"h{i}", ["heavy"], subject="h", cost=0.5) for i in range(4)])
            await asyncio.sleep(0.05)
            latencies = []
            for _ in range(20):
                sent = time.perf_counter()
                assert await batcher.submit("s", ["small"], subject="s", cost=0.01) == ["small"]
                latencies.append(time.perf_counter() - sent)
            await heavy
            return latencies, time.perf_counter() - started
        finally:
            await batcher.stop()

    latencies, total = asyncio.run(scenario())
    assert max(latencies) < 0.4, latencies  # never behind a 0.5-s call
    assert total >= 2.0  # the heavy subject had one lane: its four calls ran one after another


def test_with_one_lane_the_small_requests_wait_for_one_call_at_most() -> None:
    order: list[str] = []

    def model(key: str, items: list[str]) -> list[str]:
        order.append(key)
        time.sleep(0.3 if key.startswith("h") else 0.005)
        return items

    async def scenario() -> list[float]:
        batcher: MicroBatcher[str, str, str] = MicroBatcher(model, max_rows=64, max_wait_s=0.0, concurrency=1)
        try:
            heavy = asyncio.gather(*[batcher.submit(f"h{i}", ["x"], subject="h", cost=0.3) for i in range(3)])
            await asyncio.sleep(0.02)
            sent = time.perf_counter()
            smalls = [batcher.submit(f"s{i}", ["x"], subject="s", cost=0.005) for i in range(3)]
            done = await asyncio.gather(*[_timed(s, sent) for s in smalls])
            await heavy
            return done
        finally:
            await batcher.stop()

    latencies = asyncio.run(scenario())
    assert order[:4] == ["h0", "s0", "s1", "s2"]  # after the call in progress, before the heavy subject's next
    assert max(latencies) < 0.6


async def _timed(awaitable: Any, since: float) -> float:
    await awaitable
    return time.perf_counter() - since


# --- the cost cap through the API ----------------------------------------------------------------------------
def test_a_request_over_the_cost_cap_is_a_422_with_the_estimate_before_any_model_call() -> None:
    FakeModel.reset()
    FakeModel.cost_per_char = 0.01  # "timed" at start-up: 10 ms a character
    try:
        with TestClient(create_app(make_settings(max_request_cost_s=0.5))) as client:
            over = client.post("/api/v1/classify/batch", json={"texts": ["好" * 30, "差" * 30]}, headers=auth())
            assert over.status_code == 422 and over.json()["code"] == Code.INVALID
            assert over.json()["data"] == {"estimated_cost_s": 0.6, "max_request_cost_s": 0.5}
            assert "0.6 s of model time" in over.json()["message"] and "at most 0.5 s" in over.json()["message"]
            assert FakeModel.batches == []
            under = client.post("/api/v1/classify/batch", json={"texts": ["好" * 20, "差" * 20]}, headers=auth())
            assert under.status_code == 200 and FakeModel.batches == [2]
    finally:
        FakeModel.reset()


def test_a_template_that_repeats_text_is_refused_everywhere() -> None:
    with pytest.raises(ValueError, match=r"\{text\} 3 times"):
        TaskConfig(labels=("a", "b"), prompt_template="{text}{text}{text}")
    with pytest.raises(ValueError, match=r"\{text_pair\} 2 times"):
        TaskConfig(task_type="semantic_matching", prompt_template="{text} {text_pair} {text_pair}")
    assert TaskConfig(labels=("a", "b"), prompt_template="{text}{text:>9}").template.count("{text}") == 1
    assert parse_instruction("判断 {text} 和 {text}", TaskConfig(labels=("a", "b"))) is None  # a proposal: dropped
    FakeModel.reset()
    with TestClient(create_app(make_settings())) as client:
        body = {"text": "好评", "prompt_template": "{text}" * 666}
        refused = client.post("/api/v1/classify", json=body, headers=auth())
        assert refused.status_code == 422 and "{text} 666 times" in refused.json()["message"]
    assert FakeModel.batches == []


# --- the encoders' cut and cost, on fake encoders ------------------------------------------------------------
class WordEncoder(Encoder):
    """One token per character plus two specials; records what reaches the model."""

    max_tokens = 12
    max_chars = 40

    def __init__(self, name: str = "words") -> None:
        self.name = name
        self.seen: list[str] = []

    def count_tokens(self, text: str) -> int:
        return len(text) + 2

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.seen += texts
        return np.array([[len(t) + 1.0, 1.0] for t in texts], dtype=np.float32)


def test_texts_are_cut_to_what_the_encoder_reads_before_the_cache_and_the_model() -> None:
    encoder = WordEncoder()
    assert encoder.truncate("a" * 10) == "a" * 10  # 12 tokens: fits
    assert encoder.truncate("a" * 11) == "a" * 10  # the longest prefix that fits
    assert encoder.truncate("b" * 5000) == "b" * 10  # characters first (40), then tokens
    cache = CallCache(__import__("pathlib").Path("unused.sqlite"), "off")
    encoder.encode(["x" * 300, "y" * 8], cache, BatchStats())
    assert encoder.seen == ["x" * 10, "y" * 8]


def test_few_shot_examples_and_label_descriptions_are_cut_too() -> None:
    encoder = WordEncoder()
    backend = EmbeddingBackend("words", encoder)
    config = TaskConfig(
        labels=("正面", "负面"),
        verbalizers=(("正面", "好" * 500),),
        few_shot=(Example(text="例" * 4000, label="负面"),),
    )
    backend.predict(config, [Row(row_id=0, text="文" * 4000)], CallCache(__import__("pathlib").Path("u"), "off"))
    assert max(len(t) for t in encoder.seen) == 10 and len(encoder.seen) == 4


def test_the_cost_estimate_counts_what_each_encoder_reads() -> None:
    strong, fast = WordEncoder("strong-test"), WordEncoder("fast-test")
    Encoder._timings["strong-test"] = (0.002, 700)  # as calibrate() would set them: s/char, full-input characters
    Encoder._timings["fast-test"] = (0.0001, 1024)
    try:
        plain = EmbeddingBackend("strong", strong)
        config = TaskConfig(labels=("正面", "负面"), prompt_template="评论:{text}")
        rows = [Row(row_id=0, text="好" * 4096), Row(row_id=1, text="差" * 10)]
        # rows inside the template (3 + n characters, at most 700 each) and the two labels (3 + 2 each)
        assert plain.cost(config, rows) == pytest.approx(0.002 * (700 + 13 + 5 + 5))
        auto = ZeroShotBackend("auto", fast=fast, strong=strong, min_student_rows=4, min_sample_rows=2)
        auto._phrase_memo = {("strong-test", tuple(t)): np.zeros(1) for t in _all_phrases(("正面", "负面"))}
        auto._phrase_memo |= {("fast-test", k[1]): v for k, v in auto._phrase_memo.items()}
        few = [Row(row_id=i, text="好" * 100) for i in range(3)]  # below the student: e5 on every row
        assert auto.cost(TaskConfig(labels=("正面", "负面")), few) == pytest.approx(0.002 * 300)
        many = [Row(row_id=i, text="好" * 100) for i in range(8)]  # a student: e5 on the sample of 2, USE on all
        assert auto.cost(TaskConfig(labels=("正面", "负面")), many) == pytest.approx(0.002 * 200 + 0.0001 * 800)
        fresh = auto.cost(TaskConfig(labels=("甲", "乙")), few)  # labels never encoded: their phrases count
        assert fresh is not None and fresh > 0.002 * 300
    finally:
        Encoder._timings.pop("strong-test", None)
        Encoder._timings.pop("fast-test", None)


def _all_phrases(labels: Sequence[str]) -> list[list[str]]:
    from openautoglm.core.nlp import label_expansion

    return [label_expansion.framed(label) for label in labels] + [
        list(g) for g in label_expansion.DESCRIPTOR_GROUPS.values()
    ]


def test_calibration_times_a_full_input() -> None:
    encoder = WordEncoder("calibrated-test")
    try:
        seconds = encoder.calibrate(text="评论很好", repeats=1)
        assert seconds > 0 and encoder.seconds_per_char == seconds
        assert encoder.cost_chars == 10  # the calibration text repeated, cut to 12 tokens
        assert encoder.seen[-1] == ("评论很好" * 3)[:10]
        assert WordEncoder("calibrated-test").seconds_per_char == seconds  # a lane's copy is not timed again
    finally:
        Encoder._timings.pop("calibrated-test", None)
