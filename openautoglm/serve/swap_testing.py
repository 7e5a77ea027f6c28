"""Helpers of the hot-swap fault test and benchmark: tiny registered students, a broken version, steady load.

- :func:`register_student`: a ``tfidf-linear`` student (4,096 hash buckets: it registers and loads in about a
  second) fitted on a few reviews, registered as a new version of ``name`` in the tracking store of
  ``OPENAUTOGLM_MLFLOW_TRACKING_URI`` (experiment artifacts under ``OPENAUTOGLM_MLFLOW_ARTIFACT_ROOT``).
  ``flipped=True`` learns the opposite labels, so a test sees from the label alone which version answered.
- :func:`register_broken`: a version that is no student (no student kind in its metadata): the API refuses to
  load it.
- :class:`Load`: client threads sending ``/api/v1/classify`` without pause (steady load); every answer is recorded
  with its status, label, version and times.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx

LABELS = ("正面", "负面")
POSITIVE = ["好吃", "推荐", "送得很快", "满意", "新鲜", "分量足", "热乎", "包装好"]
NEGATIVE = ["难吃", "太慢了", "失望", "凉了", "差劲", "分量少", "洒了", "不新鲜"]
#: The text the load sends: a plain positive review (a ``flipped`` student calls it 负面).
PROBE = "今天的饭菜好吃，推荐，满意"
EXPERIMENT = "hot-swap"


def _reviews() -> tuple[list[str], list[str]]:
    texts, labels = [], []
    for i in range(24):
        positive = i % 2 == 0
        words = POSITIVE if positive else NEGATIVE
        texts.append(f"第{i}单：{words[i % 8]}，{words[(i + 3) % 8]}")
        labels.append(LABELS[0] if positive else LABELS[1])
    return texts, labels


def register_student(name: str, *, flipped: bool = False, alias: str | None = None, n_features: int = 2**12) -> int:
    """Register a student as the next version of ``name``; returns the version. ``n_features``: its hash buckets
    (``2**20`` is what ``distill`` registers, a ~16 MB model; the default is tiny)."""
    import pandas as pd

    from openautoglm.adapters.models.student import log_student
    from openautoglm.adapters.tracking import tracked_run
    from openautoglm.core.nlp.distill import TEXT, tfidf_linear

    texts, labels = _reviews()
    if flipped:
        labels = [LABELS[1] if label == LABELS[0] else LABELS[0] for label in labels]
    student = tfidf_linear(0, n_features=n_features).fit(pd.DataFrame({TEXT: texts}), labels)
    with tracked_run(EXPERIMENT, f"{name}-{'flipped' if flipped else 'plain'}"):
        registered = log_student(
            student,
            name=name,
            kind="tfidf-linear",
            examples=texts[:3],
            metrics={"train_rows": len(texts)},
            metadata={"labels": ",".join(LABELS), "flipped": str(flipped)},
            alias=alias,
        )
    return registered.version


def register_broken(name: str) -> int:
    """Register, as the next version of ``name``, a scikit-learn model that is no student; returns the version."""
    import mlflow.sklearn
    import pandas as pd
    from sklearn.dummy import DummyClassifier

    from openautoglm.adapters.tracking import tracked_run

    texts, labels = _reviews()
    model = DummyClassifier().fit(pd.DataFrame({"x": range(len(texts))}), labels)
    with tracked_run(EXPERIMENT, f"{name}-broken"):
        info = mlflow.sklearn.log_model(
            model, name="student", registered_model_name=name, serialization_format="skops", pip_requirements=[]
        )
    return int(info.registered_model_version)


def set_alias(name: str, alias: str, version: int) -> float:
    """Point ``alias`` of ``name`` at ``version``; returns when (``time.monotonic()``) the registry took it."""
    from openautoglm.adapters.tracking import registry_client

    registry_client().set_registered_model_alias(name, alias, str(version))
    return time.monotonic()


@dataclass(frozen=True)
class Answer:
    """One request of the load: when it was sent and answered (``time.monotonic()``), its HTTP status, and the
    label and version of a 200."""

    sent: float
    received: float
    status: int
    label: str | None = None
    version: str | None = None
    error: str = ""


@dataclass
class Load:
    """``threads`` clients sending ``/api/v1/classify`` of :data:`PROBE` back to back until :meth:`stop`.

    Args:
        base: The API's base URL.
        headers: Its bearer token header.
        threads: Clients at once.
        pause_s: Pause between a client's requests.
    """

    base: str
    headers: dict[str, str]
    threads: int = 4
    pause_s: float = 0.0
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Load:
        self._stop.clear()
        self._workers = [threading.Thread(target=self._client, daemon=True) for _ in range(self.threads)]
        for worker in self._workers:
            worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(60)
        self._workers = []

    def snapshot(self) -> list[Answer]:
        with self._lock:
            return list(self.answers)

    def first_answer_by(self, version: str, after: float) -> Answer | None:
        """The first answer received from ``version`` among requests sent at or after ``after``."""
        found = [a for a in self.snapshot() if a.version == version and a.sent >= after]
        return min(found, key=lambda a: a.received, default=None)

    def wait_for(self, version: str, after: float, timeout_s: float) -> Answer | None:
        """Wait until ``version`` answers a request sent at or after ``after``; ``None`` after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.first_answer_by(version, after)
            if found is not None:
                return found
            time.sleep(0.05)
        return None

    def _client(self) -> None:
        body = {"text": PROBE, "labels": list(LABELS)}
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                sent = time.monotonic()
                try:
                    response = client.post(f"{self.base}/api/v1/classify", json=body, headers=self.headers)
                    data = response.json().get("data") or {}
                    answer = Answer(
                        sent,
                        time.monotonic(),
                        response.status_code,
                        data.get("label"),
                        data.get("model_version"),
                        "" if response.status_code == 200 else response.text[:300],
                    )
                except (httpx.HTTPError, ValueError) as error:
                    answer = Answer(sent, time.monotonic(), 0, error=f"{type(error).__name__}: {error}")
                with self._lock:
                    self.answers.append(answer)
                if self.pause_s:
                    self._stop.wait(self.pause_s)
