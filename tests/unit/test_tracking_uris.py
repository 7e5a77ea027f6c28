"""MLflow exports its tracking and registry URIs as environment variables that child processes inherit: a Prefect
worker started from a process that used another store must still register where it tracks."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_a_run_registers_in_the_store_it_tracks_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mlflow

    from openautoglm.adapters.tracking import ensure_experiment
    from openautoglm.settings import get_settings

    elsewhere = f"sqlite:///{tmp_path / 'someone-elses.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", elsewhere)  # as an earlier mlflow.set_tracking_uri leaves them
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", elsewhere)
    monkeypatch.setenv("OPENAUTOGLM_HOME", str(tmp_path / "home"))
    settings = get_settings()
    ensure_experiment("uris", settings)
    assert mlflow.get_tracking_uri() == settings.tracking_uri != elsewhere
    assert mlflow.get_registry_uri() == settings.tracking_uri
