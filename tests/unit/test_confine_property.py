"""Property test of the job confinement: generated job parameters never get a caller's secret route, a file
outside the data roots, or a caller-chosen endpoint into a flow run.

Hostile values are drawn from a marked set (an evil host and port, a worker's secret variable, a stolen block name,
an evil endpoint), mixed with legitimate ones, in every key order, with case and Unicode variants of the model
prefixes, inside every flow's parameters and inside pipeline graph nodes. Whatever :func:`prepare` lets through is
read back as the worker reads it (the flow's parameter model, the stages' parameter models, the model backend
resolver) and checked by an oracle that does not share the confinement code: no marked value anywhere in what is
sent, every file read and every ``local:`` folder the backend would load resolving (``os.path.realpath``) under the
root, secret-routing fields only as the deployment or a named connection set them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from openautoglm.serve.confine import JobPolicy, SqlConnection, prepare
from openautoglm.serve.envelope import ApiError

ROOT_DIR = Path(__file__).resolve().parents[2]
#: Examples per flow: 6 flows x 2,000 = 12,000 generated jobs per `make test`.
EXAMPLES = int(os.environ.get("OPENAUTOGLM_CONFINE_EXAMPLES", "2000"))

EVIL_HOST, EVIL_PORT, EVIL_ENV, EVIL_BLOCK = "evil.invalid", "55432", "ZHIPUAI_API_KEY", "stolen-block"
EVIL_ENDPOINT = f"http://{EVIL_HOST}:{EVIL_PORT}/api/paas/v4/"
EVIL_URL = f"postgresql+psycopg://evil@{EVIL_HOST}:{EVIL_PORT}/x"
MARKS = (EVIL_HOST, EVIL_PORT, EVIL_ENV, EVIL_BLOCK)
WAREHOUSE = "postgresql+psycopg://reader@127.0.0.1:5432/test"
OUTBOX = "mariadb+pymysql://writer@127.0.0.1:3306/test"
CONNECTIONS = {"warehouse": SqlConnection(WAREHOUSE, "WAREHOUSE_PW"), "outbox": SqlConnection(OUTBOX, None)}
SECRET_ROUTES = {"url", "password_env", "password_block", "output_sql_url", "output_password_env"}
SERVER_VALUES = {WAREHOUSE, OUTBOX, "WAREHOUSE_PW"}

# The data root is made once per session (hypothesis reuses it across examples); see `root`.
_ROOT = Path(os.environ.get("TMPDIR", "/tmp")) / f"confine-property-{os.getpid()}" / "data"


def _deployments() -> dict[str, list[dict[str, Any]]]:
    """The project's own deployments' parameters by flow, plus an operator's SQL source with a Secret block."""
    spec = yaml.safe_load((ROOT_DIR / "deployments" / "prefect.yaml").read_text(encoding="utf-8"))
    flows: dict[str, list[dict[str, Any]]] = {}
    for deployment in spec["deployments"]:
        flow = deployment["entrypoint"].rsplit(".", 1)[1]
        flows.setdefault(flow, []).append(deployment.get("parameters") or {})
    operator_sql = {
        "kind": "sql",
        "url": "postgresql+psycopg://operator@127.0.0.1:5432/test",
        "query": "feedback",
        "password_block": "operator-db",
    }
    run_task = flows["run_task"][0]["params"]
    flows["run_task"].append({"params": {**run_task, "source": operator_sql}})
    return flows


DEPLOYMENTS = _deployments()


def _subset(
    fields: dict[str, st.SearchStrategy[Any]], required: tuple[str, ...] = (), most: int = 4
) -> st.SearchStrategy[dict]:
    """Objects with up to ``most`` of ``fields`` (``required`` always), in any key order. Few keys an object: one
    refused field ends a job, so a job with many hostile fields tests only the first."""

    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        keys = draw(st.lists(st.sampled_from(sorted(fields)), unique=True, max_size=min(most, len(fields))))
        order = draw(st.permutations(list(dict.fromkeys([*required, *keys]))))
        return {key: draw(fields[key]) for key in order}

    return build()


