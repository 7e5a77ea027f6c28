"""``openautoglm annotate``: annotation projects from the command line, on the annotation store of
``OPENAUTOGLM_ANNOTATIONS_URL`` (default ``sqlite:///$OPENAUTOGLM_HOME/annotations.db``).

- ``create NAME``: a project (its options are :class:`~openautoglm.adapters.annotation_store.ProjectSpec`'s fields),
  optionally with the rows of a CSV/JSONL/Parquet file to label (``--items``);
- ``add NAME FILE``: more rows to label;
- ``grant NAME SUBJECT``: let a token subject label (``--role annotator``) or adjudicate (``--role reviewer``);
- ``status NAME``: items, labelled, agreement (kappa), disagreements, the current model and the learning curve;
- ``export NAME FILE``: the label snapshot as CSV or JSONL (by the suffix);
- ``round NAME`` / ``train NAME``: an annotation round (pre-label the pool, queue the chosen rows) and a training
  round, their options generated from the use cases' parameter models (``AnnotationRoundParams``,
  ``TrainRoundParams`` in :mod:`openautoglm.usecases.annotation`);
- ``simulate``: a simulated annotator answering from a gold column, rounds of active learning and the learning
  curve (:func:`openautoglm.usecases.annotation_simulate.simulate`, the function ``bench/annotate.py`` runs).

Errors are one red line with a hint (exit code 2); ``OPENAUTOGLM_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from openautoglm.cli_output import console, errors
from openautoglm.cli_params import FieldValues, lazy_group, model_command
from openautoglm.core.errors import ConfigurationError

Commands = lazy_group()
annotate_app = typer.Typer(
    cls=Commands,
    help="Label data: projects, grants, rounds, agreement, exports, and a simulated annotator.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

ProjectArg = Annotated[str, typer.Argument(help="The project's name.", show_default=False)]
ItemsFile = Annotated[Path, typer.Argument(help="CSV, JSONL or Parquet file of rows to label.", show_default=False)]
TextColumn = Annotated[str, typer.Option(help="The column holding the text to label.")]
IdColumn = Annotated[str | None, typer.Option(help="A column identifying each row (default: the row number).")]


def _store() -> Any:
    from openautoglm.adapters.annotation_store import AnnotationStore

    return AnnotationStore()


def _add_rows(project: str, path: Path, text_column: str, id_column: str | None) -> Any:
    """Add the rows of ``path`` to ``project``; what :meth:`AnnotationStore.add_items` did."""
    from openautoglm.adapters.annotation_store import NewItem
    from openautoglm.loader import DataLoader

    frame = DataLoader.from_path(path).load(progress=False).to_pandas()
    missing = [c for c in (text_column, id_column) if c and c not in frame.columns]
    if missing:
        raise ConfigurationError(
            f"{path.name} has no column {missing[0]!r} (columns: {list(frame.columns)[:20]}).",
            hint="name the text column with --text-column (and the id column with --id-column)",
        )
    ids = frame[id_column].astype(str) if id_column else frame.index.astype(str)
    items = [
        NewItem(text=str(text), source=path.name, row_id=str(row_id))
        for text, row_id in zip(frame[text_column], ids, strict=True)
        if isinstance(text, str) and text.strip()
    ]
    return _store().add_items(project, items)


@model_command(Commands, "create", "openautoglm.adapters.annotation_store:ProjectSpec", exclude=("name",))
def create(
    name: ProjectArg,
    items: Annotated[Path | None, typer.Option(help="CSV, JSONL or Parquet file of rows to label.")] = None,
    text_column: TextColumn = "text",
    id_column: IdColumn = None,
    *,
    values: FieldValues,
) -> None:
    """Create an annotation project (and add the rows of --items).

    Example: openautoglm annotate create reviews --labels 正面,负面 --items examples/user_feedback.csv
    """
    from openautoglm.adapters.annotation_store import ProjectSpec

    with errors(values):
        spec = ProjectSpec.model_validate(values.nested(name=name))
        project = _store().create_project(spec)
        console.print(f"created project [bold]{project.name}[/] ({project.task_type}: {', '.join(spec.choices)})")
        if items is not None:
            added = _add_rows(name, items, text_column, id_column)
            console.print(f"added {added.added} rows ({added.duplicates} already held or repeated)")


@annotate_app.command()
def add(name: ProjectArg, file: ItemsFile, text_column: TextColumn = "text", id_column: IdColumn = None) -> None:
    """Add the rows of a file to a project (rows it holds already are not added again)."""
    with errors():
        added = _add_rows(name, file, text_column, id_column)
    console.print(f"added {added.added} rows to {name} ({added.duplicates} already held or repeated)")


@annotate_app.command()
def grant(
    name: ProjectArg,
    subject: Annotated[str, typer.Argument(help="The token subject (sub) to grant.", show_default=False)],
    role: Annotated[str, typer.Option(help="annotator (labels) or reviewer (adjudicates).")] = "annotator",
    revoke: Annotated[bool, typer.Option("--revoke", help="Take the grant back instead.")] = False,
) -> None:
    """Let a token subject label (annotator) or adjudicate (reviewer) a project; --revoke takes it back."""
    from openautoglm.adapters.annotation_access import AnnotationAccess, Grant

    with errors():
        access = AnnotationAccess(_store())
        wanted = Grant(project=name, subject=subject, role=role, granted_by="cli")  # type: ignore[arg-type]
        if revoke:
            held = access.revoke(wanted.project, wanted.subject, wanted.role)
            console.print(f"{subject} {'may no longer' if held else 'held no grant to'} {wanted.role} {name}")
            return
        done = access.grant(wanted)
    console.print(f"{done.subject} may now work on {done.project} as {done.role}")


@annotate_app.command()
def status(name: ProjectArg) -> None:
    """Items, labelled items, agreement (kappa), disagreements, the current model and the learning curve."""
    with errors():
        store = _store()
        counts = store.status(name)
        agreement = store.agreement(name)
        disputes = len(store.disagreements(name))
        trainings = store.trainings(name)
        rounds = store.rounds(name)
    table = Table(title=f"annotation project {name}", show_header=False)
    table.add_row("items", f"{counts.items} ({counts.eval_items} in the evaluation slice, {counts.queued} queued)")
    table.add_row("labelled", f"{counts.labelled_items} items, {counts.annotations} answers by {counts.annotators}")
    kappa = "–" if agreement.kappa is None else f"{agreement.kappa:.3f} ({agreement.method}, {agreement.items} items)"
    table.add_row("kappa", kappa)
    table.add_row("to review", str(disputes))
    if rounds:
        last = rounds[-1]
        table.add_row("round", f"{last.round}: pre-labelled by {last.model} v{last.model_version or '-'}")
    if trainings:
        model = trainings[-1]
        aliases = f" @{', @'.join(model.aliases)}" if model.aliases else ""
        table.add_row("model", f"{model.model_name} v{model.model_version}{aliases}")
        curve = " · ".join(f"{t.label_count}: {'-' if t.score is None else f'{t.score:.3f}'}" for t in trainings)
        table.add_row("curve", curve)
    console.print(table)


@annotate_app.command()
def export(
    name: ProjectArg,
    file: Annotated[Path, typer.Argument(help="Where to write (.csv or .jsonl).", show_default=False)],
) -> None:
    """Write the project's label snapshot (one answer per labelled item, adjudications winning) to a file."""
    with errors():
        snapshot = _store().export(name, file)
    console.print(f"wrote {len(snapshot.rows)} labelled items to {file} (snapshot {snapshot.digest[:12]})")


