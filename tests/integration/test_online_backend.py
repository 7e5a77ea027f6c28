"""``local-online`` (the API's default classifier) with its real encoders on real reviews: the teacher answers a label
set's first rows, then the student it taught answers nearly all of them and agrees with the teacher; a lane copy
shares the student; the cost estimate drops once the student answers."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models import ModelSpec, load_backend
from openautoglm.adapters.models.online import OnlineDistilledBackend
from openautoglm.core.nlp.types import Row, TaskConfig

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]
CONFIG = TaskConfig(
    task_type="text_classification", labels=("正面", "负面"), prompt_template="判断以下用户反馈的情感倾向:{text}"
)


def _reviews(n: int) -> list[str]:
    configured = os.environ.get("OPENAUTOGLM_DATA_ROOT")
    path = (Path(configured) if configured else REPO.parent / "shared" / "datasets") / "text/waimai_10k/waimai_10k.csv"
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"the shared waimai_10k data is missing at {path}")
        pytest.skip("no shared waimai_10k data here")
    frame = pd.read_csv(path).sample(frac=1.0, random_state=0)
    return frame["review"].astype(str).tolist()[2000 : 2000 + n]  # train rows of bench/nlp.py's split


def test_the_student_takes_over_from_the_teacher(tmp_path: Path) -> None:
    texts = _reviews(500)
    backend = load_backend(ModelSpec(model="local-online"))
    assert isinstance(backend, OnlineDistilledBackend)
    cache = CallCache(tmp_path / "cache.sqlite", "off")
    backend.calibrate(CONFIG)  # as the API does at start-up: the cost estimate needs the encoders' timings
    before = backend.cost(CONFIG, [Row(row_id=0, text=texts[0])])
    answered: list[str | None] = []
    for start in range(0, 300, 10):
        results, _ = backend.predict(CONFIG, [Row(row_id=i, text=texts[i]) for i in range(start, start + 10)], cache)
        assert all(r.status == "ok" for r in results)
        answered += [r.extra.get("answered_by") for r in results]  # type: ignore[misc]
    assert answered[:200] == ["zero-shot"] * 200  # the warm-up: the teacher answers every row
    for _ in range(100):  # the first fit runs on a background thread
        if backend._students.get(CONFIG).ready:
            break
        time.sleep(0.1)
    later = [Row(row_id=i, text=texts[i]) for i in range(300, 500)]
    results, _ = backend.predict(CONFIG, later, cache)
    by = [r.extra.get("answered_by") for r in results]
    assert by.count("online-student") >= 180, by.count("online-student")  # the 3% sample goes to the teacher
    teacher, _ = backend.teacher.predict(CONFIG, later[:150], cache)  # under its student size: e5 on every row
    agree = sum(a.prediction == b.prediction for a, b in zip(results[:150], teacher, strict=True)) / 150
    assert agree >= 0.85, agree
    after = backend.cost(CONFIG, [Row(row_id=0, text=texts[0])])
    assert before is not None and after is not None and after < before / 3
    copy = backend.lane_copy()
    assert isinstance(copy, OnlineDistilledBackend) and copy.teacher is not backend.teacher
    results, _ = copy.predict(CONFIG, later[:20], cache)  # the copy's first call: the shared student answers
    assert sum(r.extra.get("answered_by") == "online-student" for r in results) >= 15
