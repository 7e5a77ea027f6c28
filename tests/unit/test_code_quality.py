"""The house rules that a reviewer would otherwise check by hand."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

PACKAGE = REPO / "openautoglm"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_import_contracts_hold() -> None:
    """The import-linter contracts in .importlinter hold: layers import downwards only (cli | serve -> SDK faces ->
    flows -> stages -> tasks -> usecases -> blocks -> adapters -> settings -> core), core imports nothing of ours
    outside core and no Prefect, MLflow, Dask or network library, the REST API never imports an SDK face.
    import-linter is a pinned dev dependency: missing, this fails rather than skips."""
    lint = Path(sys.executable).parent / "lint-imports"
    assert lint.exists(), f"{lint} is missing: pip install -e '.[dev]' -c constraints.txt (make install does)"
    proc = subprocess.run(
        [str(lint), "--config", str(REPO / ".importlinter"), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_the_contracts_can_fail(tmp_path: Path) -> None:
    """The layers contract is no tautology: the same layers read upside down break it."""
    config = (REPO / ".importlinter").read_text(encoding="utf-8")
    head, _, rest = config.partition("layers =\n")
    lines = rest.splitlines(keepends=True)
    count = next((i for i, line in enumerate(lines) if not line[:1].isspace() or not line.strip()), len(lines))
    layers = lines[:count]  # the indented lines under "layers =", the layers top to bottom
    assert len(layers) > 3, layers
    flipped = tmp_path / "flipped.ini"
    flipped.write_text(head + "layers =\n" + "".join(reversed(layers)) + "".join(lines[count:]))
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--config", str(flipped), "--no-cache"],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 1 and "BROKEN" in proc.stdout, proc.stdout[-2000:]


SDK_FACES = ("openautoglm.loader", "openautoglm.pipeline", "openautoglm.optimize", "openautoglm.autograph")
LOWER_LAYERS = ("core", "adapters", "usecases", "tasks", "stages", "flows", "serve", "blocks")


@pytest.mark.parametrize(
    "path", sorted(p for layer in LOWER_LAYERS for p in (PACKAGE / layer).rglob("*.py")), ids=lambda p: p.name
)
def test_lower_layers_do_not_import_the_sdk_faces_from_the_package_root(path: Path) -> None:
    """``from openautoglm import AutoGraph`` loads the face through the root's lazy ``__getattr__``, which
    import-linter cannot see: below the faces, only ``__version__`` is taken from the root."""
    where = path.relative_to(PACKAGE).as_posix()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module == "openautoglm":
            faces = {a.name for a in node.names} & {"DataLoader", "TaskPipeline", "PromptOptimizer", "AutoGraph"}
            assert not faces, f"{where} imports {faces} from the package face"


NAMED_FLOWS = ("ingest", "run_task", "optimize_prompt", "graph_search")


@pytest.mark.parametrize("name", NAMED_FLOWS)
def test_named_flows_are_wiring(name: str) -> None:
    """A named flow's file stays short (its parameters and result live in <flow>_params.py, its work in tasks)."""
    lines = len((PACKAGE / "flows" / f"{name}.py").read_text(encoding="utf-8").splitlines())
    assert lines <= 110, f"flows/{name}.py has {lines} lines: move work into tasks, parameters into {name}_params.py"


def test_the_graph_search_is_written_once() -> None:
    """AutoGraph, the graph_search flow and the graph-search stage all run usecases.graph.search_graph; none
    plans, drives the search, the tuning or the selection itself, and the stage runs no flow."""
    for path in (PACKAGE / "autograph.py", PACKAGE / "flows" / "graph_search.py", PACKAGE / "stages" / "graph.py"):
        called = _calls(path)
        assert "search_graph" in called, path.name
        assert not called & {"run_graph_search", "plan_search", "run_search", "select", "tune"}, path.name
        assert not called & {"plan_space", "plan_stack_space"}, path.name
    assert not any(name.startswith("openautoglm.flows") for name in _imports(PACKAGE / "stages" / "graph.py"))


def _calls(path: Path) -> set[str]:
    return {
        node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
    }


