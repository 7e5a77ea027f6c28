"""The embedded encoders read a bounded input: e5 its 512 positions (cut by its own tokenizer), USE 1,024
characters. A long text costs what a full input costs, whoever sends it (API, SDK, flows all encode through
:meth:`Encoder.encode`), and the cost estimate matches what the model then takes."""

from __future__ import annotations

import random
import time
from pathlib import Path

import numpy as np
import pytest

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.models.embedding import E5Encoder, EmbeddingBackend, UseEncoder
from openautoglm.core.nlp.types import Example, Row, TaskConfig

pytestmark = [pytest.mark.integration]

OFF = CallCache(Path("unused.sqlite"), "off")


def random_cjk(n: int, seed: int = 0) -> str:
    rng = random.Random(seed)
    return "".join(chr(rng.randint(0x4E00, 0x9FFF)) for _ in range(n))


def test_e5_keeps_the_longest_prefix_of_512_tokens_and_encodes_nothing_more() -> None:
    e5 = E5Encoder()
    short = "物流很快，包装也很好，非常满意"
    assert e5.truncate(short) == short
    long = random_cjk(4096)
    cut = e5.truncate(long)
    assert long.startswith(cut) and e5.count_tokens(cut) <= 512 < e5.count_tokens(long[: len(cut) + 1])
    assert 400 < len(cut) < 600  # random CJK: about a token a character
    started = time.perf_counter()
    whole = e5.encode([long], OFF, BatchStats())
    seconds = time.perf_counter() - started
    assert np.allclose(whole, e5.encode([cut], OFF, BatchStats()), atol=1e-5)  # the same input reached the model
    assert seconds < 6.0  # one 512-token window (~1.3 s here), not the eight that sliding windows took (~12 s)


def test_use_reads_at_most_1024_characters() -> None:
    use = UseEncoder()
    long = random_cjk(4096, seed=1)
    assert use.truncate(long) == long[:1024]
    assert np.allclose(use.encode([long], OFF, BatchStats()), use.encode([long[:1024]], OFF, BatchStats()))


def test_few_shot_examples_and_verbalisers_are_cut_and_the_estimate_holds() -> None:
    e5 = E5Encoder()
    e5.calibrate()
    assert e5.seconds_per_char is not None and e5.cost_chars is not None and 500 < e5.cost_chars < 1000
    backend = EmbeddingBackend("local-e5", e5)
    config = TaskConfig(
        labels=("正面", "负面"),
        verbalizers=(("正面", random_cjk(1000, seed=2)),),
        few_shot=(Example(text=random_cjk(4000, seed=3), label="负面"),),
    )
    rows = [Row(row_id=i, text=random_cjk(4096, seed=10 + i)) for i in range(3)]
    estimate = backend.cost(config, rows)
    started = time.perf_counter()
    backend.predict(config, rows, OFF)
    took = time.perf_counter() - started
    assert estimate is not None
    # Five full inputs (3 rows, one example, one verbaliser) and a label: the estimate is within 2x either way
    # (random CJK has ~1.4x the tokens per character of the calibration review; the machine is shared).
    assert estimate / 2 < took < estimate * 2, (estimate, took)
