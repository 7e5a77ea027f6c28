"""Into production without a restart, under load (issue 30 part 6).

A real ``openautoglm serve`` (uvicorn) serves ``mlflow:/hot@production`` from a temp SQLite MLflow registry while four
client threads send ``/api/v1/classify`` back to back. The alias moves from version 1 to version 2 (a student that
learned the opposite labels, so its answers show it), then to version 3 (no student: it cannot load), then to
version 4. Not one request fails; each answer names its version and its label is that version's; version 2 and then 4
answer within a poll plus the load; once a new version has answered, no later request is answered by the old one;
version 3 never answers, its failed loads are counted and retried, and version 2 serves meanwhile.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from openautoglm.serve.swap_testing import Answer, Load, register_broken, register_student, set_alias
from openautoglm.serve.testing import Signer, api_process, keys_json

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SIGNER = Signer.rsa("hotswap-it")
NAME, ALIAS = "hot", "production"
POLL_S = 1.0
#: What a version of the tiny student may take to load and warm on a busy two-core machine (it takes ~0.2 s idle).
LOAD_BUDGET_S = 30.0


def swap_count(base: str, result: str) -> float:
    text = httpx.get(f"{base}/metrics", timeout=10).text
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "openautoglm_model_swaps_total" and s.labels == {"task": "classify", "result": result}
    )


def served_version(base: str) -> str | None:
    version = httpx.get(f"{base}/readyz", timeout=10).json()["data"]["model_versions"]["classify"]
    return version if isinstance(version, str) else None


def test_moving_the_alias_under_load_fails_no_request(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("OPENAUTOGLM_HOME", str(home))  # the registry this process writes and the server reads
    versions = {
        "plain": register_student(NAME, alias=ALIAS),
        "flipped": register_student(NAME, flipped=True),
        "broken": register_broken(NAME),
        "again": register_student(NAME),
    }
    assert list(versions.values()) == [1, 2, 3, 4]
    expected_label = {"1": "正面", "2": "负面", "4": "正面"}  # the probe is a positive review; version 2 is flipped
    env = {
        "OPENAUTOGLM_HOME": str(home),
        "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(SIGNER),
        "OPENAUTOGLM_SERVE_CLASSIFY_MODEL": f"mlflow:/{NAME}@{ALIAS}",
        "OPENAUTOGLM_SERVE_DEFAULT_LABELS": '["正面", "负面"]',
        "OPENAUTOGLM_SERVE_ALIAS_POLL_S": str(POLL_S),
        "OPENAUTOGLM_SERVE_RATE_LIMIT": "1000000/minute",
        "OPENAUTOGLM_SERVE_CACHE": "off",
    }
    log = tmp_path / "api.log"
    headers = {"Authorization": f"Bearer {SIGNER.token('loader', ['viewer'])}"}
    with api_process(env, log) as base:
        assert served_version(base) == "1"
        with Load(base, headers, threads=4) as load:
            assert load.wait_for("1", after=0.0, timeout_s=30) is not None

            moved_to_2 = set_alias(NAME, ALIAS, versions["flipped"])
            to_2 = load.wait_for("2", after=moved_to_2, timeout_s=POLL_S + LOAD_BUDGET_S)
            assert to_2 is not None, f"version 2 did not answer: {log.read_text(errors='replace')[-2000:]}"

            failed_before = swap_count(base, "failed")
            moved_to_broken = set_alias(NAME, ALIAS, versions["broken"])
            deadline = time.monotonic() + 2 * (POLL_S + LOAD_BUDGET_S)
            while swap_count(base, "failed") < failed_before + 2 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert swap_count(base, "failed") >= failed_before + 2  # refused, and tried again at the next poll
            assert served_version(base) == "2"
            broken_window_end = time.monotonic()

            moved = set_alias(NAME, ALIAS, versions["again"])
            to_4 = load.wait_for("4", after=moved, timeout_s=POLL_S + LOAD_BUDGET_S)
            assert to_4 is not None, f"version 4 did not answer: {log.read_text(errors='replace')[-2000:]}"
            time.sleep(0.5)
        answers = load.snapshot()
        assert served_version(base) == "4"
        assert swap_count(base, "swapped") == 2

    by_version = {v: sum(a.version == v for a in answers) for v in ("1", "2", "4")}
    print(f"{len(answers)} answers {by_version}; 2 answered {to_2.received - moved_to_2:.2f} s after its move")
    failed = [a for a in answers if a.status != 200]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed, e.g. {failed[:3]}"
    assert len(answers) > 50
    assert {a.version for a in answers} == {"1", "2", "4"}  # the broken version 3 never answered
    assert all(a.label == expected_label[str(a.version)] for a in answers)  # each version answers as it learned

    def after(answer: Answer) -> list[Answer]:
        return [a for a in answers if a.sent > answer.received]

    assert all(a.version != "1" for a in after(to_2))  # once version 2 answered, version 1 never did again
    assert all(a.version == "4" for a in after(to_4))
    during_broken = [a for a in answers if moved_to_broken <= a.sent <= broken_window_end]
    assert during_broken and all(a.version == "2" for a in during_broken)
    assert "version 3, which failed to load or answer" in log.read_text(errors="replace")


def test_the_api_starts_before_its_alias_names_a_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A labelling loop's API is started before the first train round: the task waits (503 with Retry-After, the
    reason in /readyz) and answers with the first version registered under the alias, without a restart."""
    home = tmp_path / "home"
    monkeypatch.setenv("OPENAUTOGLM_HOME", str(home))
    env = {
        "OPENAUTOGLM_HOME": str(home),
        "OPENAUTOGLM_SERVE_JWT_KEYS": keys_json(SIGNER),
        "OPENAUTOGLM_SERVE_CLASSIFY_MODEL": f"mlflow:/first@{ALIAS}",
        "OPENAUTOGLM_SERVE_DEFAULT_LABELS": '["正面", "负面"]',
        "OPENAUTOGLM_SERVE_ALIAS_POLL_S": str(POLL_S),
        "OPENAUTOGLM_SERVE_CACHE": "off",
    }
    headers = {"Authorization": f"Bearer {SIGNER.token('early', ['viewer'])}"}
    body = {"text": "味道很好，送餐也快", "labels": ["正面", "负面"]}
    with api_process(env, tmp_path / "api.log") as base:
        ready = httpx.get(f"{base}/readyz", timeout=10).json()["data"]
        assert ready["ready"] is True and ready["model_versions"]["classify"] is None
        assert "no version under this alias yet" in ready["waiting"]["classify"]
        early = httpx.post(f"{base}/api/v1/classify", json=body, headers=headers, timeout=30)
        assert early.status_code == 503 and early.headers["Retry-After"] == "1"
        assert "no model for classify yet" in early.json()["message"]

        register_student("first", alias=ALIAS)
        deadline = time.monotonic() + POLL_S + LOAD_BUDGET_S
        while time.monotonic() < deadline and served_version(base) != "1":
            time.sleep(0.2)
        answer = httpx.post(f"{base}/api/v1/classify", json=body, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"]["model_version"] == "1"
        assert httpx.get(f"{base}/readyz", timeout=10).json()["data"]["waiting"] == {}
