"""``TaskPipeline``: the seed's face for NLP tasks.

Example (the seed's quick start)::

    dataset = DataLoader.from_csv("examples/user_feedback.csv").load(columns=["text"])
    pipeline = TaskPipeline(task_type="text_classification", model="glm-4")
    pipeline.configure(prompt_template="判断以下用户反馈的情感倾向:{text}", labels=["正面", "负面", "中性"])
    results = pipeline.run(dataset)

Runs in this process (batched, through the call cache). For scheduled, parallel, tracked runs use the
``run_task`` flow (CLI: ``openautoglm run``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel, SecretStr

from openautoglm.adapters.cache import CacheMode, CallCache
from openautoglm.adapters.models import ModelSpec, default_batch_size
from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.models.crf import CrfNer
from openautoglm.adapters.models.learned import LearnedClassifier, LearnedModel, fit_classifier
from openautoglm.adapters.models.run import check_supported, default_cache, predict_rows
from openautoglm.adapters.prediction import in_threads, plan_batches, predict
from openautoglm.adapters.progress import progress_bar
from openautoglm.core.data.schema import ROW_ID, Dataset
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.results import evaluate
from openautoglm.core.nlp.tagging import labelled_sentences
from openautoglm.core.nlp.task_types import TASK_TYPES, task_kind
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig, TaskType, examples_from
from openautoglm.settings import get_settings

if TYPE_CHECKING:
    from openautoglm.adapters.distill import DistillResult

log = logging.getLogger(__name__)


@dataclass
class TaskResults:
    """Predictions joined to their input rows, the run's counts, and metrics when gold answers were given.

    Attributes:
        frame: Input columns + ``prediction``, ``score``, ``status``, ``reason``, ``raw``, ``backend``, ``model``,
            ``latency_ms``, ``calls``, ``tokens``.
        stats: Model calls, cache hits, tokens, retries and errors by code.
        metrics: From :meth:`TaskPipeline.evaluate` (empty after ``run``).
    """

    frame: pd.DataFrame
    stats: BatchStats
    results: list[RowResult] = field(repr=False)
    metrics: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def predictions(self) -> list[Any]:
        """The predictions in row order (``None`` where a row has no usable answer)."""
        return [r.prediction for r in self.results]

    def to_pandas(self) -> pd.DataFrame:
        return self.frame.copy()

    def __repr__(self) -> str:
        status = self.frame["status"].value_counts().to_dict() if len(self.frame) else {}
        head = {k: v for k, v in self.metrics.items() if isinstance(v, int | float)}
        return f"TaskResults(rows={len(self.frame)}, status={status}, calls={self.stats.calls}, metrics={head})"


def _default(model: type[BaseModel], name: str) -> Any:
    """The default of the field ``name`` of ``model``: the SDK face declares none of its own."""
    return model.model_fields[name].get_default(call_default_factory=True)


class TaskPipeline:
    """A task on a model. ``configure`` it, then ``run`` or ``evaluate`` a dataset.

    The defaults are the ``infer`` stage's (:class:`~openautoglm.stages.nlp.InferParams`, which the ``run_task``
    flow's parameters extend) and :class:`TaskConfig`'s, read from those models: declared once.

    Args:
        task_type: ``text_classification``, ``ner`` or ``semantic_matching`` (default: ``TaskConfig.task_type``).
        model: ``glm-4`` (any ``glm-*``; needs a Zhipu key), ``local-auto``, ``local-use``, ``local-e5``,
            ``local-lac`` or ``local:/folder`` (default: ``InferParams.model``).
        batch_size: Rows per backend call batch; default 1024 for the embedded local models (their transductive
            steps, such as ``local-auto``'s student, read a whole batch), 64 for API and chat models.
        cache: ``use`` (reuse earlier answers), ``refresh`` (call again, store) or ``off`` (default:
            ``InferParams.cache``).
        credentials: Name of a ``ZhipuAICredentials`` block (default: ``ZHIPUAI_API_KEY``).
        **model_options: ``base_url``, ``timeout_s``, ``max_concurrency``, ``max_retries``, ``temperature``.
    """

    def __init__(
        self,
        task_type: TaskType | None = None,
        model: str | None = None,
        *,
        batch_size: int | None = None,
        cache: CacheMode | None = None,
        credentials: str | None = None,
        **model_options: Any,
    ) -> None:
        from openautoglm.stages.nlp import InferParams

        self.task_type = TASK_TYPES.canonical(task_type or _default(TaskConfig, "task_type"))
        self.spec = ModelSpec(model=model or _default(InferParams, "model").model, **model_options)
        self.spec.backend  # noqa: B018  (an unknown model fails here, not at run time)
        self._batch_size = batch_size
        self.cache_mode: CacheMode = cache or _default(InferParams, "cache")
        self.credentials = credentials
        self._config: TaskConfig | None = None
        self._api_key: SecretStr | None = None
        self._learned: LearnedModel | None = None

    @property
    def batch_size(self) -> int:
        """Rows per backend call batch (see the ``batch_size`` argument)."""
        if self._batch_size is not None:
            return self._batch_size
        return default_batch_size(self.spec)

    def configure(
        self,
        prompt_template: str | None = None,
        labels: Sequence[str] | None = None,
        few_shot: Iterable[Any] | None = None,
        *,
        verbalizers: Mapping[str, str] | None = None,
        entity_types: Sequence[str] | None = None,
        threshold: float | None = None,
        prompt: Any = None,
    ) -> TaskPipeline:
        """Set the prompt template, label set and few-shot examples (``(text, label)`` pairs or dicts).

        ``prompt`` takes an optimised prompt (anything with a ``task_config(task_type)`` method) or a reference to
        one: the path of an ``optimised_prompt.json``, an MLflow run id, or a registered prompt
        (``prompts:/<name>/<version>`` or ``prompts:/<name>@<alias>``), read by :meth:`OptimisedPrompt.load`.
        """
        if isinstance(prompt, str | Path):
            from openautoglm.adapters.prompt_search import OptimisedPrompt

            prompt = OptimisedPrompt.load(prompt)
        if prompt is not None:
            self._config = prompt.task_config(self.task_type)
            return self
        options: dict[str, Any] = {
            "task_type": self.task_type,
            "prompt_template": prompt_template,
            "labels": tuple(labels) if labels is not None else None,
            "few_shot": examples_from(few_shot),
        }
        if verbalizers:
            options["verbalizers"] = tuple(verbalizers.items())
        if entity_types:
            options["entity_types"] = tuple(entity_types)
        if threshold is not None:
            options["threshold"] = threshold
        self._config = TaskConfig(**options)
        if self._learned is None:  # a fitted pipeline predicts with its learned model, whatever the backend does
            check_supported(self.spec, self._config)
        return self

    @property
    def config(self) -> TaskConfig:
        """The task configuration (the task's defaults when ``configure`` was not called)."""
        if self._config is None:
            if task_kind(self.task_type).closed_labels:
                raise ConfigurationError("Call configure(labels=[...]) before running a classification.")
            self._config = TaskConfig(task_type=self.task_type)
        return self._config

    def api_key(self) -> SecretStr | None:
        """The API key this pipeline's model is called with (None for a local model), resolved on first use from
        ``credentials`` or the environment; without one, the fallback model (OPENAUTOGLM_FALLBACK_MODEL) replaces
        ``spec``, else a :class:`ConfigurationError` says how to give one."""
        self._resolve_key()
        return self._api_key

    def _resolve_key(self) -> None:
        if not self.spec.remote or self._api_key is not None:
            return
        from openautoglm.blocks.credentials import resolve_zhipu_key

        self._api_key = resolve_zhipu_key(self.credentials)
        if self._api_key is not None:
            return
        fallback = get_settings().fallback_model
        if fallback:
            log.warning(
                "No Zhipu API key: using %s instead of %s (OPENAUTOGLM_FALLBACK_MODEL)", fallback, self.spec.model
            )
            print(
                f"note: no Zhipu API key is set, so this runs on the offline model '{fallback}' instead of "
                f"'{self.spec.model}' (OPENAUTOGLM_FALLBACK_MODEL)"
            )
            self.spec = ModelSpec(model=fallback)
            check_supported(self.spec, self.config)
            return
        offline = task_kind(self.task_type).offline_model
        raise ConfigurationError(
            f"No Zhipu API key for model '{self.spec.model}'.",
            hint=f"export ZHIPUAI_API_KEY=<id>.<secret> (or pass credentials='<ZhipuAICredentials block>'); to run "
            f"offline use model='{offline}', or set OPENAUTOGLM_FALLBACK_MODEL={offline}",
        )

    def _frame(
        self, data: Dataset | pd.DataFrame | Sequence[Any], text_column: str, text_pair_column: str | None
    ) -> pd.DataFrame:
        if isinstance(data, Dataset):
            return data.frame
        if isinstance(data, pd.DataFrame):
            return data if ROW_ID in data.columns else data.reset_index(drop=True).rename_axis(ROW_ID).reset_index()
        items = list(data)
        if items and isinstance(items[0], tuple | list):
            pair = text_pair_column or "text_pair"
            return pd.DataFrame(
                {ROW_ID: range(len(items)), text_column: [a for a, _ in items], pair: [b for _, b in items]}
            )
        return pd.DataFrame({ROW_ID: range(len(items)), text_column: items})

    def run(
        self,
        data: Dataset | pd.DataFrame | Sequence[Any],
        *,
        text_column: str = "text",
        text_pair_column: str | None = None,
        progress: bool | None = None,
    ) -> TaskResults:
        """Predict every row. ``data``: a Dataset, a DataFrame, a list of texts, or a list of (a, b) pairs."""
        config = self.config
        if config.kind.needs_pair and text_pair_column is None:
            text_pair_column = "text_pair"
        self._resolve_key()
        frame = self._frame(data, text_column, text_pair_column)
        work = plan_batches(frame, text_column, text_pair_column, self.batch_size)
        cache = default_cache(self.cache_mode)
        rows = sum(len(batch) for batch in work)
        with progress_bar(f"{config.task_type} with {self.spec.model}", rows, progress) as update:
            predicted = predict(
                work, in_threads(lambda batch: self._predict_batch(config, batch, cache)), progress=update
            )
        return TaskResults(frame=predicted.joined(frame, self.spec), stats=predicted.stats, results=predicted.results)

    def _predict_batch(
        self, config: TaskConfig, batch: list[Row], cache: CallCache
    ) -> tuple[list[RowResult], BatchStats]:
        if self._learned is not None:
            return self._learned.predict(config, batch, cache)
        return predict_rows(self.spec, config, batch, api_key=self._api_key, cache=cache)

    def fit(
        self,
        labelled: Dataset | pd.DataFrame | Sequence[tuple[str, Any]],
        unlabelled: Dataset | pd.DataFrame | Sequence[str] | None = None,
        *,
        text_column: str = "text",
        label_column: str = "label",
        C: float | None = None,
        crf: CrfNer | None = None,
    ) -> TaskPipeline:
        """Learn the task from labelled rows: text classification, or NER.

        **NER** (``task_type="ner"``): a CRF over character n-grams, character types and LAC's word tags, trained on
        ``(sentence, entities)`` pairs, entities as ``evaluate`` takes them (``[{"text", "type", "start"?,
        "end"?}]``, a list or its JSON), or on a DataFrame with ``text_column`` and a JSON ``label_column``.
        ``crf`` sets its hyper-parameters (``CrfNer(c1=..., c2=..., max_iterations=...)``); ``save(folder)``
        writes it as a model folder that ``model="local:<folder>"`` loads. The entity types are configured from
        the sentences unless ``configure`` was called.

        **Classification**: learns from labelled rows (few are enough), using the unlabelled ones too.

        One class-balanced logistic head per view, multiplied: char 1-3-gram TF-IDF (vocabulary and IDF from the
        labelled and unlabelled rows) and the offline encoders' embeddings (e5 and USE for ``local-auto``, e5 for
        ``local-e5``, USE for ``local-use``; TF-IDF alone for API and chat models); which views enter is chosen
        by cross-validation on the labelled rows. Afterwards ``run`` and ``evaluate`` use the learned heads
        instead of the model's zero-shot answers, and ``save(folder)`` writes them as a model folder that
        ``model="local:<folder>"`` loads.

        Args:
            labelled: Rows with ``text_column`` and ``label_column``, or ``(text, label)`` pairs (NER: ``(text,
                entities)`` pairs).
            unlabelled: More rows of the same kind without labels (a Dataset, DataFrame or list of texts);
                classification only.
            text_column, label_column: Column names.
            C: Inverse regularisation of each classification head (default: 4 or 10, chosen by cross-validation).
            crf: The NER learner's settings (default ``CrfNer()``).

        Returns:
            ``self``, fitted (and configured with the labels or entity types seen, unless configured).
        """
        if self.task_type == "ner":
            return self._fit_ner(labelled, unlabelled, text_column, label_column, crf)
        if self.task_type != "text_classification":
            raise ConfigurationError(f"fit() learns text_classification and ner, not {self.task_type}.")
        if isinstance(labelled, Dataset | pd.DataFrame):
            frame = self._frame(labelled, text_column, None)
            for column in (text_column, label_column):
                if column not in frame.columns:
                    raise ConfigurationError(
                        f"No column '{column}' in the labelled rows.", hint=f"columns are {list(frame.columns)}"
                    )
            pairs = list(zip(frame[text_column].astype(str), frame[label_column].astype(str), strict=True))
        else:
            pairs = [(str(t), str(label)) for t, label in labelled]
        if self._config is None or self._config.labels is None:
            self.configure(labels=sorted({label for _, label in pairs}))
        unknown = sorted({label for _, label in pairs} - set(self.config.labels or ()))
        if unknown:
            raise ConfigurationError(f"Labelled rows use labels {unknown} that are not configured.")
        extra: list[str] = []
        if unlabelled is not None:
            if isinstance(unlabelled, Dataset | pd.DataFrame):
                extra = self._frame(unlabelled, text_column, None)[text_column].astype(str).tolist()
            else:
                extra = [str(t) for t in unlabelled]
        self._resolve_key()
        head, _ = fit_classifier(
            self.spec, [t for t, _ in pairs], [label for _, label in pairs], extra, default_cache(self.cache_mode), C=C
        )
        self._learned = LearnedClassifier(self.spec, head)
        return self

    def _fit_ner(
        self,
        labelled: Dataset | pd.DataFrame | Sequence[tuple[str, Any]],
        unlabelled: object,
        text_column: str,
        label_column: str,
        crf: CrfNer | None,
    ) -> TaskPipeline:
        if unlabelled is not None:
            raise ConfigurationError("fit() for ner learns from labelled sentences only.", hint="leave out unlabelled=")
        if isinstance(labelled, Dataset | pd.DataFrame):
            frame = self._frame(labelled, text_column, None)
            for column in (text_column, label_column):
                if column not in frame.columns:
                    raise ConfigurationError(
                        f"No column '{column}' in the labelled sentences.",
                        hint=f"columns are {[c for c in frame.columns if c != ROW_ID]}; the entities column holds "
                        'JSON like [{"text": "北京", "type": "LOC"}]',
                    )
            items: list[tuple[Any, Any]] = list(zip(frame[text_column], frame[label_column], strict=True))
        else:
            items = []
            for i, item in enumerate(labelled):
                if not isinstance(item, tuple | list) or len(item) != 2:
                    raise ConfigurationError(
                        f"sentence {i}: expected a (text, entities) pair, got {type(item).__name__}.",
                        hint='give [(text, [{"text": "北京", "type": "LOC"}, ...]), ...] or a DataFrame',
                    )
                items.append((item[0], item[1]))
        sentences = labelled_sentences(items)
        model = crf if crf is not None else CrfNer()
        self._learned = model.fit(sentences, default_cache(self.cache_mode))
        if self._config is None:
            self._config = TaskConfig(task_type="ner", entity_types=model.entity_types)
        return self

    def save(self, folder: str | Path) -> Path:
        """Write the fitted model as a folder that ``TaskPipeline(task_type, model="local:<folder>")`` loads.

        Classification: the fitted heads (skops format, no pickle) and a manifest naming the labels, the views and
        the encoder model whose embeddings they read (none when TF-IDF alone was chosen). NER: the CRF.

        Raises:
            ConfigurationError: Nothing was fitted.
        """
        if self._learned is None:
            raise ConfigurationError("Nothing to save: this pipeline has not been fitted.", hint="call fit() first")
        return self._learned.save(folder)

    def evaluate(
        self,
        data: Dataset | pd.DataFrame,
        *,
        label_column: str = "label",
        text_column: str = "text",
        text_pair_column: str | None = None,
        progress: bool | None = None,
    ) -> TaskResults:
        """Run and score against ``label_column`` (label, JSON entities, or a similarity score)."""
        results = self.run(data, text_column=text_column, text_pair_column=text_pair_column, progress=progress)
        frame = self._frame(data, text_column, text_pair_column)
        if label_column not in frame.columns:
            raise ConfigurationError(
                f"No gold column '{label_column}' in the data.",
                hint=f"columns are {[c for c in frame.columns if c != ROW_ID]}",
            )
        results.metrics = evaluate(
            self.config, frame, results.results, text_column=text_column, gold_column=label_column
        )
        return results

    def distill(
        self,
        unlabelled: Dataset | pd.DataFrame | Sequence[str],
        *,
        text_column: str = "text",
        label_column: str | None = None,
        output_dir: str | Path | None = None,
        experiment: str = "distill",
        **options: Any,
    ) -> DistillResult:
        """Distil this pipeline (the teacher) into a small student registered in the MLflow Model Registry.

        The teacher (this pipeline's model, or its fitted head after ``fit``) labels the unlabelled rows in a
        seeded order, through the call cache, with at most ``budget`` teacher calls (a GLM teacher: every chat
        request counts, a repair round too, cached ones included so a rerun labels the same rows; a local teacher:
        one per row). The student (``tfidf-linear``: hashed char 1-3-gram TF-IDF + logistic regression; for NER
        ``crf-ner``: the CRF over characters and LAC's tags) learns the teacher's answers on all but a seeded
        ``holdout`` share of them; the held-out rows measure its agreement with the teacher (NER: entity F1) and,
        where ``label_column`` has gold labels (NER: entity JSON), the accuracy (F1) of both. The student is logged
        to MLflow (experiment ``experiment``) and registered as a new version of ``name``; load it with
        ``TaskPipeline("text_classification", model=result.model)`` (``mlflow:/<name>/<version>``), or from
        ``output_dir/student`` with ``model="local:<folder>"``. The work is
        :func:`openautoglm.usecases.distill.distil`, as in the ``distill`` flow.

        Args:
            unlabelled: Rows to label (a Dataset, a DataFrame with ``text_column``, or a list of texts).
            text_column: The text column.
            label_column: A gold label column, if any (never shown to the teacher or the student).
            output_dir: Also write the student to ``output_dir/student``.
            experiment: MLflow experiment of the run.
            **options: The fields of :class:`~openautoglm.core.nlp.distill.DistillOptions`: ``name`` (required;
                letters, digits, ``_ . -``), ``student`` (default: ``tfidf-linear``, ``crf-ner`` for NER),
                ``budget`` (teacher calls; default one per row), ``holdout`` (0.2), ``seed`` (0), ``alias``.

        Returns:
            The registered name and version, the model string, the metrics and the MLflow run.
        """
        from openautoglm.adapters.distill import DistillResult, teach, teacher_call_cost
        from openautoglm.adapters.tracking import log_params, tracked_run
        from openautoglm.usecases.distill import distil, distill_options

        chosen = distill_options(self.task_type, **options)
        config = self.config
        frame = self._frame(unlabelled, text_column, None)
        api_key = self.api_key()
        cache = default_cache(self.cache_mode)
        cost = 1 if self._learned is not None else teacher_call_cost(self.spec, api_key)
        teacher = f"{self.spec.model} (fitted)" if self._learned is not None else self.spec.model

        def teach_rows(rows: tuple[Row, ...]) -> Any:
            return teach(
                rows,
                lambda batch: self._predict_batch(config, batch, cache),
                budget=chosen.budget,
                seed=chosen.seed,
                batch_size=self.batch_size,
                calls_per_row=cost,
            )

        tags = {"openautoglm.flow": "distill", "openautoglm.model": teacher, "openautoglm.face": "sdk"}
        with tracked_run(experiment, run_name=f"distill-{chosen.name}", tags=tags) as run:
            log_params(
                {
                    "teacher": teacher,
                    "teacher_backend": self.spec.backend,
                    "task_type": self.task_type,
                    "labels": config.labels,
                    "prompt_template": config.template,
                    **chosen.model_dump(),
                    "cache": self.cache_mode,
                    "label_column": label_column,
                }
            )
            done = distil(
                frame,
                task=config,
                options=chosen,
                teach=teach_rows,
                teacher=teacher,
                text_column=text_column,
                label_column=label_column,
                cache_mode=self.cache_mode,
                folder=Path(output_dir) if output_dir else None,
            )
        registered = done.registered
        log.info("distilled %s into %s (%s)", teacher, registered.model, done.metrics)
        return DistillResult(
            name=registered.name,
            version=registered.version,
            model=registered.model,
            model_uri=registered.model_uri,
            folder=done.folder,
            metrics=done.metrics,
            labels=done.labels,
            mlflow_run_id=run.run_id,
            mlflow_run_url=run.url,
        )
