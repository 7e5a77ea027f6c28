"""Task types as registered objects: the built-in three, and a new one added in one place that runs through
prompts, parsing, evaluation, parameter schemas and the template search without any other change."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pandas as pd
import pytest
from pydantic import ValidationError

from openautoglm import TaskPipeline
from openautoglm.adapters.models import BACKENDS, BackendEntry
from openautoglm.adapters.models.base import Completion, GenerativeBackend
from openautoglm.adapters.validation import ValidationConfig, validate_dataset
from openautoglm.core.data.schema import ROW_ID, Dataset
from openautoglm.core.nlp.parse import ParseError, _json_object
from openautoglm.core.nlp.prompts import Message, build_messages
from openautoglm.core.nlp.task_types import TASK_TYPES, TaskKind, task_kind, task_type_names
from openautoglm.core.nlp.types import Example, Row, RowResult, TaskConfig, Value
from openautoglm.core.prompt.optimizers.template_search import template_pool

BUILT_IN = ["text_classification", "ner", "semantic_matching"]


def test_the_built_in_task_types_are_registered_and_named_in_the_schema() -> None:
    assert set(BUILT_IN) <= set(task_type_names())
    schema = TaskConfig.model_json_schema()["properties"]["task_type"]
    assert schema["enum"] == task_type_names()
    assert schema["default"] == "text_classification"
    assert TaskConfig(task_type="classification", labels=("a", "b")).task_type == "text_classification"
    with pytest.raises(ValidationError, match="semantic_matching"):
        TaskConfig(task_type="sentiment_regression")


@pytest.mark.parametrize(
    ("config", "example"),
    [
        (TaskConfig(labels=("正面", "负面")), Example(text="好吃", label="负面")),
        (
            TaskConfig(task_type="ner"),
            Example(text="张三在北京", label=json.dumps([{"text": "北京", "type": "LOC"}], ensure_ascii=False)),
        ),
        (TaskConfig(task_type="semantic_matching"), Example(text="a", text_pair="b", label="1")),
    ],
    ids=BUILT_IN,
)
def test_each_task_type_parses_its_own_demonstration_back(config: TaskConfig, example: Example) -> None:
    """A few-shot demonstration written by the task type is an answer its parser accepts, and it is right."""
    kind = config.kind
    prediction, score = kind.parse(kind.answer(config, example), example.text, config)
    assert kind.correct(config, example, RowResult(row_id=0, prediction=prediction, score=score))
    assert kind.format_rules(config) in build_messages(config, Row(0, example.text, example.text_pair))[0]["content"]
    assert all(all(slot in t for slot in kind.placeholders) for t in template_pool(config))


class Keywords(TaskKind):
    """A task type a plug-in adds: the keywords of a text, scored by mean Jaccard overlap."""

    name = "keywords"
    description = "Keywords of a text."
    default_template = "列出下面文本的关键词。\n文本: {text}"
    templates = (default_template, "关键词: {text}")
    words = "关键词抽取"
    labelled_demos = False

    def format_rules(self, config: TaskConfig) -> str:
        return '只输出JSON: {"keywords": ["<词>"]}'

    def answer(self, config: TaskConfig, example: Example) -> str:
        return json.dumps({"keywords": example.label.split(",")}, ensure_ascii=False)

    def parse(self, raw: str, source: str, config: TaskConfig) -> tuple[Value, float | None]:
        words = _json_object(raw).get("keywords")
        if not isinstance(words, list) or not all(isinstance(w, str) and w in source for w in words):
            raise ParseError('"keywords" must list words of the text')
        return ",".join(sorted(words)), None

    def metrics(
        self, config: TaskConfig, texts: Sequence[str], gold: Sequence[Any], results: Sequence[RowResult]
    ) -> dict[str, Any]:
        def jaccard(a: set[str], b: set[str]) -> float:
            return len(a & b) / len(a | b) if a | b else 1.0

        scores = [
            jaccard(set(str(g).split(",")), set(str(r.prediction).split(",")) if r.status == "ok" else set())
            for g, r in zip(gold, results, strict=True)
        ]
        return {"n": len(scores), "jaccard": sum(scores) / len(scores) if scores else 0.0}

    def primary(self, metrics: dict[str, Any]) -> float:
        return float(metrics["jaccard"])

    def correct(self, config: TaskConfig, example: Example, result: RowResult) -> bool:
        return result.status == "ok" and set(str(result.prediction).split(",")) == set(example.label.split(","))


class FirstWords(GenerativeBackend):
    """Answers with the first two words of the text; its first answer to each row breaks the format once."""

    def __init__(self, model: str) -> None:
        super().__init__(model, max_concurrency=2)

    def complete(self, messages: list[Message]) -> Completion:
        if messages[-1]["content"].startswith("上面的回答无法使用"):
            text = messages[-3]["content"]
        else:
            text = messages[-1]["content"]
            if "第一次" in text:
                return Completion(text="not json")
        words = text.split("文本: ")[-1].split()
        return Completion(text=json.dumps({"keywords": words[:2]}, ensure_ascii=False))


@pytest.fixture
def keywords_task(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registers the plug-in task type and a generative model for the test only."""
    monkeypatch.setitem(TASK_TYPES._items, "keywords", Keywords())
    entry = BackendEntry(lambda spec, key: FirstWords(spec.model), tasks=None)
    monkeypatch.setitem(BACKENDS._items, "first_words", entry)


