"""Test helpers: throwaway signing keys, token minting, and a counting stand-in model.

Importing this module registers the backend ``serve-fake`` (all three tasks): deterministic answers, a record of
every batch it was given, and an optional delay, so tests can prove what reached the model and when.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from pydantic import SecretStr

from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models import BACKENDS, ModelSpec, backend
from openautoglm.adapters.models.base import BatchStats, ModelBackend
from openautoglm.core.nlp.types import Entity, Row, RowResult, TaskConfig
from openautoglm.serve.auth import issue_token


class FakeModel(ModelBackend):
    """Classification: the first label that occurs in the text, else the first label. NER: every occurrence of
    "北京"/"上海" as LOC. Matching: character-set overlap. Records batches (class-wide, all instances)."""

    tasks = frozenset({"text_classification", "ner", "semantic_matching"})
    kind = "fake"
    batches: ClassVar[list[int]] = []
    delay_s: ClassVar[float] = 0.0
    #: What "timing" it at start-up finds (never timed: a test sets what a character costs).
    cost_per_char: ClassVar[float] = 1e-6
    _lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        with cls._lock:
            cls.batches.clear()
        cls.delay_s = 0.0
        cls.cost_per_char = 1e-6

    def calibrate(self, config: TaskConfig, repeats: int = 3) -> None:
        self.seconds_per_char = FakeModel.cost_per_char

    def predict(self, config: TaskConfig, rows: Sequence[Row], cache: CallCache) -> tuple[list[RowResult], BatchStats]:
        with FakeModel._lock:
            FakeModel.batches.append(len(rows))
        if self.delay_s:
            time.sleep(self.delay_s)
        out = []
        for r in rows:
            if config.task_type == "text_classification":
                labels = list(config.labels or ())
                label = next((x for x in labels if x in r.text), labels[0])
                out.append(RowResult(row_id=r.row_id, prediction=label, score=1.0 if label in r.text else 0.5))
            elif config.task_type == "ner":
                found = tuple(
                    Entity(text=w, type="LOC", start=i, end=i + len(w))
                    for w in ("北京", "上海")
                    for i in _occurrences(r.text, w)
                )
                out.append(RowResult(row_id=r.row_id, prediction=found))
            else:
                a, b = set(r.text), set(r.text_pair or "")
                score = len(a & b) / max(1, len(a | b))
                labels = config.match_labels
                out.append(
                    RowResult(row_id=r.row_id, prediction=labels[score >= config.threshold], score=round(score, 4))
                )
        return out, BatchStats(calls=len(rows))


def _occurrences(text: str, word: str) -> list[int]:
    found, start = [], text.find(word)
    while start != -1:
        found.append(start)
        start = text.find(word, start + len(word))
    return found


if "serve-fake" not in BACKENDS:

    @backend("serve-fake")
    def _fake(spec: ModelSpec, api_key: SecretStr | None) -> ModelBackend:
        return FakeModel("serve-fake")


@dataclass
class Signer:
    """A private key with its kid and algorithm; ``public_pem`` goes to the server's key set."""

    kid: str
    alg: str
    private: Any
    public_pem: str = field(init=False)

    def __post_init__(self) -> None:
        self.public_pem = (
            self.private.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    @classmethod
    def rsa(cls, kid: str) -> Signer:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> Signer:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))

    def token(self, sub: str, roles: Iterable[str], **options: Any) -> str:
        return issue_token(self.private, kid=self.kid, alg=self.alg, sub=sub, roles=roles, **options)

    def private_pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def keys_json(*signers: Signer) -> str:
    """The value of ``OPENAUTOGLM_SERVE_JWT_KEYS`` for these signers' public keys."""
    return json.dumps({s.kid: {"alg": s.alg, "key": s.public_pem} for s in signers})


@contextmanager
def api_process(
    env: dict[str, str], log: Path, *, timeout_s: float = 120.0, log_level: str = "warning"
) -> Iterator[str]:
    """``openautoglm serve`` in a subprocess on a free loopback port; yields its base URL once ``/readyz`` is 200.

    Its output goes to ``log`` (``log_level="info"`` writes uvicorn's access log there too). The process (and its
    group) is stopped when the block ends.
    """
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    binary = Path(sys.executable).parent / "openautoglm"
    command = [str(binary), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", log_level]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as handle:
        process = subprocess.Popen(
            command,
            env={**os.environ, "OMP_NUM_THREADS": "1", **env},
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"openautoglm serve exited: {log.read_text(errors='replace')[-3000:]}")
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{base} not ready in {timeout_s} s: {log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.3)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
