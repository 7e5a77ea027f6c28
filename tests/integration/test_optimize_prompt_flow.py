"""The optimize_prompt flow on GLM through the real zhipuai SDK against the fake Zhipu server: candidates on Dask,
the budget held, every candidate in MLflow, the best prompt used by a later run_task, a rerun at zero calls."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.sources import CsvSource
from openautoglm.core.nlp.types import TaskConfig
from openautoglm.core.prompt.budget import Budget
from openautoglm.flows.optimize_prompt import OptimizePromptParams, optimize_prompt
from openautoglm.flows.run_task import RunTaskParams, run_task
from openautoglm.settings import get_settings
from openautoglm.testing import FakeZhipuServer
from tests.integration.conftest import flow_run_artifacts

pytestmark = [pytest.mark.integration]

LABELS = ("好评", "差评")
GOOD = "请仔细阅读这条外卖评价，判断它是好评还是差评：{text}"
START = "判断以下用户反馈的情感倾向:{text}"
ROWS = [(f"第{i}条外卖评价编号{i * 13}{'味道不错' if i % 2 else '送得太慢'}", LABELS[i % 2]) for i in range(80)]
GOLD = dict(ROWS)


def responder(messages: list[dict[str, str]]) -> str:
    """Writes GOOD when asked for an instruction; answers every row right under GOOD, a third of them otherwise."""
    if "提示词工程师" in messages[0]["content"]:
        return GOOD
    user = messages[-1]["content"]
    text = next((t for t in GOLD if t in user), "")
    if not text:
        return json.dumps({"label": LABELS[0]}, ensure_ascii=False)
    right = user.replace(text, "{text}") == GOOD or int(hashlib.md5(text.encode()).hexdigest(), 16) % 3 == 0
    label = GOLD[text] if right else next(label for label in LABELS if label != GOLD[text])
    return json.dumps({"label": label}, ensure_ascii=False)


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeZhipuServer]:
    with FakeZhipuServer(api_key="opt1.s3cr3t-value", responder=responder) as fake:
        monkeypatch.setenv("ZHIPUAI_API_KEY", fake.api_key)
        yield fake


def test_optimise_on_glm_then_use_the_prompt(prefect_server: None, server: FakeZhipuServer, tmp_path: Path) -> None:
    data = tmp_path / "reviews.csv"
    pd.DataFrame(ROWS, columns=["text", "label"]).to_csv(data, index=False)
    params = OptimizePromptParams(
        source=CsvSource(path=data),
        task=TaskConfig(labels=LABELS, prompt_template=START),
        model=ModelSpec(model="glm-4", base_url=server.base_url, max_concurrency=4),
        optimizer="default",
        budget=Budget(max_calls=150),
        dev_size=20,
        test_size=20,
        output_dir=tmp_path / "opt",
        experiment="prompt-flow",
    )
    result = optimize_prompt(params)
    prompt = result.prompt
    assert result.rows == {"train": 40, "dev": 20, "test": 20}
    assert prompt.config.template == GOOD and prompt.dev_score == 1.0 and prompt.test_score == 1.0
    assert prompt.start_test_score is not None and prompt.start_test_score < 0.6
    # The budget held: requests for the search (all but the two test scorings of 20 rows) stay within it.
    assert prompt.calls <= 150 and server.requests - 40 <= 150 and prompt.fresh_calls == server.requests - 40
    assert server.api_key not in result.prompt_path.read_text(encoding="utf-8")

    client = MlflowClient(get_settings().tracking_uri)
    parent = client.get_run(result.mlflow_run_id)
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{result.mlflow_run_id}'"
    )
    assert len(children) == prompt.candidates >= 2
    assert GOOD in {c.data.params["template"] for c in children}
    assert "s3cr3t" not in json.dumps(parent.data.params)
    artifacts = flow_run_artifacts(result.flow_run_id or "")
    assert {"optimised-prompt", "prompt-candidates", "mlflow-run"} <= set(artifacts)

    # A later run_task uses the optimised prompt by its MLflow run id.
    server.reset_counts()
    run = run_task(
        RunTaskParams(
            source=CsvSource(path=data),
            task=TaskConfig(labels=LABELS),
            model=ModelSpec(model="glm-4", base_url=server.base_url, max_concurrency=4),
            label_column="label",
            prompt=result.mlflow_run_id,
            output_dir=tmp_path / "run",
        )
    )
    assert run.metrics["accuracy"] == 1.0
    asked = {b["messages"][-1]["content"] for b in server.bodies}
    assert asked and all(a.startswith(GOOD.split("{text}")[0]) for a in asked)

    # The same optimisation again: same result, no request at all.
    server.reset_counts()
    again = optimize_prompt(params.model_copy(update={"output_dir": tmp_path / "again"}))
    assert server.requests == 0 and again.prompt.fresh_calls == 0
    assert again.prompt.config == prompt.config and again.prompt.candidates == prompt.candidates


def marker_rows(n: int) -> list[tuple[str, str]]:
    """The label is a product code (XQ or ZW) inside varied text: characters tell it, meaning does not."""
    rng = random.Random(7)
    words = ["今天", "订单", "快递", "颜色", "尺码", "包装", "客服", "发货", "仓库", "型号"]
    return [
        ("，".join(rng.sample(words, 4)) + f"，编号{'XQ' if i % 2 else 'ZW'}{rng.randint(100, 999)}", "甲乙"[i % 2])
        for i in range(n)
    ]


def test_the_few_label_learner_runs_beside_the_search_and_its_model_is_served(
    prefect_server: None, tmp_path: Path
) -> None:
    data = tmp_path / "codes.csv"
    pd.DataFrame(marker_rows(100), columns=["text", "label"]).to_csv(data, index=False)
    result = optimize_prompt(
        OptimizePromptParams(
            source=CsvSource(path=data),
            task=TaskConfig(labels=("甲", "乙")),
            model=ModelSpec(model="local-use"),
            budget=Budget(max_calls=400),
            dev_size=20,
            test_size=20,
            learner="few-label",
            output_dir=tmp_path / "opt",
            experiment="prompt-flow-learner",
            register_prompt=False,
        )
    )
    learned = result.learned
    assert learned is not None and learned.labelled_rows == 60 and learned.unlabelled_rows == 0
    assert learned.dev_score == 1.0 and learned.test_score == 1.0
    assert result.winner == ("learned" if learned.dev_score > result.prompt.dev_score else "prompt")
    assert (learned.folder / "openautoglm-model.json").is_file()

    client = MlflowClient(get_settings().tracking_uri)
    run = client.get_run(result.mlflow_run_id)
    assert run.data.metrics["learned_dev_score"] == 1.0 and run.data.params["learner"] == "few-label"
    assert "learned/openautoglm-model.json" in {a.path for a in client.list_artifacts(run.info.run_id, "learned")}

    served = run_task(
        RunTaskParams(
            source=CsvSource(path=data),
            task=TaskConfig(labels=("甲", "乙")),
            model=ModelSpec(model=learned.model),
            label_column="label",
            output_dir=tmp_path / "run",
        )
    )
    assert served.metrics["accuracy"] == 1.0
    with pytest.raises(ValueError, match="learns text_classification"):
        OptimizePromptParams(
            source=CsvSource(path=data),
            task=TaskConfig(task_type="ner", entity_types=("PER",)),
            model=ModelSpec(model="local-lac"),
            learner="few-label",
        )
