"""Swapping a model's version in the running service (no server, no registry: stand-in versions and a fake client).

Versions are stand-in backends ``swap-v1``, ``swap-v2``...: each says its version in its metadata, as a registered
student does (``registered_version``); ``swap-broken`` fails to load, ``swap-mute`` answers every row with an error,
``swap-narrow`` never learned the label 正面.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models import BACKENDS, ModelSpec, backend
from openautoglm.adapters.models.base import BatchStats, ModelBackend
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.distill import parse_registry_ref
from openautoglm.core.nlp.types import Row, RowResult, TaskConfig
from openautoglm.serve.app import create_app
from openautoglm.serve.metrics import Metrics
from openautoglm.serve.service import ModelService, Task
from openautoglm.serve.swap import AliasWatcher, watched
from tests.unit.test_serve_api import auth, make_settings

LABELS = ("正面", "负面")


class Version(ModelBackend):
    """Answers the first label; a version whose gate is set waits on it (a call in flight)."""

    tasks = frozenset({"text_classification", "ner", "semantic_matching"})
    gates: ClassVar[dict[str, threading.Event]] = {}
    entered: ClassVar[dict[str, threading.Event]] = {}

    def __init__(self, version: str, mode: str = "ok") -> None:
        super().__init__(f"swap-{version}")
        self.metadata = {"registered_version": version}
        self.mode = mode
        self.calls = 0

    def calibrate(self, config: TaskConfig, repeats: int = 3) -> None:
        self.seconds_per_char = 1e-6

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        self.calls += 1
        if self.mode == "mute":
            failed = [RowResult(row_id=r.row_id, prediction=None, status="error", reason="mute") for r in rows]
            return failed, BatchStats()
        if self.mode == "narrow" and config.labels and "正面" in config.labels:
            raise ConfigurationError("swap-narrow never learned the labels ['正面'].")
        version = str(self.metadata["registered_version"])
        if version in Version.entered:
            Version.entered[version].set()
        if version in Version.gates:
            Version.gates[version].wait(10)
        label = (config.labels or ("a",))[0]
        return [RowResult(row_id=r.row_id, prediction=label, score=1.0) for r in rows], BatchStats(calls=len(rows))


for _name, _version, _mode in (
    ("swap-v1", "1", "ok"),
    ("swap-v2", "2", "ok"),
    ("swap-v3", "3", "ok"),
    ("swap-mute", "4", "mute"),
    ("swap-narrow", "5", "narrow"),
):
    if _name not in BACKENDS:

        def _factory(spec: ModelSpec, key: SecretStr | None, v: str = _version, m: str = _mode) -> ModelBackend:
            return Version(v, m)

        backend(_name)(_factory)

if "swap-broken" not in BACKENDS:

    @backend("swap-broken")
    def _broken(spec: ModelSpec, key: SecretStr | None) -> ModelBackend:
        raise ConfigurationError("swap-broken: an MLflow model, but not a distilled student.")


@pytest.fixture(autouse=True)
def _clear_gates() -> None:
    Version.gates.clear()
    Version.entered.clear()


def service(**extra: Any) -> ModelService:
    settings = make_settings(classify_model="swap-v1", default_labels=LABELS, **extra)
    svc = ModelService(settings, Metrics())
    svc.load()
    return svc


def sample(svc: ModelService, name: str, **labels: str) -> float:
    value = svc.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_calls_in_flight_finish_on_the_old_version_and_new_calls_use_the_new_one() -> None:
    svc = service(model_lanes=2)
    config = TaskConfig(labels=LABELS)
    Version.gates["1"], Version.entered["1"] = threading.Event(), threading.Event()

    async def scenario() -> tuple[list[RowResult], list[RowResult], bool]:
        svc.start()
        try:
            old = asyncio.create_task(svc.predict("classify", config, [("慢请求", None)], subject="alice"))
            await asyncio.to_thread(Version.entered["1"].wait, 5)  # version 1 is answering it now
            await asyncio.to_thread(svc.swap, "classify", "swap-v2")
            new = await svc.predict("classify", config, [("新请求", None)], subject="bob")
            still_waiting = not old.done()  # the new version answered while the old call was still in flight
            Version.gates["1"].set()
            return await old, new, still_waiting
        finally:
            await svc.stop()

    old, new, still_waiting = asyncio.run(scenario())
    assert still_waiting
    assert old[0].extra["model_version"] == "1" and old[0].status == "ok"
    assert new[0].extra["model_version"] == "2" and new[0].status == "ok"
    loaded = svc.loaded("classify")
    assert loaded is not None and loaded.model == "swap-v1" and loaded.version == "2"  # the configured name stays
    assert svc.versions()["classify"] == "2"
    assert sample(svc, "openautoglm_model_version", task="classify") == 2
    # Every lane copy is of the new version: two of them, both version 2.
    copies = [loaded.copies.get() for _ in range(2)]
    assert [c.metadata["registered_version"] for c in copies] == ["2", "2"]


@pytest.mark.parametrize(
    ("model", "error"),
    [("swap-broken", ConfigurationError), ("swap-mute", RuntimeError), ("swap-narrow", ConfigurationError)],
)
def test_a_version_that_fails_to_load_or_answer_leaves_the_old_one_serving(model: str, error: type[Exception]) -> None:
    svc = service()

    async def serve_once() -> list[RowResult]:
        svc.start()
        try:  # the traffic: the label set 正面/负面, which swap-narrow never learned
            return await svc.predict("classify", TaskConfig(labels=LABELS), [("好吃", None)])
        finally:
            await svc.stop()

    assert asyncio.run(serve_once())[0].extra["model_version"] == "1"
    before = svc.loaded("classify")
    with pytest.raises(error):
        svc.swap("classify", model)
    assert svc.loaded("classify") is before and svc.versions()["classify"] == "1"


def test_before_any_traffic_a_label_the_new_version_never_learned_does_not_block_it() -> None:
    svc = service()
    svc.swap("classify", "swap-narrow")  # warmed under the default labels (正面/负面), which it refuses: let pass
    assert svc.versions()["classify"] == "5"


def test_models_that_are_not_registered_say_no_version() -> None:
    svc = ModelService(make_settings(), Metrics())
    svc.load()
    assert svc.versions() == {"classify": None, "ner": None, "match": None}
    assert svc.watcher is None  # nothing to watch


class FakeRegistry:
    """``get_model_version_by_alias`` over a dict; ``down`` makes every lookup fail."""

    def __init__(self, aliases: dict[tuple[str, str], str]) -> None:
        self.aliases = aliases
        self.down = False
        self.tracking_uri = "fake://registry"
        self.lookups = 0

    def get_model_version_by_alias(self, name: str, alias: str) -> Any:
        from mlflow.exceptions import MlflowException

        self.lookups += 1
        if self.down or (name, alias) not in self.aliases:
            raise MlflowException("not found")
        return SimpleNamespace(name=name, version=self.aliases[(name, alias)])


class FakeService:
    """What the watcher uses of a ModelService: specs, metrics, loaded(task), swap(task, model)."""

    def __init__(self, model: str, version: str, broken: set[str]) -> None:
        self.specs: dict[Task, ModelSpec] = {
            "classify": ModelSpec(model=model),
            "ner": ModelSpec(model="mlflow:/tagger/2"),
        }
        self.metrics = Metrics()
        self.version = version
        self.broken = broken
        self.swapped: list[str] = []

    def loaded(self, task: str) -> Any:
        return SimpleNamespace(version=self.version)

    def swap(self, task: str, model: str) -> None:
        self.swapped.append(model)
        if model in self.broken:
            raise ConfigurationError(f"{model}: not a distilled student")
        self.version = model.rsplit("/", 1)[1]


def test_the_watcher_swaps_in_the_version_an_alias_moved_to_and_retries_a_broken_one() -> None:
    registry = FakeRegistry({("reviews", "production"): "1"})
    svc = FakeService("mlflow:/reviews@production", "1", broken={"mlflow:/reviews/3"})
    assert watched(svc.specs) == {"classify": parse_registry_ref("mlflow:/reviews@production")}  # not /2
    watcher = AliasWatcher(svc, 0.05, client_factory=lambda: registry)  # type: ignore[arg-type]

    def count(result: str) -> float:
        value = svc.metrics.registry.get_sample_value(
            "openautoglm_model_swaps_total", {"task": "classify", "result": result}
        )
        return 0.0 if value is None else value

    assert watcher.check() == {"classify": "unchanged"} and svc.swapped == []
    registry.aliases[("reviews", "production")] = "2"
    assert watcher.check() == {"classify": "swapped"} and svc.swapped == ["mlflow:/reviews/2"]  # pinned
    registry.aliases[("reviews", "production")] = "3"
    assert watcher.check() == {"classify": "failed"} and svc.version == "2"
    assert watcher.check() == {"classify": "failed"} and svc.swapped[-2:] == ["mlflow:/reviews/3"] * 2  # retried
    registry.down = True
    assert watcher.check() == {"classify": "lookup_failed"} and svc.version == "2"
    registry.down = False
    registry.aliases[("reviews", "production")] = "4"
    assert watcher.check() == {"classify": "swapped"} and svc.version == "4"
    assert (count("swapped"), count("failed"), count("lookup_failed")) == (2, 2, 1)

    # On its thread: it polls by itself, and stops.
    registry.aliases[("reviews", "production")] = "5"
    watcher.start()
    deadline = time.monotonic() + 5
    while svc.version != "5" and time.monotonic() < deadline:
        time.sleep(0.02)
    watcher.stop()
    assert svc.version == "5"
    lookups = registry.lookups
    time.sleep(0.2)
    assert registry.lookups == lookups  # stopped


def test_the_poll_setting() -> None:
    assert make_settings().alias_poll_s == 10.0
    with pytest.raises(ValueError):
        make_settings(alias_poll_s=-1)
    with pytest.raises(ValueError):
        AliasWatcher(FakeService("mlflow:/m@a", "1", set()), 0)  # type: ignore[arg-type]


def test_answers_and_readiness_name_the_version(monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_app(make_settings(classify_model="swap-v1", default_labels=LABELS))
    with TestClient(app) as client:
        one = client.post("/api/v1/classify", json={"text": "好吃"}, headers=auth()).json()["data"]
        assert one["model_version"] == "1" and one["model"] == "swap-v1"
        app.state.service.swap("classify", "swap-v3")
        many = client.post("/api/v1/classify/batch", json={"texts": ["好吃", "难吃"]}, headers=auth()).json()["data"]
        assert [r["model_version"] for r in many["results"]] == ["3", "3"]
        ner = client.post("/api/v1/ner", json={"text": "北京"}, headers=auth()).json()["data"]
        assert ner["model_version"] is None  # serve-fake: not a registered model
        ready = client.get("/readyz").json()["data"]
        assert ready["model_versions"] == {"classify": "3", "ner": None, "match": None}