def _use_case(name: str) -> Any:
    return getattr(importlib.import_module("openautoglm.usecases.annotation"), name)


@model_command(Commands, "round", "openautoglm.usecases.annotation:AnnotationRoundParams")
def round_command(*, values: FieldValues) -> None:
    """Start an annotation round: pre-label the pool with the current model and queue the rows chosen."""
    with errors(values):
        params = _use_case("AnnotationRoundParams").model_validate(values.nested())
        r = _use_case("annotation_round")(params)
    console.print(
        f"round {r.round} of {r.project}: {r.model}{f' v{r.model_version}' if r.model_version else ''} "
        f"({r.model_source}) pre-labelled {r.predictions} rows of a pool of {r.pool}; queued {r.queued} "
        f"({r.strategy}{' + diversity' if r.diverse else ''}) in {r.seconds:.1f} s"
    )


@model_command(Commands, "train", "openautoglm.usecases.annotation:TrainRoundParams")
def train_command(*, values: FieldValues) -> None:
    """Train on every label now (a training round), register the model and move its alias."""
    with errors(values):
        params = _use_case("TrainRoundParams").model_validate(values.nested())
        t = _use_case("train_round")(params)
    if not t.trained:
        console.print(f"not trained: {t.reason} ({t.label_count} labels; --force trains anyway)")
        return
    score = "no gold answers yet" if t.score is None else f"{t.score:.3f} on {t.eval_items} evaluation items"
    console.print(
        f"registered {t.model} (round {t.round}, {t.label_count} labels): {score}; "
        f"aliases {', '.join(t.aliases) or '-'}; {t.seconds:.1f} s"
    )


@model_command(Commands, "simulate", "openautoglm.usecases.annotation_simulate:SimulateParams")
def simulate_command(*, values: FieldValues) -> None:
    """A simulated annotator answers from a gold column: rounds of active learning and the learning curve."""
    from openautoglm.usecases.annotation_simulate import SimulateParams, simulate

    with errors(values):
        params = SimulateParams.model_validate(values.nested())
        result = simulate(params)
    table = Table(title=f"simulated labelling: {result.strategy}{' + diversity' if result.diverse else ''}")
    for column in ("round", "labels", "accuracy", "macro F1", "seconds"):
        table.add_column(column, justify="right")
    for point in result.curve:
        table.add_row(
            str(point.round),
            str(point.labels),
            f"{point.accuracy:.3f}",
            f"{point.macro_f1:.3f}",
            f"{point.seconds:.1f}",
        )
    console.print(table)
    console.print(f"area under the curve: {result.area:.4f} ({result.pool_rows} pool rows, {result.test_rows} test)")
