from __future__ import annotations

import pandas as pd
import pytest

from openautoglm.adapters.validation import SUITES, ValidationConfig, apply_gate, validate_dataset
from openautoglm.core.data.schema import ROW_ID, Dataset
from openautoglm.core.errors import ConfigurationError, ValidationGateError


def dataset(rows: list[tuple[str | None, str | None, str]]) -> Dataset:
    frame = pd.DataFrame(
        {
            ROW_ID: range(len(rows)),
            "text": pd.array([r[0] for r in rows], dtype="string"),
            "label": pd.array([r[1] for r in rows], dtype="string"),
            "id": pd.array([r[2] for r in rows], dtype="string"),
        }
    )
    return Dataset(frame=frame, source="mem", rows_read=len(rows))


CONFIG = ValidationConfig(label_column="label", labels=("正面", "负面"), id_column="id", max_length=5)


def test_row_level_failures_carry_every_reason() -> None:
    data = dataset(
        [
            ("好吃", "正面", "a"),
            (None, "差评", "b"),
            ("太长太长太长", "负面", "c"),
            ("ok", "正面", "c"),
            ("ok!", None, "d"),
        ]
    )
    outcome = validate_dataset(data, CONFIG)
    assert not outcome.success
    reasons = dict(zip(outcome.failures["row_id"], outcome.failures["reason"], strict=True))
    assert reasons[1] == "text is missing; label '差评' is not one of ['正面', '负面']"
    assert reasons[4] == "label is missing"
    assert reasons[2] == "text has 6 characters, outside [1, 5]; id 'c' is not unique"
    assert reasons[3] == "id 'c' is not unique"
    assert 0 not in reasons
    assert set(outcome.failures["stage"]) == {"validate"}
    failed = {(e.expectation, e.column): e.failed for e in outcome.expectations if not e.success}
    assert failed == {
        ("expect_column_values_to_not_be_null", "text"): 1,
        ("expect_column_values_to_not_be_null", "label"): 1,
        ("expect_column_value_lengths_to_be_between", "text"): 1,
        ("expect_column_values_to_be_unique", "id"): 2,
        ("expect_column_values_to_be_in_set", "label"): 1,
    }
    assert "| expect_column_values_to_be_in_set | label | no |" in outcome.summary_markdown()


def test_gate_fail_raises_a_readable_summary() -> None:
    data = dataset([("好吃", "正面", "a"), ("难吃", "差评", "b")])
    outcome = validate_dataset(data, CONFIG)
    with pytest.raises(ValidationGateError) as info:
        apply_gate(data, outcome, "fail")
    assert "expect_column_values_to_be_in_set on 'label': 1 of 2 rows fail (e.g. '差评')" in str(info.value)
    assert "--gate quarantine" in str(info.value)


def test_gate_quarantine_moves_failing_rows_and_keeps_accounting() -> None:
    data = dataset([("好吃", "正面", "a"), ("难吃", "差评", "b"), ("还行", "负面", "c")])
    gated = apply_gate(data, validate_dataset(data, CONFIG), "quarantine")
    assert gated.frame[ROW_ID].tolist() == [0, 2]
    assert gated.quarantine["row_id"].tolist() == [1]
    assert gated.quarantine["location"].tolist() == ["mem:record 1"]
    assert '"label": "差评"' in gated.quarantine["record"].iloc[0]
    assert gated.rows_read == len(gated) + len(gated.quarantine)


def test_passing_data_is_unchanged() -> None:
    data = dataset([("好吃", "正面", "a")])
    outcome = validate_dataset(data, CONFIG)
    assert outcome.success and outcome.failures.empty
    assert apply_gate(data, outcome, "fail") is data


def test_unknown_columns_are_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"\['review'\]"):
        validate_dataset(dataset([("a", "正面", "a")]), ValidationConfig(text_columns=("review",)))


def test_a_suite_per_task_kind() -> None:
    assert {"text_classification", "ner", "semantic_matching", "generic"} <= set(SUITES.choices())
    ner = validate_dataset(dataset([("a", "whatever", "x")]), CONFIG.model_copy(update={"task": "ner"}))
    assert ner.success  # NER has no label set on this column


def test_large_failures_are_complete_not_capped() -> None:
    rows = [("x", "坏", str(i)) for i in range(450)]
    outcome = validate_dataset(dataset(rows), CONFIG)
    assert len(outcome.failures) == 450  # GE's partial list stops at 20; COMPLETE must not
