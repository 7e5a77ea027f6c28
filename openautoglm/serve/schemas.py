"""Request and response bodies of the API (pydantic v2; they make the OpenAPI schema)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

#: Hard schema bounds: every string and list of a request is bounded here. The configured caps
#: (OPENAUTOGLM_SERVE_MAX_*: text length, batch items, labels, characters per request) are checked in the routes,
#: before any model call, and may be lower.
SCHEMA_MAX_TEXT = 100_000
SCHEMA_MAX_ITEMS = 10_000
SCHEMA_MAX_LABEL = 200
SCHEMA_MAX_LABELS = 1000

Text = Field(min_length=1, max_length=SCHEMA_MAX_TEXT, description="the text (cleaned by the caller)")
#: One item of a batch: a non-empty text.
BatchText = Annotated[str, Field(min_length=1, max_length=SCHEMA_MAX_TEXT)]
Label = Annotated[str, Field(min_length=1, max_length=SCHEMA_MAX_LABEL)]


class FewShot(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=SCHEMA_MAX_TEXT)
    label: Label


class _ClassifyOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[Label] | None = Field(
        default=None,
        min_length=2,
        max_length=SCHEMA_MAX_LABELS,
        description="label set (default: the server's, 正面/负面/中性)",
        examples=[["正面", "负面", "中性"]],
    )
    prompt_template: str | None = Field(
        default=None,
        max_length=4000,
        description="instruction with {text} once (GLM models; embedding models embed every text inside it)",
        examples=["判断以下用户反馈的情感倾向:{text}"],
    )
    verbalizers: dict[Label, Annotated[str, Field(min_length=1, max_length=1000)]] | None = Field(
        default=None, max_length=SCHEMA_MAX_LABELS, description="label -> text an embedding model compares"
    )
    few_shot: list[FewShot] | None = Field(default=None, max_length=64)


class ClassifyRequest(_ClassifyOptions):
    text: str = Text


class ClassifyBatchRequest(_ClassifyOptions):
    texts: list[BatchText] = Field(min_length=1, max_length=SCHEMA_MAX_ITEMS)


class _NerOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entity_types: list[Annotated[str, Field(min_length=1, max_length=50)]] | None = Field(
        default=None, min_length=1, max_length=32, examples=[["PER", "LOC", "ORG"]]
    )


class NerRequest(_NerOptions):
    text: str = Text


class NerBatchRequest(_NerOptions):
    texts: list[BatchText] = Field(min_length=1, max_length=SCHEMA_MAX_ITEMS)


class _MatchOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    threshold: float | None = Field(default=None, ge=0.0, le=1.0, description="similarity at which a pair matches")
    labels: list[Label] | None = Field(default=None, min_length=2, max_length=2, description="(no-match, match) labels")


class Pair(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Text
    text_pair: str = Text


class MatchRequest(_MatchOptions):
    text: str = Text
    text_pair: str = Text


class MatchBatchRequest(_MatchOptions):
    pairs: list[Pair] = Field(min_length=1, max_length=SCHEMA_MAX_ITEMS)


class RowStatus(BaseModel):
    status: str = Field(description="ok, unparsed (the model broke the format twice) or error")
    reason: str = ""
    answered_by: str | None = Field(
        default=None,
        description="which part of the model answered, where it says (local-online: zero-shot or online-student)",
    )
    model_version: str | None = Field(
        default=None,
        description="the registered version that answered (mlflow: models; it changes when the alias moves)",
    )


class Classification(RowStatus):
    label: str | None
    score: float | None = Field(description="confidence of the label")


class EntityOut(BaseModel):
    text: str
    type: str
    start: int
    end: int


class NerResult(RowStatus):
    entities: list[EntityOut]


class MatchResult(RowStatus):
    label: str | None
    score: float | None = Field(description="similarity on [0, 1]")


class ClassifyData(Classification):
    model: str


class ClassifyBatchData(BaseModel):
    model: str
    results: list[Classification]


class NerData(NerResult):
    model: str


class NerBatchData(BaseModel):
    model: str
    results: list[NerResult]


class MatchData(MatchResult):
    model: str


class MatchBatchData(BaseModel):
    model: str
    results: list[MatchResult]


class JobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    deployment: str = Field(
        min_length=3, max_length=300, pattern=r"^[^/]+/[^/]+$", examples=["run_task/nightly-classification"]
    )
    parameters: dict[str, Any] = Field(default_factory=dict, description="overrides of the deployment's parameters")


class Artifact(BaseModel):
    key: str | None
    type: str | None
    description: str | None
    data: Any = None


class Job(BaseModel):
    id: str
    name: str | None
    deployment: str | None
    deployment_id: str | None
    state: str | None = Field(description="SCHEDULED, PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, CRASHED...")
    state_name: str | None
    message: str | None
    created: str | None
    start_time: str | None
    end_time: str | None
    parameters: dict[str, Any]
    results: list[Artifact]


class StagePort(BaseModel):
    name: str
    type: str = Field(description="Dataset, Predictions, Metrics, Report, Prompt, Graph, Model or Files")
    description: str
    required: bool


class StageInfo(BaseModel):
    name: str
    description: str
    inputs: list[StagePort]
    outputs: list[StagePort]
    params_schema: dict[str, Any] = Field(description="JSON Schema of the stage's parameters")


class StageList(BaseModel):
    stages: list[StageInfo]


class JobList(BaseModel):
    jobs: list[Job]


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    models: dict[str, str]
    model_versions: dict[str, str | None] = Field(
        default_factory=dict, description="per task, the registered version served now (mlflow: models)"
    )
    waiting: dict[str, str] = Field(
        default_factory=dict,
        description="per task served through an alias that names no version yet, why; it answers 503 until the "
        "alias watcher loads the version a train round registers",
    )
    models_loaded: bool
    load_error: str | None = None
    rate_limit_store: str
    prefect: str | None = None


class Circuit(BaseModel):
    name: str
    state: str
    failures: int
    open_for_s: float | None
