"""Where MLflow users look: an optimised prompt in the prompt registry (versioned, an alias only when asked) that
``configure(prompt="prompts:/...")`` and run_task load, and every flow run's input data as an MLflow dataset."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient
from prefect.task_runners import ThreadPoolTaskRunner

from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.prompt_registry import PAYLOAD_TAG
from openautoglm.adapters.sources import CsvSource
from openautoglm.core.nlp.types import TaskConfig
from openautoglm.core.prompt.budget import Budget
from openautoglm.flows.optimize_prompt import OptimizePromptParams, optimize_prompt
from openautoglm.flows.run_task import RunTaskParams, run_task
from openautoglm.optimize import OptimisedPrompt, PromptOptimizer, as_examples
from openautoglm.pipeline import TaskPipeline
from openautoglm.settings import get_settings
from tests.conftest import EXAMPLES

pytestmark = [pytest.mark.integration]

LABELS = ("正面", "负面", "中性")
NAME = "feedback-sentiment"
SECRET = "reg1.s3cr3t-value"


def dataset_inputs(client: MlflowClient, run_id: str) -> list[tuple[dict[str, str], dict[str, str]]]:
    """(dataset fields, input tags) of a run's logged datasets."""
    run = client.get_run(run_id)
    return [
        (
            {k: getattr(d.dataset, k) for k in ("name", "digest", "source_type", "source", "schema", "profile")},
            {t.key: t.value for t in d.tags},
        )
        for d in run.inputs.dataset_inputs
    ]


def linked(client: MlflowClient, run_id: str) -> list[dict[str, str]]:
    return json.loads(client.get_run(run_id).data.tags.get("mlflow.linkedPrompts", "[]"))


def test_prompt_registry_and_datasets(prefect_server: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZHIPUAI_API_KEY", SECRET)  # present in the environment: must reach nothing logged
    threads = ThreadPoolTaskRunner(max_workers=2)
    source = CsvSource(path=EXAMPLES / "user_feedback.csv")
    result = optimize_prompt.with_options(task_runner=threads)(
        OptimizePromptParams(
            source=source,
            task=TaskConfig(labels=LABELS),
            model=ModelSpec(model="local-use"),
            optimizer="template_search",
            budget=Budget(max_calls=30),  # a few candidates: each is a nested MLflow run
            dev_size=20,
            test_size=10,
            prompt_name=NAME,
            alias="production",
            output_dir=tmp_path / "opt",
            experiment="registry-test",
        )
    )
    assert result.registered_prompt == f"prompts:/{NAME}/1"
    client = MlflowClient(get_settings().tracking_uri)
    by_alias = client.load_prompt(f"prompts:/{NAME}@production", cache_ttl_seconds=0)
    assert int(by_alias.version) == 1 and "{{text}}" in by_alias.template
    saved = result.prompt_path.read_text(encoding="utf-8")
    assert by_alias.tags[PAYLOAD_TAG] == saved  # the whole optimised prompt, byte for byte
    assert by_alias.tags["openautoglm.mlflow_run_id"] == result.mlflow_run_id
    assert linked(client, result.mlflow_run_id) == [{"name": NAME, "version": "1"}]

    # The same configuration from the registry as from the JSON file, by alias and by version, in the SDK.
    from_file = OptimisedPrompt.load(result.prompt_path).task_config()
    for reference in (f"prompts:/{NAME}@production", f"prompts:/{NAME}/1"):
        pipeline = TaskPipeline("text_classification", "local-use").configure(prompt=reference)
        assert pipeline.config == from_file == result.prompt.config
    loaded = OptimisedPrompt.load(f"prompts:/{NAME}@production")
    assert loaded.model_dump_json(indent=2) == saved and loaded.registered == f"prompts:/{NAME}/1"

    # The optimisation's input data: the kept rows of the source, with the row counts.
    [(ds, tags)] = dataset_inputs(client, result.mlflow_run_id)
    assert ds["name"] == "user_feedback.csv" and ds["source_type"] == "local"
    assert json.loads(ds["source"]) == {"uri": source.describe()}
    assert len(ds["digest"]) == 16 and json.loads(ds["profile"])["num_rows"] == int(tags["rows_kept"])
    assert tags["mlflow.data.context"] == "optimize_prompt"
    assert int(tags["rows_read"]) == 60 == int(tags["rows_kept"]) + int(tags["rows_quarantined"])
    assert {c["name"] for c in json.loads(ds["schema"])["mlflow_colspec"]} >= {"text", "label"}

    # The SDK registers a new version; without an alias asked for, production stays where it was.
    train = as_examples(pd.read_csv(EXAMPLES / "user_feedback.csv"))
    sdk = PromptOptimizer("template_search", prompt_name=NAME, experiment="registry-test", progress=False).compile(
        TaskPipeline("text_classification", "local-use").configure(labels=LABELS), train[:40], train[40:], budget=30
    )
    assert sdk.registered == f"prompts:/{NAME}/2"
    assert int(client.load_prompt(f"prompts:/{NAME}@production", cache_ttl_seconds=0).version) == 1
    assert linked(client, sdk.mlflow_run_id or "") == [{"name": NAME, "version": "2"}]
    sdk_sets = {tags["mlflow.data.context"]: (ds, tags) for ds, tags in dataset_inputs(client, sdk.mlflow_run_id or "")}
    assert set(sdk_sets) == {"train", "dev"} and sdk_sets["dev"][1]["rows"] == "20"
    assert sdk_sets["train"][0]["name"] == "trainset" and len(sdk_sets["train"][0]["digest"]) == 16

    # run_task with the registered prompt: the run lists the prompt version and its input dataset.
    run = run_task.with_options(task_runner=threads)(
        RunTaskParams(
            source=source,
            task=TaskConfig(labels=("好", "坏")),  # replaced by the registered prompt
            model=ModelSpec(model="local-use"),
            label_column="label",
            prompt=f"prompts:/{NAME}@production",
            output_dir=tmp_path / "run",
        )
    )
    assert linked(client, run.mlflow_run_id) == [{"name": NAME, "version": "1"}]
    [(ds_run, tags_run)] = dataset_inputs(client, run.mlflow_run_id)
    assert tags_run["mlflow.data.context"] == "run_task" and int(tags_run["rows_read"]) == 60
    assert ds_run["name"] == "user_feedback.csv" and len(ds_run["digest"]) == 16

    # No secret in what was logged: datasets, run tags and params, prompt version tags.
    logged = json.dumps(
        [
            [*dataset_inputs(client, r), client.get_run(r).data.params, client.get_run(r).data.tags]
            for r in (result.mlflow_run_id, sdk.mlflow_run_id or "", run.mlflow_run_id)
        ]
        + [client.load_prompt(f"prompts:/{NAME}/{v}", cache_ttl_seconds=0).tags for v in (1, 2)],
        ensure_ascii=False,
    )
    assert "s3cr3t" not in logged
