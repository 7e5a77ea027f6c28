"""Data validation with Great Expectations 1.x: one suite per task kind, a gate that fails or quarantines.

A failed Great Expectations validation does not raise; :func:`apply_gate` does, in ``fail`` mode, with a
readable summary. In ``quarantine`` mode each failing row leaves the dataset with every reason it failed.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from openautoglm.core.data.schema import ROW_ID, Dataset, QuarantinedRow, quarantine_records
from openautoglm.core.errors import ConfigurationError, ValidationGateError
from openautoglm.core.nlp.task_types import TASK_TYPES
from openautoglm.core.registry import RegisteredName, Registry

GateMode = Literal["fail", "quarantine"]
#: A task type's name or ``generic``: picks the suite (a task type without a suite of its own gets ``generic``).
ValidationTask = Annotated[str, RegisteredName(lambda: TASK_TYPES, "generic")]


class ValidationConfig(BaseModel):
    """What valid data looks like for a task.

    Attributes:
        task: Task kind; picks the suite (see :data:`SUITES`).
        text_columns: Columns that must hold text (``("text", "text_pair")`` for matching).
        label_column: Column with gold labels, if any; with ``labels`` given, every row needs one from the set.
        labels: The label set.
        id_column: A source id column that must be unique (``row_id`` is unique by construction and skipped).
        min_length, max_length: Bounds on text length in characters.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    task: ValidationTask = "text_classification"
    text_columns: tuple[str, ...] = ("text",)
    label_column: str | None = None
    labels: tuple[str, ...] | None = None
    id_column: str | None = None
    min_length: int = Field(default=1, ge=0)
    max_length: int = Field(default=8000, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> ValidationConfig:
        if self.min_length > self.max_length:
            raise ValueError(f"min_length {self.min_length} > max_length {self.max_length}")
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError(f"labels repeat a value: {list(self.labels)}")
        return self


@dataclass(frozen=True)
class Check:
    """One expectation plus how to phrase a row's failure of it."""

    expectation: Any
    column: str
    rule: str
    describe: Callable[[Any], str]


SuiteBuilder = Callable[[ValidationConfig, Sequence[str]], list[Check]]

#: Suite builders by task kind.
SUITES: Registry[SuiteBuilder] = Registry("validation suite")


def _gx() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx

    return gx


def _text_checks(config: ValidationConfig, columns: Sequence[str]) -> list[Check]:
    gx = _gx()
    checks: list[Check] = []
    for column in config.text_columns:
        checks.append(
            Check(
                gx.expectations.ExpectColumnValuesToNotBeNull(column=column),
                column,
                "not_null",
                lambda v, c=column: f"{c} is missing",
            )
        )
        checks.append(
            Check(
                gx.expectations.ExpectColumnValueLengthsToBeBetween(
                    column=column, min_value=config.min_length, max_value=config.max_length
                ),
                column,
                "length",
                lambda v, c=column: (
                    f"{c} has {len(str(v))} characters, outside [{config.min_length}, {config.max_length}]"
                ),
            )
        )
    if config.id_column and config.id_column != ROW_ID:
        checks.append(
            Check(
                gx.expectations.ExpectColumnValuesToBeUnique(column=config.id_column),
                config.id_column,
                "unique_id",
                lambda v, c=config.id_column: f"{c} {v!r} is not unique",
            )
        )
    return checks


def _label_checks(config: ValidationConfig, columns: Sequence[str]) -> list[Check]:
    if config.label_column is None or config.labels is None:
        return []
    gx = _gx()
    allowed = list(config.labels)
    column = config.label_column
    return [
        Check(
            gx.expectations.ExpectColumnValuesToNotBeNull(column=column),
            column,
            "label_present",
            lambda v, c=column: f"{c} is missing",
        ),
        Check(
            gx.expectations.ExpectColumnValuesToBeInSet(column=config.label_column, value_set=allowed),
            config.label_column,
            "label_in_set",
            lambda v, c=config.label_column: f"{c} {v!r} is not one of {allowed}",
        ),
    ]


@SUITES.register("text_classification", "classification")
def classification_suite(config: ValidationConfig, columns: Sequence[str]) -> list[Check]:
    """Text present and within length bounds, id unique, label in the label set."""
    return _text_checks(config, columns) + _label_checks(config, columns)


@SUITES.register("semantic_matching", "matching")
def matching_suite(config: ValidationConfig, columns: Sequence[str]) -> list[Check]:
    """Both sentences present and within bounds, id unique, match label in the label set."""
    return _text_checks(config, columns) + _label_checks(config, columns)


@SUITES.register("ner")
def ner_suite(config: ValidationConfig, columns: Sequence[str]) -> list[Check]:
    """Text present and within bounds, id unique."""
    return _text_checks(config, columns)


@SUITES.register("generic")
def generic_suite(config: ValidationConfig, columns: Sequence[str]) -> list[Check]:
    """Text present and within bounds, id unique; labels checked when given."""
    return _text_checks(config, columns) + _label_checks(config, columns)


class ExpectationSummary(BaseModel):
    """One expectation's outcome."""

    expectation: str
    column: str
    success: bool
    checked: int
    failed: int
    examples: list[str]


@dataclass(frozen=True)
class ValidationOutcome:
    """The result of validating a dataset.

    Attributes:
        success: Every expectation passed.
        expectations: Per expectation, counts and a few failing values.
        failures: One quarantine row per failing row (all its reasons, ``; ``-joined).
        raw: Great Expectations' own JSON result, kept as a file by the flows.
    """

    success: bool
    expectations: list[ExpectationSummary]
    failures: pd.DataFrame
    raw: dict[str, Any] = field(repr=False)

    def summary_text(self) -> str:
        """Plain lines, one per failed expectation."""
        failed = [e for e in self.expectations if not e.success]
        if not failed:
            return f"all {len(self.expectations)} expectations passed"
        lines = [
            f"- {e.expectation} on '{e.column}': {e.failed} of {e.checked} rows fail (e.g. {', '.join(e.examples)})"
            for e in failed
        ]
        return "\n".join(lines)

    def summary_markdown(self, title: str = "Validation") -> str:
        """A markdown table for a Prefect artifact."""
        verdict = "passed" if self.success else f"**failed**: {len(self.failures)} row(s) break an expectation"
        rows = "\n".join(
            f"| {e.expectation} | {e.column} | {'yes' if e.success else 'no'} | {e.checked} | {e.failed} | "
            f"{', '.join(e.examples)} |".replace("\n", " ")
            for e in self.expectations
        )
        return (
            f"# {title}\n\n{verdict}\n\n| expectation | column | passed | rows checked | rows failing | examples |\n"
            f"|---|---|---|---|---|---|\n{rows}\n"
        )


_LOCK = threading.Lock()
_CONTEXT: Any = None


def _context() -> Any:
    global _CONTEXT
    if _CONTEXT is None:
        gx = _gx()
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        # GE fingerprints every in-memory batch below this size (an md5 over pandas' row hashes: 90 of the 140 ms
        # of validating 52,721 reviews). The fingerprint only marks the batch; each validation here makes its own
        # data source and reads nothing back by it, so fingerprinting is switched off.
        from great_expectations.execution_engine import pandas_execution_engine

        if hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
            pandas_execution_engine.HASH_THRESHOLD = 0
        _CONTEXT = context
    return _CONTEXT


_BATCH_DEFINITION: Any = None


def _batch_definition() -> Any:
    """One in-memory data source of the context, made once: each validation hands it its own frame (adding and
    deleting a data source per call rewrote GE's project config four times, ~0.05 s a call, once per chunk)."""
    global _BATCH_DEFINITION
    if _BATCH_DEFINITION is None:
        _BATCH_DEFINITION = (
            _context()
            .data_sources.add_pandas("openautoglm-rows")
            .add_dataframe_asset("rows")
            .add_batch_definition_whole_dataframe("all")
        )
    return _BATCH_DEFINITION


def validate_dataset(dataset: Dataset, config: ValidationConfig) -> ValidationOutcome:
    """Run the task's suite over the dataset's rows (row-level results keyed by ``row_id``).

    Raises:
        ConfigurationError: the config names a column the dataset lacks.
    """
    columns = dataset.columns
    needed = [
        *config.text_columns,
        *([config.label_column] if config.label_column else []),
        *([config.id_column] if config.id_column and config.id_column != ROW_ID else []),
    ]
    missing = [c for c in needed if c not in columns]
    if missing:
        raise ConfigurationError(
            f"Validation needs column(s) {missing}, but the data has {columns}.",
            hint="set --text-column / --label-column / --id-column to existing columns, or rename them when loading",
        )
    checks = SUITES.resolve(config.task if config.task in SUITES else "generic")(config, columns)
    gx = _gx()
    frame = dataset.frame
    with _LOCK:
        batch = _batch_definition().get_batch(batch_parameters={"dataframe": frame})
        suite = gx.ExpectationSuite(name=f"{config.task}-rows", expectations=[c.expectation for c in checks])
        result = batch.validate(
            suite, result_format={"result_format": "COMPLETE", "unexpected_index_column_names": [ROW_ID]}
        )
    raw = result.to_json_dict()
    return _outcome(raw, checks, len(frame))


def _outcome(raw: dict[str, Any], checks: list[Check], rows: int) -> ValidationOutcome:
    by_id: dict[str, Check] = {}
    for check in checks:
        by_id[_key(check.expectation.expectation_type, check.column)] = check
    reasons: dict[int, list[str]] = defaultdict(list)
    rules: dict[int, list[str]] = defaultdict(list)
    summaries: list[ExpectationSummary] = []
    for item in raw["results"]:
        config = item["expectation_config"]
        column = config["kwargs"].get("column", "")
        check = by_id[_key(config["type"], column)]
        unexpected = item.get("result", {}).get("unexpected_index_list") or []
        if item.get("exception_info", {}).get("raised_exception"):
            message = item["exception_info"]["exception_message"]
            raise ConfigurationError(f"Great Expectations could not evaluate {config['type']} on '{column}': {message}")
        examples: list[str] = []
        for entry in unexpected:
            row_id = int(entry[ROW_ID])
            reasons[row_id].append(check.describe(entry.get(column)))
            rules[row_id].append(check.rule)
            if len(examples) < 3:
                examples.append(repr(entry.get(column)))
        summaries.append(
            ExpectationSummary(
                expectation=config["type"],
                column=column,
                success=bool(item["success"]),
                checked=rows,
                failed=len(unexpected) if unexpected else int(item.get("result", {}).get("unexpected_count") or 0),
                examples=examples,
            )
        )
    failures = quarantine_records(
        QuarantinedRow(
            row_id=rid,
            stage="validate",
            rule=",".join(sorted(set(rules[rid]))),
            reason="; ".join(reasons[rid]),
            location="",
            record="",
        )
        for rid in sorted(reasons)
    )
    return ValidationOutcome(success=bool(raw["success"]), expectations=summaries, failures=failures, raw=raw)


def _key(expectation_type: str, column: str) -> str:
    return f"{expectation_type}:{column}"


def apply_gate(dataset: Dataset, outcome: ValidationOutcome, mode: GateMode) -> Dataset:
    """``fail``: raise :class:`ValidationGateError` unless the data passed. ``quarantine``: move failing rows out."""
    if outcome.success:
        return dataset
    if mode == "fail":
        raise ValidationGateError(
            outcome.summary_text(),
            hint="fix the rows listed, or run with --gate quarantine to set them aside with their reasons",
        )
    return dataset.reject(outcome.failures)
