"""Task configuration, prompts, strict parsing, metrics and result tables (no model)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from pydantic import ValidationError

from openautoglm.core.data.schema import ROW_ID
from openautoglm.core.nlp.batching import batches, frame_rows
from openautoglm.core.nlp.metrics import (
    bio_to_spans,
    classification_metrics,
    matching_metrics,
    ner_metrics,
    spans_to_bio,
)
from openautoglm.core.nlp.parse import ParseError, parse_entities, parse_label, parse_score
from openautoglm.core.nlp.prompts import build_messages, repair_messages
from openautoglm.core.nlp.results import evaluate, results_frame
from openautoglm.core.nlp.types import Entity, Example, Row, RowResult, TaskConfig

CLS = TaskConfig(labels=("正面", "负面", "中性"), prompt_template="判断以下用户反馈的情感倾向:{text}")
NER = TaskConfig(task_type="ner")
MATCH = TaskConfig(task_type="semantic_matching", threshold=0.6)


def test_config_checks_with_a_reason() -> None:
    with pytest.raises(ValidationError, match="needs labels"):
        TaskConfig()
    with pytest.raises(ValidationError, match="must contain \\{text\\}"):
        TaskConfig(labels=("a", "b"), prompt_template="no placeholder")
    with pytest.raises(ValidationError, match="repeat"):
        TaskConfig(labels=("a", "a"))
    with pytest.raises(ValidationError, match="text_pair"):
        TaskConfig(task_type="semantic_matching", prompt_template="{text}")
    with pytest.raises(ValidationError, match="not in labels"):
        TaskConfig(labels=("a", "b"), verbalizers=(("c", "x"),))
    assert CLS.verbalizer("正面") == "正面"
    assert TaskConfig(labels=("a", "b"), verbalizers=(("a", "好评"),)).verbalizer("a") == "好评"
    hash(CLS)  # part of cache keys and flow parameters


def test_messages_carry_the_format_rules_and_demonstrations() -> None:
    config = CLS.model_copy(update={"few_shot": (Example(text="很好", label="正面"),)})
    messages = build_messages(config, Row(0, "太慢了"))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert "正面、负面、中性" in messages[0]["content"] and '"label"' in messages[0]["content"]
    assert messages[-1]["content"] == "判断以下用户反馈的情感倾向:太慢了"
    assert json.loads(messages[2]["content"]) == {"label": "正面"}
    repaired = repair_messages(messages, "好评", "不是合法的JSON", config)
    assert repaired[-2] == {"role": "assistant", "content": "好评"}
    assert "无法使用: 不是合法的JSON" in repaired[-1]["content"]


def test_labels_are_parsed_strictly() -> None:
    assert parse_label('{"label": "负面"}', CLS) == "负面"
    assert parse_label('```json\n{"label": " 中性 "}\n```', CLS) == "中性"
    with pytest.raises(ParseError, match="不在允许的类别中"):
        parse_label('{"label": "差评"}', CLS)
    with pytest.raises(ParseError, match="不是合法的JSON"):
        parse_label("我觉得是负面", CLS)
    with pytest.raises(ParseError, match='"label"'):
        parse_label('{"sentiment": "负面"}', CLS)
    with pytest.raises(ParseError, match="对象"):
        parse_label('["负面"]', CLS)


def test_entities_get_offsets_and_must_be_in_the_text() -> None:
    source = "张三在北京见了李四，张三很高兴"
    raw = json.dumps(
        {
            "entities": [
                {"text": "张三", "type": "per"},
                {"text": "北京", "type": "LOC"},
                {"text": "张三", "type": "PER"},
            ]
        },
        ensure_ascii=False,
    )
    entities = parse_entities(raw, source, NER)
    assert [(e.text, e.type, e.start, e.end) for e in entities] == [
        ("张三", "PER", 0, 2),
        ("北京", "LOC", 3, 5),
        ("张三", "PER", 10, 12),
    ]
    with pytest.raises(ParseError, match="不在输入文本中"):
        parse_entities('{"entities": [{"text": "上海", "type": "LOC"}]}', source, NER)
    with pytest.raises(ParseError, match="实体类型"):
        parse_entities('{"entities": [{"text": "张三", "type": "PERSON"}]}', source, NER)
    assert parse_entities('{"entities": []}', source, NER) == ()


def test_scores_and_match_labels() -> None:
    assert parse_score('{"score": 0.75}') == 0.75
    for bad in ('{"score": 1.5}', '{"score": "high"}', '{"score": true}', '{"score": NaN}'):
        with pytest.raises(ParseError):
            parse_score(bad)
    assert MATCH.kind.parse('{"score": 0.7}', "a", MATCH) == ("1", 0.7)
    assert MATCH.kind.parse('{"score": 0.5}', "a", MATCH) == ("0", 0.5)


def test_classification_metrics_count_missing_answers_as_wrong() -> None:
    metrics = classification_metrics(["a", "a", "b", "b"], ["a", None, "b", "a"], ["a", "b"])
    assert metrics["accuracy"] == 0.5
    assert metrics["coverage"] == 0.75
    assert metrics["confusion_matrix"]["matrix"] == [[1, 0, 1], [1, 1, 0]]
    assert metrics["confusion_matrix"]["columns"] == ["a", "b", "<none>"]
    assert 0 < metrics["macro_f1"] < 1


def test_bio_round_trip_and_entity_f1() -> None:
    chars = list("张三在北京")
    spans = (Entity("张三", "PER", 0, 2), Entity("北京", "LOC", 3, 5))
    tags = spans_to_bio(5, spans)
    assert tags == ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]
    assert bio_to_spans(chars, tags) == spans
    predicted = [(Entity("张三", "PER", 0, 2), Entity("在北京", "LOC", 2, 5))]
    metrics = ner_metrics([5], [spans], predicted)
    assert metrics["precision"] == 0.5 and metrics["recall"] == 0.5
    assert metrics["per_type"]["PER"]["f1"] == 1.0 and metrics["per_type"]["LOC"]["f1"] == 0.0
    only_per = ner_metrics([5], [spans], [(Entity("张三", "PER", 0, 2),)], entity_types=["PER"])
    assert only_per["f1"] == 1.0


def test_matching_metrics() -> None:
    metrics = matching_metrics([0.0, 2.5, 5.0], [0.1, 0.4, 0.9])
    assert metrics["spearman"] == pytest.approx(1.0)
    labels = matching_metrics(None, [0.9, 0.1], gold_labels=["1", "1"], predicted_labels=["1", "0"])
    assert labels["accuracy"] == 0.5


def test_results_table_and_evaluation() -> None:
    frame = pd.DataFrame({ROW_ID: [5, 6], "text": ["好", "差"], "label": ["正面", "负面"]})
    results = [
        RowResult(row_id=5, prediction="正面", score=0.9),
        RowResult(row_id=6, prediction=None, status="unparsed", reason="twice broken"),
    ]
    table = results_frame(results, backend="zhipu", model="glm-4")
    assert table["status"].tolist() == ["ok", "unparsed"] and pd.isna(table["prediction"].iloc[1])
    metrics = evaluate(CLS, frame, results, text_column="text", gold_column="label")
    assert metrics["accuracy"] == 0.5 and metrics["coverage"] == 0.5


def test_rows_and_batches() -> None:
    frame = pd.DataFrame({ROW_ID: [3, 4, 5], "a": ["x", "y", "z"], "b": ["1", "2", "3"]})
    rows = frame_rows(frame, "a", "b")
    assert rows[0] == Row(3, "x", "1")
    assert [len(b) for b in batches(rows, 2)] == [2, 1]
    with pytest.raises(Exception, match="text-column"):
        frame_rows(frame, "text")
