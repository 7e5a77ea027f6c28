"""Defaults for the libraries this package drives, set before they are imported.

Only ``setdefault``: a value the user exported always wins.
"""

from __future__ import annotations

import os

DEFAULTS = {
    # A fresh PREFECT_HOME can need more than the default 20 s to start the ephemeral server on a small machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "False",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    # Loading a registered model downloads its files with a tqdm bar per call: noise in flow and API logs.
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # Dask's scheduler and nannies log every worker start at INFO; flows report what matters themselves.
    "DASK_LOGGING__DISTRIBUTED": "warning",
}


def apply_defaults() -> None:
    """Set the defaults above where the environment does not already say otherwise."""
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)
