from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from openautoglm.core.data.values import to_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        (float("nan"), None),
        (pd.NA, None),
        ("正面", "正面"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (3.0, "3"),
        (0.25, "0.25"),
        (Decimal("1.00"), "1"),
        (Decimal("1.50"), "1.5"),
        (np.int64(7), "7"),
        (np.float64(2.5), "2.5"),
        (dt.date(2026, 1, 2), "2026-01-02"),
        (b"\xe5\xa5\xbd", "好"),
        ({"a": [1, "好"]}, '{"a": [1, "好"]}'),
    ],
)
def test_to_text_is_the_same_for_every_source(value: object, text: str | None) -> None:
    assert to_text(value) == text
