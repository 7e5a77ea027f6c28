"""Every make target the README names makes sure of the tools it needs (scripts/ensure-tools.sh), read from the
Makefile and the scripts its recipes call; and ensure-tools.sh's lines where a tool cannot be had. The real thing,
a fresh machine running those targets, is `make fresh-check` (minutes: not part of the suite)."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO

ENSURE = REPO / "scripts" / "ensure-tools.sh"
PYTHON_TOOLS = {"python", "venv"}  # the virtual environment ($(BIN)/python)
INFRA_TESTS = {"nginx", "promtool", "pushgateway", "compose", "kubectl", "redis-server", "chromium", "cjk-font"}
# What each target the README names needs beyond Python's packages (a new target in the README needs a line here).
NEEDS: dict[str, set[str]] = {
    "install": PYTHON_TOOLS | {"npm"},
    "demo": PYTHON_TOOLS | {"npm"},
    "test": PYTHON_TOOLS | {"npm"} | INFRA_TESTS,
    "lint": PYTHON_TOOLS,
    "docs": PYTHON_TOOLS | {"npm"},
    "deploy": PYTHON_TOOLS,
    "bench": PYTHON_TOOLS | {"npm", "chromium"},
    "ui": {"npm"},
    "ui-test": {"npm"},
    "infra-tools": INFRA_TESTS,
    # docker.io where no daemon answers, debootstrap for the offline base
    "image": PYTHON_TOOLS | {"docker", "debootstrap"},
    # compose and the JWT key pair; debootstrap for the services image's base
    "stack-test": PYTHON_TOOLS | {"docker", "compose", "openssl", "debootstrap"},
    # the tool steps alone, as make fresh-check runs them
    "tools-image": {"docker", "debootstrap"},
    "tools-stack-test": {"docker", "compose", "openssl"},
    "docker-stop": set(),
    "fresh-check": {"docker", "debootstrap", "git"},
}


def logical_lines(text: str) -> list[str]:
    return text.replace("\\\n", " ").splitlines()


def makefile() -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Targets -> prerequisites (order-only included) and targets -> recipe lines, variables expanded."""
    lines = logical_lines((REPO / "Makefile").read_text())
    variables = {}
    for line in lines:
        match = re.match(r"^([A-Z_]+)\s*[:?]?=\s*(.*)$", line)
        if match:
            variables[match[1]] = match[2]

    def expand(text: str) -> str:
        for _ in range(5):
            text = re.sub(r"\$\(([A-Z_]+)\)", lambda m: variables.get(m[1], m[0]), text)
        return text

    prerequisites: dict[str, list[str]] = {}
    recipes: dict[str, list[str]] = {}
    current: list[str] = []
    for line in lines:
        if line.startswith("\t"):
            for target in current:
                recipes[target].append(expand(line))
            continue
        match = re.match(r"^([^\s:=#][^:=]*?)\s*:(?!=)\s*(.*)$", line)
        if match and not line.startswith("."):
            current = expand(match[1]).split()
            for target in current:
                prerequisites.setdefault(target, []).extend(expand(match[2]).replace("|", " ").split())
                recipes.setdefault(target, [])
        elif line.strip() and not line.startswith("#"):
            current = []
    return prerequisites, recipes


def scripts_named(text: str) -> set[Path]:
    """The repository's scripts a text runs (by file name)."""
    found = set()
    for folder in (REPO / "scripts", REPO / "infra" / "docker"):
        for script in list(folder.glob("*.sh")) + list(folder.glob("*.py")):
            if script.name in text and script != ENSURE:
                found.add(script)
    return found


