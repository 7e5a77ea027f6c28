"""The prompt optimisers against fake models whose accuracy depends on the prompt in a known way."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openautoglm import OptimisedPrompt, PromptOptimizer, TaskPipeline
from openautoglm.adapters.models import BACKENDS, BackendEntry, ModelSpec
from openautoglm.adapters.models.base import Completion, GenerativeBackend
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.prompts import Message
from openautoglm.core.nlp.task_types import task_kind
from openautoglm.core.nlp.types import Example, TaskConfig
from openautoglm.core.prompt.budget import Budget, BudgetExhausted, CallMeter, metered
from openautoglm.core.prompt.optimizers import OPTIMIZERS
from openautoglm.core.prompt.optimizers.instruction_search import parse_instruction

LABELS = ("正面", "负面")
BEST_LIBRARY_TEMPLATE = "判断以下文本的类别: {text}"
assert BEST_LIBRARY_TEMPLATE in task_kind("text_classification").templates
PROPOSED = "请仔细阅读这条评论，判断它的情感：{text}"


def _level(template: str) -> int:
    """How many tenths of the rows the fake model answers right under ``template``."""
    return {PROPOSED: 10, BEST_LIBRARY_TEMPLATE: 9}.get(template, 4)


def _bucket(text: str) -> int:
    return int(hashlib.md5(text.encode()).hexdigest(), 16) % 10


class FakeLM(GenerativeBackend):
    """Answers right for a share of rows set by the template; writes ``PROPOSED`` when asked for an instruction.
    Counts every call it answers."""

    gold: ClassVar[dict[str, str]] = {}

    def __init__(self, model: str) -> None:
        super().__init__(model, max_concurrency=4)
        self.calls = 0
        self.tokens = 0
        self._lock = threading.Lock()

    def complete(self, messages: list[Message]) -> Completion:
        tokens = sum(len(m["content"]) for m in messages) // 2 + 5
        with self._lock:
            self.calls += 1
            self.tokens += tokens
        if "提示词工程师" in messages[0]["content"]:
            return Completion(text=PROPOSED, tokens=tokens)
        user = messages[-1]["content"]
        text = next(t for t in sorted(self.gold, key=len, reverse=True) if t in user)
        template = user.replace(text, "{text}")
        gold = self.gold[text]
        wrong = LABELS[1] if gold == LABELS[0] else LABELS[0]
        label = gold if _bucket(text) < _level(template) else wrong
        return Completion(text=json.dumps({"label": label}, ensure_ascii=False), tokens=tokens)


if "fake_lm" not in dict(BACKENDS.items()):
    BACKENDS.add("fake-lm", BackendEntry(lambda spec, key: FakeLM(spec.model), frozenset({"text_classification"})))


def _examples(prefix: str, n: int) -> list[Example]:
    out = [Example(text=f"{prefix}第{i}条评论，内容编号{i * 7}", label=LABELS[i % 2]) for i in range(n)]
    FakeLM.gold.update({e.text: e.label for e in out})
    return out


TRAIN, DEV, TEST = _examples("训练", 30), _examples("验证", 20), _examples("测试", 40)


def _fake() -> FakeLM:
    from openautoglm.adapters.models import load_backend

    backend = load_backend(ModelSpec(model="fake-lm"))
    assert isinstance(backend, FakeLM)
    return backend


def _pipeline(cache: str = "use") -> TaskPipeline:
    return TaskPipeline("text_classification", "fake-lm", cache=cache).configure(  # type: ignore[arg-type]
        prompt_template="判断以下用户反馈的情感倾向:{text}", labels=list(LABELS)
    )


def test_template_search_finds_the_template_the_model_answers_best(home: Path) -> None:
    fake = _fake()
    before = fake.calls
    prompt = PromptOptimizer("template_search", track=False).compile(
        _pipeline(), TRAIN, DEV, budget=1000, seed=0, testset=TEST
    )
    assert prompt.config.template == BEST_LIBRARY_TEMPLATE
    expected = sum(_bucket(e.text) < 9 for e in DEV) / len(DEV)
    assert prompt.dev_score == pytest.approx(expected)
    assert prompt.start_dev_score == pytest.approx(sum(_bucket(e.text) < 4 for e in DEV) / len(DEV))
    assert prompt.test_score is not None and prompt.test_score > prompt.start_test_score  # type: ignore[operator]
    # One call per dev row per template tried (the library, plus the start); then the best and the start on test.
    assert prompt.calls == prompt.fresh_calls == len(DEV) * prompt.candidates
    assert fake.calls - before == prompt.calls + 2 * len(TEST)


def test_instruction_search_uses_the_proposers_instruction(home: Path) -> None:
    prompt = PromptOptimizer("instruction_search", track=False).compile(_pipeline(), TRAIN, DEV, budget=200, seed=1)
    assert prompt.config.template == PROPOSED
    assert prompt.dev_score == 1.0
    assert prompt.calls <= 200


def test_a_rerun_costs_no_call_and_finds_the_same_prompt(home: Path) -> None:
    fake = _fake()
    first = PromptOptimizer("default", track=False).compile(_pipeline(), TRAIN, DEV, budget=300, seed=3)
    before = fake.calls
    second = PromptOptimizer("default", track=False).compile(_pipeline(), TRAIN, DEV, budget=300, seed=3)
    assert fake.calls == before
    assert second.fresh_calls == 0 and second.calls == first.calls
    assert second.config == first.config and second.candidates == first.candidates


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    max_calls=st.integers(min_value=0, max_value=320),
    max_tokens=st.one_of(st.none(), st.integers(min_value=0, max_value=8000)),
    optimizer=st.sampled_from(["default", "template_search", "few_shot", "instruction_search"]),
    round_size=st.integers(min_value=1, max_value=6),
    seed=st.integers(min_value=0, max_value=3),
    cache=st.sampled_from(["use", "refresh"]),
)
def test_the_budget_is_never_exceeded(
    home: Path, max_calls: int, max_tokens: int | None, optimizer: str, round_size: int, seed: int, cache: str
) -> None:
    fake = _fake()
    calls, tokens = fake.calls, fake.tokens
    budget = Budget(max_calls=max_calls, max_tokens=max_tokens)
    try:
        prompt = PromptOptimizer(optimizer, round_size=round_size, track=False).compile(
            _pipeline(cache), TRAIN, DEV, budget=budget, seed=seed
        )
    except ConfigurationError as error:
        assert "before the starting prompt was scored" in str(error)
        assert max_calls < len(DEV) or max_tokens is not None
    else:
        assert prompt.calls <= max_calls and prompt.fresh_calls <= prompt.calls
        if max_tokens is not None:
            assert prompt.tokens <= max_tokens
    assert fake.calls - calls <= max_calls
    if max_tokens is not None:
        assert fake.tokens - tokens <= max_tokens


def test_the_meter_refuses_instead_of_passing_the_cap() -> None:
    meter = CallMeter(Budget(max_calls=2, max_tokens=100))
    assert meter.charge("a", 10) and meter.charge("b", 10)
    assert not meter.charge("a", 10)  # already paid for: free
    with pytest.raises(BudgetExhausted, match="2 of 2 calls"):
        meter.charge("c", 10)
    tokens = CallMeter(Budget(max_calls=10, max_tokens=100))
    tokens.record_tokens(95)
    with pytest.raises(BudgetExhausted, match="token budget"):
        tokens.charge("x", 10)
    with metered(meter):
        pass
    assert meter.spent.calls == 2 and meter.refused == 1


def test_an_optimised_prompt_round_trips_and_configures_a_pipeline(home: Path, tmp_path: Path) -> None:
    prompt = PromptOptimizer("template_search", track=False).compile(
        _pipeline(), TRAIN, DEV, budget=400, seed=0, folder=tmp_path
    )
    loaded = OptimisedPrompt.load(tmp_path / "optimised_prompt.json")
    assert loaded == prompt
    pipeline = TaskPipeline("text_classification", "fake-lm").configure(prompt=loaded)
    assert pipeline.config.template == BEST_LIBRARY_TEMPLATE
    with pytest.raises(ConfigurationError, match="optimised for text_classification"):
        TaskPipeline("ner", "local-lac").configure(prompt=loaded)
    with pytest.raises(ConfigurationError, match="MLflow run"):
        OptimisedPrompt.load("0123456789abcdef0123456789abcdef")


def test_the_optimisation_is_tracked_in_mlflow(home: Path) -> None:
    from mlflow.tracking import MlflowClient

    from openautoglm.settings import get_settings

    prompt = PromptOptimizer("template_search", experiment="prompt-unit").compile(
        _pipeline(), TRAIN, DEV, budget=400, seed=0
    )
    assert prompt.mlflow_run_id
    client = MlflowClient(get_settings().tracking_uri)
    parent = client.get_run(prompt.mlflow_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{prompt.mlflow_run_id}'"
    )
    assert len(children) == prompt.candidates
    assert {c.data.params["template"] for c in children} >= {BEST_LIBRARY_TEMPLATE, "判断以下用户反馈的情感倾向:{text}"}
    assert parent.data.metrics["dev_score"] == pytest.approx(prompt.dev_score)
    artifacts = {a.path for a in client.list_artifacts(prompt.mlflow_run_id)}
    assert {"optimised_prompt.json", "candidates.csv", "score_curve.png"} <= artifacts
    assert OptimisedPrompt.load(prompt.mlflow_run_id).config == prompt.config


def test_instruction_search_without_a_generative_model_says_what_to_do() -> None:
    from openautoglm.core.prompt.optimizers.base import SearchContext

    context = SearchContext(evaluate=lambda c, o, e: [], calls_left=lambda: 10, trainset=(), kind="embedding")
    with pytest.raises(ConfigurationError, match="proposer="):
        OPTIMIZERS.resolve("instruction_search")(TaskConfig(labels=LABELS), context)


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("指令：请判断情感 {text}", "请判断情感 {text}"),
        ("  `请判断这条评论`  ", "请判断这条评论\n文本: {text}"),
        ("", None),
    ],
)
def test_proposals_are_parsed_into_templates(answer: str, expected: str | None) -> None:
    assert parse_instruction(answer, TaskConfig(labels=LABELS)) == expected