PATHS = st.one_of(
    st.sampled_from(
        [
            "reviews.csv",
            str(_ROOT / "reviews.csv"),
            "/etc/passwd",
            "../../etc/passwd",
            "escape.csv",
            "loop/x",
            "reviews.csv\x00/../../etc/passwd",
            "~/.bashrc",
            "／etc／passwd",
            "models/m",
            str(_ROOT / ".." / ".." / "etc"),
            "//fileserver/share/file.csv",
        ]
    ),
    st.text(max_size=12),
)
PREFIXES = [
    "local:",
    "LOCAL:",
    "Local:",
    " local:",
    "local :",
    "ｌｏｃａｌ:",
    "LoCaL:",
    "mlflow:",
    "MLFLOW:",
    "ｍｌｆｌｏｗ:",
]
TARGETS = [
    "models/m",
    str(_ROOT / "models" / "m"),
    "/etc",
    "../../etc",
    "/tmp",
    "~",
    "/feedback-student@production",
    "/feedback-student/1",
    "runs:/abc/model",
    "file:///etc",
    "escape",
]
MODELS = st.one_of(
    st.builds(lambda p, t: p + t, st.sampled_from(PREFIXES), st.sampled_from(TARGETS)),
    st.sampled_from(["local-auto", "local-use", "glm-4-flash", "GLM-4", "ｇｌｍ-4"]),
    st.text(max_size=12),
)
MODEL_SPEC = _subset({"model": MODELS, "base_url": st.just(EVIL_ENDPOINT), "max_concurrency": st.just(2)}, ("model",))
CONNECTION = st.sampled_from(["warehouse", "outbox", "nope", "WAREHOUSE"])
SQL_SOURCE = _subset(
    {
        "kind": st.just("sql"),
        "connection": CONNECTION,
        "url": st.sampled_from([EVIL_URL, WAREHOUSE]),
        "password_env": st.sampled_from([EVIL_ENV, "WAREHOUSE_PW"]),
        "password_block": st.just(EVIL_BLOCK),
        "query": st.sampled_from(["SELECT 1 AS text", "feedback"]),
    },
    ("query",),
)
FILE_SOURCE = _subset({"kind": st.sampled_from(["csv", "jsonl"]), "path": PATHS}, ("path",))
SOURCE = st.one_of(SQL_SOURCE, FILE_SOURCE)
PROMPTS = st.one_of(PATHS, st.sampled_from(["prompts:/p@production", "PROMPTS:/../../etc/passwd@x", "0" * 32]))
OUTPUTS = {
    "output_connection": CONNECTION,
    "output_sql_url": st.sampled_from([EVIL_URL, OUTBOX]),
    "output_password_env": st.sampled_from([EVIL_ENV, "WAREHOUSE_PW"]),
    "output_table": st.just("results"),
    "output_dir": PATHS,
}
COMMON = {"source": SOURCE, "credentials_block": st.just(EVIL_BLOCK), "output_dir": PATHS}
GRAPH = st.one_of(
    _subset({"kind": st.just("planetoid"), "name": st.just("Cora"), "root": PATHS}, ("kind",)),
    _subset(
        {
            "kind": st.just("table"),
            "nodes": st.one_of(PATHS, st.just("nodes")),
            "edges": st.one_of(PATHS, st.just("edges")),
            "connection": CONNECTION,
            "url": st.sampled_from([EVIL_URL, WAREHOUSE]),
            "password_env": st.sampled_from([EVIL_ENV, "WAREHOUSE_PW"]),
        },
        ("kind", "nodes", "edges"),
    ),
)
TASK = st.just({"task_type": "text_classification", "labels": ["正面", "负面"]})


@st.composite
def pipeline_graph(draw: st.DrawFn) -> dict[str, Any]:
    """A valid load -> infer -> write-results chain whose node parameters carry hostile values."""
    load = draw(_subset({"source": SOURCE}, ("source",)))
    infer = draw(_subset({"model": MODEL_SPEC, "credentials_block": st.just(EVIL_BLOCK), "task": TASK}, ("task",), 2))
    nodes = [
        {"id": "load", "stage": "load", "params": load},
        {"id": "infer", "stage": "infer", "params": infer},
        {"id": "write", "stage": draw(st.sampled_from(["write-results", "write_results"])), "params": {}},
    ]
    edges = [
        {"source": "load.dataset", "target": "infer.dataset"},
        {"source": "infer.predictions", "target": "write.predictions"},
    ]
    return {"nodes": draw(st.permutations(nodes)), "edges": edges}


CALLER: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "run_task": _subset({**COMMON, **OUTPUTS, "model": MODEL_SPEC, "prompt": PROMPTS, "task": TASK}, most=2),
    "ingest": _subset(COMMON, most=2),
    "optimize_prompt": _subset({**COMMON, "model": MODEL_SPEC, "proposer": MODELS, "task": TASK}, most=2),
    "distill": _subset({**COMMON, "teacher": MODEL_SPEC, "task": TASK}, most=2),
    "graph_search": _subset({"graph": GRAPH, "output_dir": PATHS}, most=1),
    "pipeline": _subset({"graph": pipeline_graph(), "output_dir": PATHS}, ("graph",), most=1),
}


