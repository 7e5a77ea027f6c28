"""The CLI's options are generated from a parameter model: names, help, defaults, bounds, choices, nesting."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Literal

import pytest
import typer
from pydantic import BaseModel, ConfigDict, Field, model_validator
from typer.testing import CliRunner

from openautoglm.cli_params import FieldValues, options_from, settings_of


class Inner(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, description="The inner name.")
    size: int = Field(default=5, ge=1, le=9, description="How big.")


class Toy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    inner: Inner = Field(default=Inner(name="parent-default"))
    labels: tuple[str, ...] | None = Field(default=None, description="Label set.")
    rename: dict[str, str] | None = Field(default=None, description="Renames.")
    mode: Literal["fast", "slow"] = Field(default="fast", description="Speed.")
    flag: bool = Field(default=True, description="A switch.")
    picked: str = Field(default="", description="Set by the validator when not given.")

    @model_validator(mode="before")
    @classmethod
    def _pick(cls, data: dict[str, object]) -> dict[str, object]:
        return data if "picked" in data else {**data, "picked": f"for-{data.get('mode', 'fast')}"}


def _app(seen: list[Toy]) -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.command()
    @options_from(Toy, rename={"inner.name": "inner_name"}, flags={"flag": ("--flag/--no-flag", "-F")})
    def main(*, values: FieldValues) -> None:
        seen.append(Toy.model_validate(values.nested()))

    return app


def test_options_carry_the_models_names_defaults_help_and_nesting() -> None:
    seen: list[Toy] = []
    app = _app(seen)
    done = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert done.exit_code == 0, done.output
    for text in ("--inner-name", "The inner name.", "--size", "How big.", "parent-default", "--labels", "--rename"):
        assert text in done.output, (text, done.output)
    assert "fast" in done.output and "slow" in done.output  # the Literal's choices

    done = CliRunner().invoke(app, ["--size", "7", "--labels", "a, b", "--rename", "x=y", "--mode", "slow"])
    assert done.exit_code == 0, done.output
    toy = seen[-1]
    # a nested field set alone keeps the parent's default instance for the rest
    assert toy.inner == Inner(name="parent-default", size=7)
    assert toy.labels == ("a", "b") and toy.rename == {"x": "y"} and toy.mode == "slow"
    # options left at their defaults are not passed: the model's validator decides
    assert toy.picked == "for-slow"
    CliRunner().invoke(app, ["-F"])
    assert seen[-1].flag is True
    CliRunner().invoke(app, ["--no-flag"])
    assert seen[-1].flag is False


@pytest.mark.parametrize(("args", "message"), [(["--size", "10"], "--size"), (["--mode", "medium"], "--mode")])
def test_the_models_bounds_and_choices_are_checked_by_the_command_line(args: list[str], message: str) -> None:
    done = CliRunner().invoke(_app([]), args)
    assert done.exit_code == 2 and message in done.output, done.output


def test_two_fields_making_one_option_are_refused() -> None:
    class Clash(BaseModel):
        inner: Inner = Field(default=Inner(name="a"))
        name: str = "b"

    with pytest.raises(TypeError, match=r"inner\.name"):
        settings_of(Clash)


def test_the_top_level_help_builds_no_model_command() -> None:
    """`openautoglm --help` lists the model commands from their docstrings, importing none of the heavy models."""
    code = (
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from openautoglm.cli import app\n"
        "out = CliRunner().invoke(app, ['--help'], env={'COLUMNS': '200'}).output\n"
        "print(json.dumps({'out': out, 'loaded': sorted(m for m in sys.modules if m.startswith('openautoglm.flows'))}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    for command in ("ingest", "run", "distill", "optimize-prompt", "graph-search", "validate", "pipeline"):
        assert command in report["out"], report["out"]
    assert [m for m in report["loaded"] if m.endswith("_params")] == [], report["loaded"]
