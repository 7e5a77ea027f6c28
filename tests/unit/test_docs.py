"""The README stays a front page and the docs site holds the rest: the README's size, its two commands and the seed's
quick start; every link resolves; every docs page is in the nav and every nav entry has its page; the CLI and REST
references are generated from the code and name every command and route. The strict build itself is `make docs`
(run by `make test`)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.conftest import EXAMPLES, REPO

README = REPO / "README.md"
DOCS = REPO / "docs"
GENERATED = {"reference/cli.md", "reference/rest.md"}  # written by docs/hooks/reference.py at build time


def reference_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference_hook", DOCS / "hooks" / "reference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def nav_pages(entries: Any) -> list[str]:
    if isinstance(entries, str):
        return [entries]
    if isinstance(entries, list):
        return [page for entry in entries for page in nav_pages(entry)]
    if isinstance(entries, dict):
        return [page for value in entries.values() for page in nav_pages(value)]
    return []


def links(text: str) -> list[str]:
    """Relative link targets of Markdown links and images, without their #fragment."""
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    return [t.split("#", 1)[0] for t in targets if not re.match(r"^[a-z]+:|^#", t) and t.split("#", 1)[0]]


def test_the_readme_is_a_front_page() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 300
    headings = re.findall(r"^## (.+)$", text, re.MULTILINE)
    for section in ("Two commands", "A five-minute tour", "Layout"):
        assert section in headings, section
    two = text.split("## Two commands", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert re.findall(r"^make (\S+)", two, re.MULTILINE) == ["demo", "test"]


def test_the_tour_starts_with_the_seed_quick_start_as_examples_quickstart_runs_it() -> None:
    tour = README.read_text(encoding="utf-8").split("## A five-minute tour", 1)[1]
    first = tour.split("```python", 1)[1].split("```", 1)[0]
    for needle in (
        'DataLoader.from_csv("examples/user_feedback.csv").load(columns=["text"])',
        'TaskPipeline(task_type="text_classification", model="glm-4")',
        "pipeline.configure(",
        "results = pipeline.run(dataset)",
    ):
        assert needle in first, needle
    script = (EXAMPLES / "quickstart.py").read_text(encoding="utf-8").replace('HERE / "user_feedback.csv"', "")
    for line in first.splitlines():
        code = line.split("  #", 1)[0].strip().replace('"examples/user_feedback.csv"', "")
        if code and not code.startswith(("#", "from ")):
            assert code in script, f"the README's quick start differs from examples/quickstart.py: {code}"


@pytest.mark.parametrize("page", [README, *sorted(DOCS.rglob("*.md"))], ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page: Path) -> None:
    missing = []
    for target in links(page.read_text(encoding="utf-8")):
        resolved = (page.parent / target).resolve()
        relative = resolved.relative_to(DOCS.resolve()).as_posix() if resolved.is_relative_to(DOCS.resolve()) else ""
        if not resolved.exists() and relative not in GENERATED:
            missing.append(target)
    assert missing == []


def test_every_docs_page_is_in_the_nav_and_every_nav_entry_has_its_page() -> None:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    nav = nav_pages(config["nav"])
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md") if "hooks" not in p.parts}
    assert sorted(pages - set(nav)) == [], "add these pages to mkdocs.yml's nav"
    assert sorted(set(nav) - pages - GENERATED) == [], "these nav entries have no page"
    assert set(nav) >= GENERATED
    assert config["strict"] is True and config["hooks"] == ["docs/hooks/reference.py"]


def test_the_cli_reference_names_every_command_with_its_options() -> None:
    import typer

    from openautoglm.cli import app

    hook = reference_hook()
    page = hook.cli_reference()
    root = typer.main.get_command(app)

    def paths(cmd: Any, ctx: Any) -> list[tuple[str, Any]]:
        found = [(ctx.command_path, cmd)]
        for name, sub in hook.subcommands(cmd, ctx):
            found += paths(sub, sub.context_class(sub, info_name=name, parent=ctx))
        return found

    commands = paths(root, root.context_class(root, info_name="openautoglm"))
    names = {path.split(" ", 1)[-1] for path, _ in commands}
    assert {"run", "ingest", "validate", "optimize-prompt", "graph-search", "serve", "workflow run"} <= names
    for path, cmd in commands[1:]:
        assert f"`{path}`" in page, path
        for param in cmd.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt != "--help" and not getattr(param, "hidden", False):
                    assert opt in page, (path, opt)


def test_the_rest_reference_names_every_route_and_schema() -> None:
    hook = reference_hook()
    schema = hook.openapi_schema()
    page = hook.rest_reference(schema)
    verbs = {"get", "post", "put", "patch", "delete"}
    routes = [(m.upper(), p) for p, ops in schema["paths"].items() for m in ops if m in verbs]
    assert len(routes) > 10
    for method, path in routes:
        assert f"### `{method} {path}`" in page, (method, path)
    for name in schema["components"]["schemas"]:
        assert f"### `{name}`" in page, name