def call_words(line: str) -> list[str]:
    """The words after `ensure-tools.sh` up to the end of the command (`;`, `|`, `&&`, `)`) or of the string."""
    lexer = shlex.shlex(line.split("ensure-tools.sh", 1)[1].lstrip('"'), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    try:
        for word in lexer:
            if word and set(word) <= set(";|&()<>"):
                break
            words.append(word)
    except ValueError:  # the quote that closes a Python string holding the call
        pass
    return words


def ensured(text: str) -> set[str]:
    """The tools named in the ensure-tools.sh calls of a text (Makefile recipe, shell or Python source)."""
    tools: set[str] = set()
    for line in logical_lines(text):
        if "ensure-tools.sh" not in line or line.lstrip().startswith("#"):
            continue
        words = iter(call_words(line))
        for word in words:
            if word in ("--for", "--without"):
                next(words, None)
            elif word.startswith("-"):
                continue
            elif re.fullmatch(r"[a-z][a-z0-9-]*", word):
                tools.add(word)
            else:
                break
    return tools


def tools_of(target: str) -> set[str]:
    """Every tool ensured by a target, its prerequisites, and the scripts their recipes run (transitively)."""
    prerequisites, recipes = makefile()
    seen_targets: set[str] = set()
    seen_scripts: set[Path] = set()
    tools: set[str] = set()
    todo = [target]
    while todo:
        name = todo.pop()
        if name in seen_targets or name not in recipes:
            continue
        seen_targets.add(name)
        todo += prerequisites.get(name, [])
        text = "\n".join(recipes[name])
        tools |= ensured(text)
        scripts = scripts_named(text)
        while scripts:
            script = scripts.pop()
            if script in seen_scripts:
                continue
            seen_scripts.add(script)
            body = script.read_text()
            tools |= ensured(body)
            scripts |= scripts_named(body) - seen_scripts
    return tools


def readme_targets() -> set[str]:
    """The targets the README and the docs pages name (the README's user guide moved to docs/)."""
    pages = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
    named = re.compile(r"(?:`|^\s*)make ([a-z][a-z-]*)", re.MULTILINE)  # in code, not prose ("make sure")
    return {t for page in pages for t in named.findall(page.read_text(encoding="utf-8"))}


def test_every_readme_target_is_in_the_makefile_and_in_this_table() -> None:
    _, recipes = makefile()
    assert readme_targets() - set(recipes) == set()
    assert readme_targets() - set(NEEDS) == set(), "a target the README names needs a line in NEEDS"


@pytest.mark.parametrize("target", sorted(NEEDS))
def test_each_target_ensures_its_tools(target: str) -> None:
    assert NEEDS[target] <= tools_of(target), f"make {target} does not ensure {NEEDS[target] - tools_of(target)}"


def test_the_tools_targets_cover_what_the_image_and_stack_test_ensure_where_needed() -> None:
    """make fresh-check runs tools-image and tools-stack-test: they must name what the targets' scripts ensure."""
    prerequisites, recipes = makefile()
    assert ensured("\n".join(recipes["tools-image"])) == {"docker", "debootstrap"}
    assert {"docker", "compose", "openssl"} <= ensured("\n".join(recipes["tools-stack-test"]))
    assert "tools-stack-test" in prerequisites["stack-test"]


def run_ensure(*args: str, uid: str = "1000", **env: str) -> subprocess.CompletedProcess[str]:
    """ensure-tools.sh with `id -u` answering `uid` (a stand-in `id` first on PATH)."""
    fake = Path(os.environ.get("TMPDIR", "/tmp")) / f"fake-id-{os.getpid()}"
    fake.mkdir(exist_ok=True)
    (fake / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (fake / "id").chmod(0o755)
    path = f"{fake}:{os.environ['PATH']}"
    return subprocess.run(["bash", str(ENSURE), *args], capture_output=True, text=True,
                          env={**os.environ, "PATH": path, **env})  # fmt: skip


def test_a_present_tool_is_silent() -> None:
    result = run_ensure("--for", "make x", "python", "venv", PYTHON=sys.executable)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_a_missing_tool_when_not_root_is_one_line_and_exit_1() -> None:
    result = run_ensure("--for", "make x", "python", PYTHON="/nonexistent/python3")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        "make x: python is missing: run as root or `apt-get install python3` (or set PYTHON=/path/to/python3.11)"
    ]


def test_soft_names_the_tool_and_what_happens_without_it_and_exits_0() -> None:
    result = run_ensure("--for", "make x", "--soft", "--without", "tests skip", "python", PYTHON="/nonexistent/py")
    assert result.returncode == 0
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.rstrip().endswith("— tests skip")


def test_an_unknown_tool_is_refused() -> None:
    result = run_ensure("no-such-tool")
    assert result.returncode == 2
    assert "unknown tool 'no-such-tool'" in result.stderr


def load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_stack_test_without_compose_is_one_line_not_a_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    stack_test = load_script("stack_test")
    monkeypatch.setattr(stack_test.shutil, "which", lambda name: None)
    with pytest.raises(SystemExit) as exit_:
        stack_test.compose_command()
    assert str(exit_.value) == (
        "stack-test: compose is missing: run `make stack-test` as root, or `apt-get install docker-compose`"
        " (or the docker compose plugin)"
    )
    # the clean-up's commands report a tool that cannot run instead of raising a second error
    assert "could not run" in stack_test.run(["/nonexistent/docker-compose", "down"], check=False)


def test_fresh_check_judges_a_refusal_by_its_one_line() -> None:
    fresh = load_script("fresh_check")
    refused = fresh.Step("make image", "make image", refused=True)
    line = "make stack-test: docker, compose are missing: run as root or `apt-get install docker.io docker-compose`"
    assert fresh.judge(refused, 2, "", f"{line}\nmake: *** [Makefile:98: tools-stack-test] Error 1\n") is None
    assert fresh.judge(refused, 0, "", line) is not None  # not refused at all
    assert fresh.judge(refused, 1, "", f"{line}\n{line}\n") is not None  # two lines
    assert fresh.judge(refused, 1, "", "Traceback (most recent call last):\n  x\nFileNotFoundError: y\n") is not None
    passing = fresh.Step("make demo", "make demo")
    assert fresh.judge(passing, 0, "ok", "") is None
    assert "exit 2" in str(fresh.judge(passing, 2, "", "make: *** [Makefile:54: demo] Error 1"))
