"""The API settings the canvas's server-side tests share (issue 33): fake NLP models, no preload, the signer's keys,
a workflow store in the test's folder, the starters' data root."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from openautoglm.serve.settings import ServeSettings
from openautoglm.serve.testing import Signer, keys_json
from tests.conftest import EXAMPLES


def canvas_settings(tmp_path: Path, signer: Signer, **extra: Any) -> ServeSettings:
    """Settings of an API for canvas tests; ``extra`` overrides any of them."""
    options: dict[str, Any] = {
        "classify_model": "serve-fake",
        "ner_model": "serve-fake",
        "match_model": "serve-fake",
        "preload": False,
        "jwt_keys": keys_json(signer),
        "rate_limit": "10000/minute",
        "workflows_url": f"sqlite:///{tmp_path / 'workflows.db'}",
        "data_roots": (EXAMPLES,),
    }
    return ServeSettings(**{**options, **extra})