def _make_root() -> Path:
    if not _ROOT.exists():
        (_ROOT / "models" / "m").mkdir(parents=True)
        (_ROOT / "reviews.csv").write_text("text,label\n好,正面\n", encoding="utf-8")
        (_ROOT / "escape.csv").symlink_to("/etc/passwd")
        (_ROOT / "escape").symlink_to("/etc")
        (_ROOT / "loop").symlink_to(_ROOT / "loop2")
        (_ROOT / "loop2").symlink_to(_ROOT / "loop")
    return _ROOT


def _at(tree: Any, path: tuple[str, ...]) -> Any:
    """The value at ``path`` in the deployment's raw parameters, or a marker when it has none."""
    for key in path:
        if isinstance(tree, list) and key.isdigit() and int(key) < len(tree):
            tree = tree[int(key)]
        elif isinstance(tree, dict) and key in tree:
            tree = tree[key]
        else:
            return KeyError
    return tree


def _walk(value: Any, path: tuple[str, ...] = ()) -> Any:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, (*path, str(key)))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _walk(item, (*path, str(i)))
    else:
        yield path, value


def _under_root(value: str) -> bool:
    real, root = os.path.realpath(os.path.expanduser(value)), os.path.realpath(_ROOT)
    return real == root or real.startswith(root + os.sep)


def _loaded_folder(model: str) -> str | None:
    """The folder the model backend resolver would load for ``model`` (None: not a folder)."""
    from openautoglm.adapters.models import ModelSpec
    from openautoglm.adapters.models.folders import folder_path
    from openautoglm.core.errors import ConfigurationError

    spec = ModelSpec(model=model)
    try:
        backend = spec.backend
    except ConfigurationError:
        return None  # an unknown model: the worker refuses it and loads nothing
    return str(folder_path(spec)) if backend == "local-hf" else None


def _check_sent(flow: str, deployment: dict[str, Any], sent: dict[str, Any]) -> None:
    """The oracle: what reaches the flow run holds no caller's secret route, outside file or endpoint."""
    text = json.dumps(sent, ensure_ascii=False)
    for mark in MARKS:
        assert mark not in text, f"{mark} reached the {flow} run: {text}"
    base = deployment.get("params") or {}
    for path, value in _walk(sent["params"]):
        own = _at(base, path)
        if own is not KeyError and own == value:
            continue  # the deployment's own value
        if value is None or value == "" or not isinstance(value, str):
            continue
        name = path[-1]
        parent = _at(sent["params"], path[:-1])
        if name in SECRET_ROUTES:
            assert value in SERVER_VALUES, f"{'.'.join(path)}={value!r} not the server's ({flow})"
        elif name in ("base_url", "credentials_block"):
            raise AssertionError(f"{'.'.join(path)}={value!r} chosen by the caller ({flow})")
        elif name == "output_dir":
            raise AssertionError(f"output_dir={value!r} chosen by the caller ({flow})")
        elif name in ("path", "root") or (name in ("nodes", "edges") and not parent.get("url")):
            assert _under_root(value), f"{'.'.join(path)}={value!r} outside the root ({flow})"
        elif name == "prompt" and not value.startswith("prompts:/") and len(value) != 32:
            assert _under_root(value), f"prompt={value!r} outside the root ({flow})"
        elif name in ("model", "proposer"):
            folder = _loaded_folder(value)
            assert folder is None or _under_root(folder), f"{'.'.join(path)}={value!r} loads {folder} ({flow})"


@pytest.mark.parametrize("flow", sorted(CALLER))
def test_no_generated_job_gets_a_secret_route_an_outside_file_or_an_endpoint(flow: str) -> None:
    policy = JobPolicy(data_roots=(_make_root(),), connections=CONNECTIONS)
    deployments = DEPLOYMENTS[flow]
    counts = {"sent": 0, "refused": 0}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(caller=CALLER[flow], which=st.integers(0, len(deployments) - 1))
    def check(caller: dict[str, Any], which: int) -> None:
        deployment = deployments[which]
        try:
            sent = prepare(flow, deployment, {"params": caller}, policy)
        except ApiError as error:
            assert error.code.http_status in (404, 422), error  # refused before a run: nothing reaches a worker
            counts["refused"] += 1
            return
        counts["sent"] += 1
        _check_sent(flow, deployment, sent)

    check()
    # The generator reaches both sides: jobs that are let through (and checked) and jobs that are refused.
    assert counts["sent"] > 0 and counts["refused"] > 0, counts
