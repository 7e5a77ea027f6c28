"""One declaration per setting: the use case's parameter model is what the CLI, the flow, the stage, the SDK, the REST
confinement and the deployments read, so a setting added to the model shows up everywhere and nothing else can
drift from it."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import typing

import pytest
from pydantic import BaseModel, ValidationError

from tests.conftest import REPO

DEPLOYMENTS = REPO / "deployments" / "prefect.yaml"
TEMPLATE = re.compile(r"\{\{.*\}\}")


def _entries() -> list[dict[str, typing.Any]]:
    from openautoglm.deploy import read_deployments

    return read_deployments(DEPLOYMENTS)


@pytest.mark.parametrize("entry", _entries(), ids=lambda e: e["name"])
def test_every_deployment_validates_against_its_flows_model(
    entry: dict[str, typing.Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each deployment's parameters (whatever deployments/prefect.yaml holds, appended ones too) are a valid body
    of the flow's one parameter model, and the REST confinement reads that same model from the flow."""
    from openautoglm.serve.confine import params_model

    monkeypatch.chdir(REPO)  # relative paths in parameters are relative to the checkout, as on the worker
    module, _, name = entry["entrypoint"].rpartition(".")
    flow = getattr(importlib.import_module(module), name)
    model = typing.get_type_hints(flow.fn)["params"]
    assert isinstance(model, type) and issubclass(model, BaseModel), entry["entrypoint"]
    assert set(entry.get("parameters") or {}) <= {"params"}, "a flow takes its settings as one model: params"
    given = (entry.get("parameters") or {}).get("params") or {}
    _valid_but_for_what_a_run_supplies(model, given)
    for trigger in entry.get("triggers") or []:  # a trigger's parameters are laid over the deployment's
        fired = (trigger.get("parameters") or {}).get("params") or {}
        # a "{{ event... }}" value is filled in from the event when the trigger fires: the run supplies it
        filled = {k: v for k, v in fired.items() if not (isinstance(v, str) and TEMPLATE.fullmatch(v.strip()))}
        _valid_but_for_what_a_run_supplies(model, {**given, **filled})
    assert params_model(flow.name) is model


def _valid_but_for_what_a_run_supplies(model: type[BaseModel], params: dict[str, typing.Any]) -> None:
    """Every value given is valid and no name is unknown; a required field the deployment leaves out is the
    run's to give (a project name, say)."""
    try:
        model.model_validate(params)
    except ValidationError as error:
        wrong = [e for e in error.errors() if e["type"] != "missing"]
        assert not wrong, wrong


def test_the_run_task_default_model_is_declared_once() -> None:
    """The run_task flow, its CLI command and the infer stage default to the same model, because the flow's
    model extends the stage's (drift found on 2026-12-07: local-use in the flow, local-auto elsewhere)."""
    from openautoglm.flows.run_task_params import RunTaskParams
    from openautoglm.pipeline import TaskPipeline
    from openautoglm.stages.nlp import InferParams

    assert issubclass(RunTaskParams, InferParams)
    flow_default = RunTaskParams.model_fields["model"].default.model
    assert flow_default == InferParams.model_fields["model"].default.model
    assert flow_default == TaskPipeline().spec.model


ADD_A_FIELD = """
import json
from pydantic.fields import FieldInfo
from openautoglm.usecases.{module} import {model}

{model}.model_fields["knob_of_the_test"] = FieldInfo(
    annotation=int, default=3, ge=1, description="A knob the test added."
)
{model}.__annotations__["knob_of_the_test"] = int
{model}.model_rebuild(force=True)

from typer.testing import CliRunner
from openautoglm import {sdk}
from openautoglm.cli import app
from openautoglm.core.errors import ConfigurationError
from openautoglm.serve.confine import params_model
from openautoglm.stages import describe_catalogue

help_text = CliRunner().invoke(app, ["{command}", "--help"], env={{"COLUMNS": "250"}}).output
flow_model = params_model("{flow}")
stage = next(e for e in describe_catalogue() if e["name"] == "{command}")
try:
    {sdk}(knob_of_the_test=0)
    refused = False
except ConfigurationError:
    refused = True
settings = {sdk}(knob_of_the_test=5).settings
knob = settings["knob_of_the_test"] if isinstance(settings, dict) else settings.knob_of_the_test
print(json.dumps({{
    "help": "--knob-of-the-test" in help_text and "A knob the test added." in help_text,
    "schema": "knob_of_the_test" in flow_model.model_json_schema()["properties"],
    "stage": "knob_of_the_test" in stage["params_schema"]["properties"],
    "sdk": knob == 5 and refused,
}}))
"""
FACES = {
    "prompt-search": {
        "module": "prompt",
        "model": "PromptSearch",
        "sdk": "PromptOptimizer",
        "command": "optimize-prompt",
        "flow": "optimize_prompt",
    },
    "graph-search": {
        "module": "graph",
        "model": "GraphSearch",
        "sdk": "AutoGraph",
        "command": "graph-search",
        "flow": "graph_search",
    },
}


