"""Serving settings from the environment (prefix ``OPENAUTOGLM_SERVE_``) or a ``.env`` file.

Secrets (JWT keys, the Zhipu key) come only from the environment or files named by it; they are never logged,
never part of a response, and never in ``repr`` (``SecretStr``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from openautoglm.adapters.cache import CacheMode


class SqlConnectionSetting(BaseModel):
    """A database jobs may use by name: a URL without a password and the variable holding the password."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(min_length=1)
    password_env: str | None = None


class ServeSettings(BaseSettings):
    """Everything the REST API reads at start-up.

    Attributes:
        classify_model, ner_model, match_model: The model behind each task (``local-auto``, ``local-use``,
            ``local-lac``, ``glm-4-flash``...). One backend instance per model and process. Classification defaults
            to ``local-online``: ``local-auto``'s zero-shot teacher (calibrated e5 label prototypes, ~26 ms a text on
            one core) answers a label set's first 200 rows, then a student it teaches online answers the rest
            (~2 ms a row) with the teacher on a 3% sample (see :mod:`openautoglm.adapters.models.online`);
            ``local-auto`` answers every row with the teacher; ``local-use`` is fast and much weaker (22 of 60).
        default_labels: Labels of ``/classify`` when a request gives none.
        preload: Load the models at start-up (``/readyz`` is 503 until they are loaded).
        cache: The call cache mode (``use``, ``refresh``, ``off``).
        micro_batching: Gather concurrent requests into one model call.
        batch_max_rows: Rows per model call at most (a batch request larger than this goes alone).
        batch_max_wait_ms: How long the first request of a micro-batch waits for company.
        batch_max_cost_s: Estimated seconds of model time per micro-batch at most (a costlier request goes alone).
        max_request_cost_s: Estimated seconds of model time one request may cost (422 above, with the estimate):
            characters after the encoder's cut x the model's seconds per character, timed at start-up.
        model_lanes: Copies of a built-in local model serving calls at once; one subject (token ``sub``) holds at
            most all but one of them, so another subject's request never waits behind its long call.
        max_body_bytes: Request bodies above this are refused with 413 before they are read in full.
        max_json_depth: Arrays and objects nested deeper than this in a JSON body are refused with 400 before the
            body is parsed (so no parser, validator or job ever recurses that deep).
        max_batch_items: Items in one batch request at most (413).
        max_text_chars: Characters in one text at most (422).
        jwt_keys: JSON object ``{kid: {"alg": "RS256", "key": "<PEM public key>"}}``; HS256 keys as
            ``{"alg": "HS256", "key": "<secret>"}``. Several kids = key rotation.
        jwt_keys_dir: A folder of key files: ``<kid>.<alg>.pem`` (public keys) or ``<kid>.HS256.secret``.
        jwt_algorithms: The only algorithms accepted, whatever a token's header says.
        jwt_audience, jwt_issuer: Required ``aud`` and ``iss``.
        jwt_leeway_s: Clock skew allowed on ``exp``/``nbf``/``iat``.
        jwt_max_lifetime_s: The longest lifetime (``exp - iat``) a token may claim; longer ones are refused with 401
            (a leaked token must not stay good for years); ``python -m openautoglm.serve.tokens`` mints none longer.
        rate_limit: Per subject, in the ``limits`` notation (``120/minute``; several with ``;``).
        rate_limit_storage: ``memory://`` (one process) or ``redis://host:6379/0`` (shared by every process).
        rate_limit_namespace: Prefix of the rate-limit and circuit keys in Redis (separate APIs sharing one Redis).
        breaker_fail_max: Consecutive failed upstream batches that open the circuit.
        breaker_reset_s: Seconds the circuit stays open before one trial call.
        breaker_storage: ``memory`` (per process) or a Redis URL (the circuit is shared by every process).
        glm_base_url: Zhipu endpoint override; glm_timeout_s, glm_max_retries: per call.
        zhipu_api_key: The Zhipu key (else ``ZHIPUAI_API_KEY``, else the ``ZhipuAICredentials`` block ``zhipu_block``).
        cors_origins: Origins allowed by CORS; empty (the default) sends no CORS headers at all.
        jobs_deployments: Deployments ``flow/deployment`` that ``/api/v1/jobs`` may trigger (empty: any).
        data_roots: Folders whose files jobs may name (resolved, symlinks followed); empty: jobs name no files
            of their own and use the deployment's. Relative paths in job parameters start at the first root.
        sql_connections: JSON object ``{name: {"url": "postgresql+psycopg://user@host/db", "password_env":
            "VAR"}}``: the only databases jobs may read or write, named by ``connection`` / ``output_connection``.
        max_request_chars: Characters in all strings of one request together at most (422).
        metrics_public: Serve ``/metrics`` without a token (scrapers inside the cluster); else admin only.
        workflows_url: SQLAlchemy URL of the saved workflows (default: ``sqlite:///<home>/workflows.db``;
            ``postgresql+psycopg://user@host/db`` in production).
        workflow_deployment: The ``pipeline`` flow's deployment that ``POST /api/v1/workflows/{name}/runs`` runs.
        workflow_executor: ``worker``: a workflow run waits for a worker of the deployment's pool (a new flow
            process per run); ``warm``: the API starts one long-lived process that runs them at once, models
            loaded (:mod:`openautoglm.serve.warm`; still a flow run of that deployment, a task run per node).
        alias_poll_s: Seconds between two looks at the registry for a model served through an alias
            (``mlflow:/name@alias``): when the alias has moved, the new version is loaded off the request path and
            swapped in (:mod:`openautoglm.serve.swap`); ``0`` turns watching off (the version loaded at start stays).
    """

    model_config = SettingsConfigDict(env_prefix="OPENAUTOGLM_SERVE_", env_file=".env", extra="ignore")

    classify_model: str = "local-online"
    ner_model: str = "local-lac"
    match_model: str = "local-use"
    default_labels: tuple[str, ...] = ("正面", "负面", "中性")
    preload: bool = True
    cache: CacheMode = "use"

    micro_batching: bool = True
    batch_max_rows: int = Field(default=64, ge=1, le=4096)
    batch_max_wait_ms: float = Field(default=5.0, ge=0.0, le=1000.0)
    batch_timeout_s: float = Field(default=30.0, gt=0)
    batch_max_cost_s: float = Field(default=1.0, gt=0)
    max_request_cost_s: float = Field(default=10.0, gt=0)
    model_lanes: int = Field(default=2, ge=1, le=16)

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_json_depth: int = Field(default=64, ge=8, le=512)
    max_batch_items: int = Field(default=256, ge=1)
    max_text_chars: int = Field(default=4096, ge=1)
    max_labels: int = Field(default=64, ge=2)

    jwt_keys: SecretStr | None = None
    jwt_keys_dir: str | None = None
    jwt_algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    jwt_audience: str = "openautoglm-api"
    jwt_issuer: str = "openautoglm"
    jwt_leeway_s: int = Field(default=10, ge=0, le=300)
    jwt_max_lifetime_s: int = Field(default=86_400, ge=60, le=31_536_000)

    rate_limit: str = "600/minute"
    rate_limit_storage: str = "memory://"
    rate_limit_namespace: str = "openautoglm"

    breaker_fail_max: int = Field(default=5, ge=1)
    breaker_reset_s: float = Field(default=30.0, gt=0)
    breaker_storage: str = "memory"

    glm_base_url: str | None = None
    glm_timeout_s: float = Field(default=10.0, gt=0)
    glm_max_retries: int = Field(default=1, ge=0, le=10)
    glm_max_concurrency: int = Field(default=5, ge=1, le=256)
    zhipu_api_key: SecretStr | None = None
    zhipu_block: str | None = None

    cors_origins: tuple[str, ...] = ()
    jobs_deployments: tuple[str, ...] = ()
    data_roots: tuple[Path, ...] = ()
    sql_connections: dict[str, SqlConnectionSetting] = Field(default_factory=dict)
    max_request_chars: int = Field(default=200_000, ge=1)
    metrics_public: bool = True
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    workflows_url: str | None = None
    workflow_deployment: str = Field(default="pipeline/pipeline-example", pattern=r"^[^/]+/[^/]+$")
    workflow_executor: Literal["worker", "warm"] = "worker"
    alias_poll_s: float = Field(default=10.0, ge=0.0, le=3600.0)

    @property
    def workflows_store_url(self) -> str:
        """:attr:`workflows_url`, or a SQLite file under the OpenAutoGLM home."""
        from openautoglm.settings import get_settings

        return self.workflows_url or f"sqlite:///{get_settings().home.expanduser().resolve() / 'workflows.db'}"