def test_prediction_is_written_once() -> None:
    """TaskPipeline.run, the infer stage and the run_task flow (its chunk steps, tasks/nlp.InferSteps) all run
    adapters.prediction.predict with their own executor; only that module (and the write task through it) joins
    results to rows."""
    callers = (PACKAGE / "pipeline.py", PACKAGE / "stages" / "nlp.py", PACKAGE / "tasks" / "nlp.py")
    for path in callers:
        called = _calls(path)
        assert "predict" in called, path.name
        assert not called & {"batches", "results_frame", "ThreadPoolExecutor"}, path.name
    joining = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if "results_frame" in _calls(p))
    assert joining == ["adapters/prediction.py"], joining


def test_prompt_optimisation_is_written_once() -> None:
    """PromptOptimizer.compile and the optimize_prompt flow both run usecases.prompt.optimise_prompt; neither drives
    the search, scores candidates, logs or registers the outcome itself."""
    for path in (PACKAGE / "optimize.py", PACKAGE / "flows" / "optimize_prompt.py"):
        called = _calls(path)
        assert "optimise_prompt" in called, path.name
        forbidden = {"run_prompt_search", "run_search", "outcome", "log_outcome", "register_outcome"}
        assert not called & (forbidden | {"score_candidates", "score_candidate", "proposer"}), path.name


def test_no_module_calls_a_tasks_fn() -> None:
    """A stage or a face calls the function a task wraps (a use case, a pure function), never ``task.fn``: the
    task's retries, cache and tags belong to the flow that runs it (tests may call ``.fn``)."""
    offenders = [
        f"{p.relative_to(REPO)}:{node.lineno}"
        for p in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "fn"
    ]
    assert offenders == [], "call the function the task wraps, not its .fn"


def test_no_assert_for_input_checks_in_the_package() -> None:
    offenders = [
        f"{p.relative_to(REPO)}:{node.lineno}"
        for p in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
        if isinstance(node, ast.Assert)
    ]
    assert offenders == [], "raise a typed error instead of assert"


def test_ruff_is_clean() -> None:
    """ruff is a pinned dev dependency (installed with pytest itself): missing, this fails rather than skips."""
    ruff = Path(sys.executable).parent / "ruff"
    assert ruff.exists(), f"{ruff} is missing: pip install -e '.[dev]' -c constraints.txt (make install does)"
    proc = subprocess.run(
        [str(ruff), "check", "openautoglm", "tests", "bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]


@pytest.mark.slow
def test_mypy_core_is_clean() -> None:
    """mypy is a pinned dev dependency: missing, this fails rather than skips."""
    assert importlib.util.find_spec("mypy") is not None, "mypy is missing: pip install -e '.[dev]' -c constraints.txt"
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:]


SKIPPING = """
import pytest

def test_skips():
    pytest.skip("the tool is not installed")

@pytest.mark.skipif(True, reason="the data is not here")
def test_skipif():
    pass

@pytest.mark.gpu
def test_gpu():
    pytest.skip("no CUDA device")

@pytest.mark.xfail(reason="known")
def test_xfail():
    assert False

def test_passes():
    pass
"""


@pytest.mark.parametrize("ci", ["true", ""])
def test_under_ci_a_skip_is_a_failure_unless_marked_gpu(tmp_path: Path, ci: str) -> None:
    """tests/conftest.py's hooks, run by a real pytest on a file that skips in each way: under CI=true the plain
    skip and the skipif fail (their reason in the message), the `gpu` skip and the xfail stay; elsewhere all skip."""
    (tmp_path / "conftest.py").write_text(
        "from tests.conftest import pytest_make_collect_report, pytest_runtest_makereport  # noqa: F401\n"
    )
    (tmp_path / "test_skipping.py").write_text(SKIPPING)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-o", "markers=gpu", str(tmp_path)],
        cwd=tmp_path,
        env={**os.environ, "CI": ci, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    summary = proc.stdout.strip().splitlines()[-1]
    if ci:  # a skip in the call is a failure; a skipif (decided at set-up) fails the set-up: an error
        assert proc.returncode == 1 and "1 failed, 1 passed, 1 skipped, 1 xfailed, 1 error" in summary, proc.stdout
        assert "the tool is not installed" in proc.stdout and "the data is not here" in proc.stdout
    else:
        assert proc.returncode == 0 and "1 passed, 3 skipped, 1 xfailed" in summary, proc.stdout