@pytest.mark.parametrize("face", sorted(FACES))
def test_a_field_added_to_the_model_reaches_every_face(face: str) -> None:
    """Add a field to the use case's model (PromptSearch, GraphSearch; before anything else reads it): the CLI's
    --help, the flow's JSON Schema as the REST API and Prefect read it, the stage's form and the SDK face all have
    it, bound included."""
    done = subprocess.run(
        [sys.executable, "-c", ADD_A_FIELD.format(**FACES[face])],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"help": True, "schema": True, "stage": True, "sdk": True}, found


def test_the_graph_search_is_declared_once() -> None:
    """The graph-search stage's parameters ARE the use case's model, the flow's extend it (adding only the graph,
    the lookup table, the output folder and the experiment), and AutoGraph validates its keyword arguments into it:
    a field can only be added in one place."""
    from openautoglm import AutoGraph
    from openautoglm.core.errors import ConfigurationError
    from openautoglm.flows.graph_search_params import GraphSearchParams
    from openautoglm.stages import catalogue
    from openautoglm.usecases.graph import GraphSearch

    assert next(s for s in catalogue().values() if s.name == "graph-search").params is GraphSearch
    assert issubclass(GraphSearchParams, GraphSearch)
    added = set(GraphSearchParams.model_fields) - set(GraphSearch.model_fields)
    assert added == {"graph", "nasbench", "output_dir", "experiment"}, added
    for name, field in GraphSearch.model_fields.items():
        inherited = GraphSearchParams.model_fields[name]
        assert (inherited.annotation, inherited.default, inherited.description) == (
            field.annotation,
            field.default,
            field.description,
        ), name
        assert list(map(repr, inherited.metadata)) == list(map(repr, field.metadata)), name
        assert field.description, f"GraphSearch.{name} has no description (the CLI's --help reads it)"
    assert AutoGraph(hpo_trials=3, lr=0.02).settings == GraphSearch(parallel=1, hpo_trials=3, lr=0.02)
    with pytest.raises(ConfigurationError, match="final_seeds"):
        AutoGraph(final_seeds=0)
    with pytest.raises(ConfigurationError, match="knob"):
        AutoGraph(knob=1)


def test_task_pipeline_declares_no_default_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """TaskPipeline's task type, model and cache mode are the defaults of TaskConfig and InferParams (the infer
    stage's model, which the run_task flow's extends), read when it is built: its signature holds no value of its
    own, and a default changed in the model is the SDK's default too."""
    import inspect

    from openautoglm.adapters.models import ModelSpec
    from openautoglm.core.nlp.types import TaskConfig
    from openautoglm.pipeline import TaskPipeline
    from openautoglm.stages.nlp import InferParams

    signature = inspect.signature(TaskPipeline.__init__)
    own = {
        name: p.default
        for name, p in signature.parameters.items()
        if p.default is not inspect.Parameter.empty and p.default is not None
    }
    assert own == {}, f"TaskPipeline re-declares {own}: read the default from the parameter model"
    before = TaskPipeline()
    assert (before.task_type, before.spec.model, before.cache_mode) == (
        TaskConfig.model_fields["task_type"].default,
        InferParams.model_fields["model"].default.model,
        InferParams.model_fields["cache"].default,
    )
    for model, name, value in (
        (TaskConfig, "task_type", "ner"),
        (InferParams, "model", ModelSpec(model="local-lac")),
        (InferParams, "cache", "off"),
    ):
        assert model.model_fields[name].default != value, name  # the change below is a change
        monkeypatch.setattr(model.model_fields[name], "default", value)
    after = TaskPipeline()
    assert (after.task_type, after.spec.model, after.cache_mode) == ("ner", "local-lac", "off")