@pytest.mark.usefixtures("keywords_task")
def test_a_task_type_added_in_one_place_runs_end_to_end() -> None:
    assert "keywords" in task_type_names()
    assert "keywords" in TaskConfig.model_json_schema()["properties"]["task_type"]["enum"]
    assert task_kind("Keywords").name == "keywords"
    frame = pd.DataFrame(
        {
            "text": ["苹果 香蕉 橘子", "第一次 测试 文本", "猫 狗"],
            "gold": ["苹果,香蕉", "测试,第一次", "狗,猫,鱼"],
        }
    )
    pipeline = TaskPipeline("keywords", model="first-words", cache="off")
    results = pipeline.evaluate(frame, label_column="gold", progress=False)
    assert results.predictions == ["苹果,香蕉", "测试,第一次", "狗,猫"]  # sorted by code point
    table = results.to_pandas()
    assert table["status"].tolist() == ["ok", "ok", "ok"]
    assert table["calls"].tolist() == [1, 2, 1]  # the broken answer was repaired with the task type's own rules
    assert results.metrics["jaccard"] == pytest.approx((1 + 1 + 2 / 3) / 3)
    config = pipeline.config
    assert template_pool(config)[:2] == list(Keywords.templates)
    with pytest.raises(ValidationError, match="must contain"):
        TaskConfig(task_type="keywords", prompt_template="no slot")
    # validation knows it too: a task type without a suite of its own is checked with the generic suite
    assert ValidationConfig(task="keywords").task == "keywords"
    assert ValidationConfig.model_json_schema()["properties"]["task"]["enum"][-2:] == ["keywords", "generic"]
    rows = pd.DataFrame({ROW_ID: range(3), "text": pd.array(["a", "", "b"], dtype="string")})
    outcome = validate_dataset(Dataset(frame=rows, source="mem", rows_read=3), ValidationConfig(task="keywords"))
    assert not outcome.success
    assert outcome.failures[ROW_ID].tolist() == [1]  # the empty text


def test_backends_declare_the_task_types_they_do() -> None:
    """A generative backend does every registered task type; a local encoder only the ones it declares."""
    assert BACKENDS.resolve("zhipu").supports("keywords")
    assert not BACKENDS.resolve("local-lac").supports("text_classification")
    assert BACKENDS.resolve("local-lac").supports("ner")
