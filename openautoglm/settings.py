"""Settings from the environment (prefix ``OPENAUTOGLM_``) or a ``.env`` file in the working folder.

| variable | default | meaning |
|---|---|---|
| OPENAUTOGLM_HOME | ~/.openautoglm | outputs, caches, the default MLflow store |
| OPENAUTOGLM_MLFLOW_TRACKING_URI | sqlite:///$HOME/mlflow.db | MLflow tracking server or database |
| OPENAUTOGLM_MLFLOW_ARTIFACT_ROOT | $HOME/mlartifacts | where new experiments keep artifacts |
| OPENAUTOGLM_MLFLOW_UI_URL | http://127.0.0.1:5000 | used for links when the tracking URI is not HTTP |
| OPENAUTOGLM_DASK_ADDRESS | (none) | an existing Dask scheduler (tcp://host:8786); none = a LocalCluster |
| OPENAUTOGLM_DASK_WORKERS | min(2, CPUs) | LocalCluster worker processes |
| OPENAUTOGLM_TASK_RUNNER | dask | dask, or threads (no cluster; for quick local runs) |
| OPENAUTOGLM_DATA_ROOT | (none) | folder of the benchmark data sets |
| OPENAUTOGLM_FALLBACK_MODEL | (none) | model to use instead of a GLM model when no Zhipu key is set (SDK) |
| OPENAUTOGLM_SQL_STATEMENT_TIMEOUT_S | 300 | longest an SQL source's read or a sink's statement may run |
| OPENAUTOGLM_ANNOTATIONS_URL | sqlite:///$HOME/annotations.db | the annotation store (SQLite or PostgreSQL) |
| OPENAUTOGLM_PIPELINE_KEEP_RESULTS_S | 86400 | how long node results are kept for a re-run from a node |
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Runtime settings; read fresh by :func:`get_settings` so changed environment variables apply."""

    model_config = SettingsConfigDict(env_prefix="OPENAUTOGLM_", env_file=".env", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".openautoglm")
    mlflow_tracking_uri: str | None = None
    mlflow_artifact_root: Path | None = None
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    dask_address: str | None = None
    dask_workers: int = Field(default_factory=lambda: max(1, min(2, os.cpu_count() or 1)), ge=1)
    task_runner: Literal["dask", "threads"] = "dask"
    data_root: Path | None = None
    fallback_model: str | None = None
    pushgateway_url: str | None = None
    #: Seconds an SQL statement may run, set on every session a source or sink opens (PostgreSQL
    #: ``statement_timeout``, MariaDB ``max_statement_time``, MySQL ``max_execution_time``, SQLite a progress
    #: handler); a source's read, its rows streamed included, is held to it too.
    sql_statement_timeout_s: float = Field(default=300.0, gt=0)
    #: SQLAlchemy URL of the annotation store (projects, items, predictions, annotations); ``postgresql+psycopg://``
    #: in production, where many annotators label at once. Read through :attr:`annotations_store_url`.
    annotations_url: str | None = None
    #: Seconds a pipeline run's node results stay in Prefect's result storage for a re-run from a changed node
    #: (``PipelineParams.reuse``); older ones are removed when a pipeline run ends.
    pipeline_keep_results_s: float = Field(default=86400.0, gt=0)

    @property
    def tracking_uri(self) -> str:
        """The MLflow tracking URI (SQLite under home by default)."""
        return self.mlflow_tracking_uri or f"sqlite:///{self.home.expanduser().resolve() / 'mlflow.db'}"

    @property
    def annotations_store_url(self) -> str:
        """The annotation store's URL: :attr:`annotations_url`, or a SQLite file under home."""
        return self.annotations_url or f"sqlite:///{self.home.expanduser().resolve() / 'annotations.db'}"

    @property
    def artifact_root(self) -> Path:
        """Root folder for MLflow artifacts of experiments this package creates."""
        return (self.mlflow_artifact_root or self.home / "mlartifacts").expanduser().resolve()

    @property
    def runs_dir(self) -> Path:
        """Where flows write their outputs (one sub-folder per run)."""
        return self.home.expanduser().resolve() / "runs"


def get_settings() -> Settings:
    """Current settings (environment read at each call)."""
    return Settings()
