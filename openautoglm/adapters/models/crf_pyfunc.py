"""The ``crf-ner`` student as an MLflow pyfunc, for MLflow's own tools (``mlflow.pyfunc.load_model``, ``mlflow
models serve``): the input is a frame with a ``text`` column, the output one JSON list of entities per row.

It is logged as code (MLflow's models from code: this file is copied into the model and run when MLflow loads it),
not as a pickle. The project itself never runs it: ``openautoglm.adapters.models.student`` reads the CRF folder
among the model's artifacts (a crfsuite file and a JSON manifest).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow.models import set_model
from mlflow.pyfunc.model import PythonModel

#: The artifact key of the CRF folder inside the MLflow model.
CRF_ARTIFACT = "crf"


class CrfNerModel(PythonModel):
    """Entities for each text, from the CRF folder logged as the ``crf`` artifact."""

    def load_context(self, context: Any) -> None:
        from openautoglm.adapters.models.crf import CrfNer
        from openautoglm.adapters.models.folders import MANIFEST

        folder = Path(context.artifacts[CRF_ARTIFACT])
        self._crf = CrfNer.load(folder, json.loads((folder / MANIFEST).read_text(encoding="utf-8")))

    # No type hints on predict: MLflow would read them as a schema; the logged signature is the schema.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        from openautoglm.adapters.models.run import default_cache

        return self._crf.entities_json([str(t) for t in model_input["text"]], default_cache("use"))


set_model(CrfNerModel())
