"""The job confinement policy: what a caller of ``POST /api/v1/jobs`` may ask a worker to read, write and use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openautoglm.serve.confine import JobPolicy, SqlConnection, may_read_rows, merge, prepare
from openautoglm.serve.envelope import ApiError, Code

DEFAULTS = {
    "params": {
        "source": {"kind": "csv", "path": "examples/user_feedback.csv"},
        "task": {"task_type": "text_classification", "labels": ["正面", "负面", "中性"]},
        "model": {"model": "local-use"},
        "label_column": "label",
    }
}


@pytest.fixture
def policy(tmp_path: Path) -> JobPolicy:
    root = tmp_path / "data"
    root.mkdir()
    (root / "reviews.csv").write_text("text\n好\n", encoding="utf-8")
    (root / "escape.csv").symlink_to("/etc/passwd")
    return JobPolicy(
        data_roots=(root,),
        connections={"warehouse": SqlConnection("postgresql+psycopg://reader@127.0.0.1:5432/test", "WAREHOUSE_PW")},
    )


def refused(policy: JobPolicy, params: dict[str, Any], match: str) -> ApiError:
    with pytest.raises(ApiError) as caught:
        prepare("run_task", DEFAULTS, {"params": params}, policy)
    assert caught.value.code is Code.INVALID and caught.value.code.http_status == 422
    assert match in caught.value.message, caught.value.message
    return caught.value


def test_deployment_values_and_harmless_overrides_pass(policy: JobPolicy) -> None:
    out = prepare("run_task", DEFAULTS, {"params": {"task": {"labels": ["正面", "负面"]}}}, policy)
    assert out["params"]["source"]["path"] == "examples/user_feedback.csv"  # the deployment's own: not re-checked
    assert out["params"]["task"]["labels"] == ["正面", "负面"]
    assert out["params"]["task"]["task_type"] == "text_classification"  # merged field by field
    assert out["params"]["label_column"] == "label"


def test_files_must_lie_under_a_data_root(policy: JobPolicy) -> None:
    refused(policy, {"source": {"kind": "csv", "path": "/etc/passwd"}}, "outside the data roots")
    refused(policy, {"source": {"kind": "csv", "path": "../../etc/passwd"}}, "outside the data roots")
    refused(policy, {"source": {"kind": "csv", "path": "escape.csv"}}, "outside the data roots")  # symlink out
    out = prepare("run_task", DEFAULTS, {"params": {"source": {"kind": "csv", "path": "reviews.csv"}}}, policy)
    assert out["params"]["source"]["path"] == str((policy.data_roots[0] / "reviews.csv").resolve())
    refused(policy, {"prompt": "/etc/passwd"}, "outside the data roots")
    refused(policy, {"model": {"model": "local:/etc"}}, "outside the data roots")
    prepare("run_task", DEFAULTS, {"params": {"prompt": "0123456789abcdef0123456789abcdef"}}, policy)  # run id


def test_no_data_roots_means_no_files_of_the_callers(policy: JobPolicy) -> None:
    closed = JobPolicy()
    with pytest.raises(ApiError, match="no data roots"):
        prepare("run_task", DEFAULTS, {"params": {"source": {"kind": "csv", "path": "reviews.csv"}}}, closed)


def test_outputs_go_to_the_jobs_own_folder(policy: JobPolicy) -> None:
    refused(policy, {"output_dir": "../outside"}, "own output folder")
    refused(policy, {"output_sql_url": "postgresql+psycopg://me@evil.example/db", "output_table": "t"}, "server")


def test_databases_only_through_named_connections(policy: JobPolicy) -> None:
    sql = {"kind": "sql", "url": "postgresql+psycopg://me@203.0.113.9/db", "query": "t", "password_env": "HOME"}
    refused(policy, {"source": sql}, "chosen by the server")
    refused(policy, {"source": {"kind": "sql", "connection": "nope", "query": "t"}}, "unknown connection")
    out = prepare(
        "run_task",
        DEFAULTS,
        {"params": {"source": {"kind": "sql", "connection": "warehouse", "query": "feedback"}}},
        policy,
    )
    assert out["params"]["source"]["url"].startswith("postgresql+psycopg://reader@127.0.0.1")
    assert out["params"]["source"]["password_env"] == "WAREHOUSE_PW"
    out = prepare("run_task", DEFAULTS, {"params": {"output_connection": "warehouse", "output_table": "r"}}, policy)
    assert out["params"]["output_password_env"] == "WAREHOUSE_PW"


def test_secret_routes_are_refused(policy: JobPolicy) -> None:
    refused(policy, {"model": {"model": "glm-4", "base_url": "http://evil.example/api/"}}, "model.base_url")
    refused(policy, {"credentials_block": "zhipu"}, "credentials_block")


def test_unknown_parameters_are_refused_before_a_run(policy: JobPolicy) -> None:
    with pytest.raises(ApiError, match="unknown parameter"):
        prepare("run_task", DEFAULTS, {"params": {}, "surprise": 1}, policy)
    error = refused(policy, {"surprise": 1}, "do not fit")
    assert error.data and error.data["errors"][0]["loc"] == ["surprise"]
    refused(policy, {"source": {"kind": "csv", "path": "reviews.csv", "sneaky": True}}, "do not fit")
    with pytest.raises(ApiError) as caught:
        prepare("some_other_flow", {}, {}, policy)
    assert caught.value.code is Code.NOT_FOUND


def test_merge_replaces_an_object_whose_kind_changes() -> None:
    assert merge({"kind": "csv", "path": "a", "delimiter": ";"}, {"path": "b"}) == {
        "kind": "csv",
        "path": "b",
        "delimiter": ";",
    }
    assert merge({"kind": "csv", "path": "a"}, {"kind": "parquet", "path": "b"}) == {"kind": "parquet", "path": "b"}


def test_rows_are_shown_only_for_data_under_the_roots(policy: JobPolicy) -> None:
    inside = prepare("run_task", DEFAULTS, {"params": {"source": {"kind": "csv", "path": "reviews.csv"}}}, policy)
    assert may_read_rows("run_task", inside, policy)
    assert not may_read_rows("run_task", DEFAULTS, policy)  # relative to the worker's folder: unknown
    assert not may_read_rows(
        "run_task", {"params": {**DEFAULTS["params"], "source": {"kind": "csv", "path": "/etc/passwd"}}}, policy
    )
    assert not may_read_rows("run_task", inside, JobPolicy())


def test_a_registered_prompt_is_named_never_located(policy: JobPolicy) -> None:
    for reference in ("prompts:/reviews.sentiment@production", "prompts:/reviews.sentiment/3"):
        out = prepare("run_task", DEFAULTS, {"params": {"prompt": reference}}, policy)
        assert out["params"]["prompt"] == reference  # sent as given: a name, not resolved as a path
    for reference in ("prompts:/../../etc/passwd@production", "prompts:/x", "PROMPTS:file:///etc/passwd"):
        refused(policy, {"prompt": reference}, "not a registered prompt reference")
    # An optimize_prompt job may register a new prompt version under a name of its own, but not move an alias.
    opt = {"params": {k: v for k, v in DEFAULTS["params"].items() if k != "model"}}
    out = prepare("optimize_prompt", opt, {"params": {"prompt_name": "mine"}}, policy)
    assert out["params"]["prompt_name"] == "mine" and out["params"]["alias"] is None
    with pytest.raises(ApiError) as caught:
        prepare("optimize_prompt", opt, {"params": {"alias": "production"}}, policy)
    assert caught.value.code.http_status == 422 and "set by the deployment only" in caught.value.message


def test_a_named_connection_replaces_its_fields_in_any_order(policy: JobPolicy) -> None:
    evil = "postgresql+psycopg://evil@127.0.0.1:55432/x"
    # The order of keys decided on the old code: fields after 'connection' overwrote what the server filled in.
    for source in (
        {"kind": "sql", "connection": "warehouse", "url": evil, "password_env": "ZHIPUAI_API_KEY", "query": "t"},
        {"kind": "sql", "url": evil, "connection": "warehouse", "query": "t"},
        {"password_env": "ZHIPUAI_API_KEY", "kind": "sql", "connection": "warehouse", "query": "t"},
        {"kind": "sql", "connection": "warehouse", "password_block": "zhipu", "query": "t"},
    ):
        refused(policy, {"source": source}, "set by the named connection")
    refused(policy, {"output_connection": "warehouse", "output_sql_url": evil, "output_table": "r"}, "named conn")
    refused(policy, {"output_password_env": "ZHIPUAI_API_KEY", "output_connection": "warehouse"}, "named conn")


def test_a_named_connection_is_not_mixed_with_the_deployments_secret(policy: JobPolicy) -> None:
    operator = {
        "kind": "sql",
        "url": "postgresql+psycopg://op@127.0.0.1:5432/ops",
        "query": "t",
        "password_block": "ops",
    }
    defaults = {"params": {**DEFAULTS["params"], "source": operator}}
    out = prepare("run_task", defaults, {"params": {"source": {"connection": "warehouse", "query": "t"}}}, policy)
    source = out["params"]["source"]
    assert source["url"] == "postgresql+psycopg://reader@127.0.0.1:5432/test"
    assert source["password_env"] == "WAREHOUSE_PW" and source["password_block"] is None


def test_connection_fields_are_refused_inside_pipeline_graph_nodes(policy: JobPolicy) -> None:
    load = {"source": {"kind": "sql", "connection": "warehouse", "url": "sqlite:////tmp/x.db", "query": "t"}}
    graph = {
        "nodes": [
            {"id": "load", "stage": "load", "params": load},
            {"id": "write", "stage": "write", "params": {}},
        ],
        "edges": [{"source": "load.dataset", "target": "write.dataset"}],
    }
    with pytest.raises(ApiError) as caught:
        prepare("pipeline", {}, {"params": {"graph": graph}}, policy)
    assert "graph.nodes.0.params.source.url" in caught.value.message
    load["source"].pop("url")
    out = prepare("pipeline", {}, {"params": {"graph": graph}}, policy)
    sent = out["params"]["graph"]["nodes"][0]["params"]["source"]
    assert sent["url"].startswith("postgresql+psycopg://reader@") and sent["password_env"] == "WAREHOUSE_PW"


@pytest.mark.parametrize("prefix", ["LOCAL:", "Local:", " local:", "ｌｏｃａｌ:", "local :"])
def test_model_prefixes_are_read_once_whatever_their_case_or_width(policy: JobPolicy, prefix: str) -> None:
    refused(policy, {"model": {"model": f"{prefix}/etc"}}, "outside the data roots")
    (policy.data_roots[0] / "models" / "m").mkdir(parents=True)
    out = prepare("run_task", DEFAULTS, {"params": {"model": {"model": f"{prefix}models/m"}}}, policy)
    assert out["params"]["model"]["model"] == f"local:{(policy.data_roots[0] / 'models' / 'm').resolve()}"


def test_unreadable_paths_are_a_422_not_a_500(policy: JobPolicy) -> None:
    root = policy.data_roots[0]
    (root / "loop").symlink_to(root / "loop2")
    (root / "loop2").symlink_to(root / "loop")
    for path in ("reviews.csv\x00/../../etc/passwd", "loop/x"):
        error = refused(policy, {"source": {"kind": "csv", "path": path}}, "not a readable path")
        assert "/etc" not in error.message and str(root) not in error.message


def test_every_model_string_field_is_normalised_and_confined() -> None:
    """The confinement finds model strings by field name; every field holding one is a ``ModelString`` (normal form)
    and carries one of those names, in every flow's and stage's parameters, so the two cannot drift apart."""
    import typing

    from pydantic import BaseModel

    from openautoglm.core.model_names import ModelString
    from openautoglm.serve.confine import MODEL_FIELDS, flow_names, params_model
    from openautoglm.stages import catalogue

    marker = typing.get_args(ModelString)[1]

    def holds_model_string(annotation: object) -> bool:
        if typing.get_origin(annotation) is typing.Annotated:
            return marker in typing.get_args(annotation)[1:] or holds_model_string(typing.get_args(annotation)[0])
        return any(holds_model_string(a) for a in typing.get_args(annotation))

    seen: set[type[BaseModel]] = set()
    found: list[str] = []

    def walk(model: type[BaseModel]) -> None:
        if model in seen:
            return
        seen.add(model)
        for name, info in model.model_fields.items():
            typed = holds_model_string(info.annotation) or any(m is marker for m in info.metadata)
            if typed:
                found.append(f"{model.__name__}.{name}")
                assert name in MODEL_FIELDS, f"{model.__name__}.{name} holds a model string the confinement misses"
            elif name in MODEL_FIELDS:
                kinds = {info.annotation, *typing.get_args(info.annotation)}
                assert str not in kinds, f"{model.__name__}.{name} is a plain str: make it a ModelString"
            for arg in (info.annotation, *typing.get_args(info.annotation)):
                for inner in (arg, *typing.get_args(arg)):
                    if isinstance(inner, type) and issubclass(inner, BaseModel):
                        walk(inner)

    for flow in flow_names():
        model = params_model(flow)
        assert model is not None
        walk(model)
    for stage in catalogue().values():
        walk(stage.params)
    assert "ModelSpec.model" in found and "PromptSearch.proposer" in found, found


@pytest.mark.parametrize(
    ("flow", "field", "value"),
    [
        ("train_round", "force", True),
        ("train_round", "promote_alias", "candidate"),
        ("train_round", "alias", "production"),
        ("train_round", "registered_model", "someone-elses"),
        ("annotation_round", "registered_model", "someone-elses"),
    ],
)
def test_an_annotation_job_may_not_promote_or_repoint(policy: JobPolicy, flow: str, field: str, value: object) -> None:
    # A round job may train its project's model; forcing production or writing to another registered model is the
    # deployment's (an admin's) choice.
    ok = prepare(flow, {}, {"params": {"project": "reviews"}}, policy)
    assert ok["params"]["project"] == "reviews"
    with pytest.raises(ApiError) as caught:
        prepare(flow, {}, {"params": {"project": "reviews", field: value}}, policy)
    assert caught.value.code.http_status == 422 and "set by the deployment only" in caught.value.message
