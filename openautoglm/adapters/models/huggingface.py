"""Local Hugging Face models: ``model="local:/path/to/folder"``. Loaded once per process, never downloaded.

- A causal LM (``*ForCausalLM`` in config.json, or a ``.gguf`` file, which needs the ``gguf`` package) whose
  tokenizer has a chat template: prompted like GLM (JSON answers, strict parsing, one repair round).
- An encoder (a sentence-transformers folder, or any other architecture): embeddings by mean pooling, used
  like ``local-use`` for classification and matching.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from openautoglm.adapters.models.base import BackendCallError, Completion, GenerativeBackend, ModelBackend
from openautoglm.adapters.models.embedding import EmbeddingBackend, Encoder
from openautoglm.core.devices import torch_device
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.prompts import Message

if TYPE_CHECKING:
    from openautoglm.adapters.models import ModelSpec

_GENERATIVE_SUFFIXES = ("ForCausalLM", "ForConditionalGeneration")


def _fingerprint(path: Path) -> str:
    """Folder identity for cache keys: its path and the size and time of its weight files."""
    parts = [str(path.resolve())]
    for weights in sorted([*path.glob("*.safetensors"), *path.glob("*.bin"), *path.glob("*.gguf")]):
        stat = weights.stat()
        parts.append(f"{weights.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def load_local_model(spec: ModelSpec) -> ModelBackend:
    """Inspect the folder and build the matching backend."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    path = Path(spec.model.split(":", 1)[1]).expanduser()
    if not path.is_dir():
        raise ConfigurationError(
            f"{spec.model}: no such folder.",
            hint="point at a folder with config.json and weights (models are never downloaded here)",
        )
    config_file = path / "config.json"
    config: dict[str, Any] = json.loads(config_file.read_text(encoding="utf-8")) if config_file.exists() else {}
    architectures = [str(a) for a in config.get("architectures") or []]
    gguf = sorted(path.glob("*.gguf"))
    if gguf or any(a.endswith(_GENERATIVE_SUFFIXES) for a in architectures):
        return ChatModelBackend(spec.model, path, gguf_file=gguf[0].name if gguf else None, threads=spec.threads)
    if config or (path / "modules.json").exists():
        return EmbeddingBackend(spec.model, MeanPoolingEncoder(path, threads=spec.threads))
    raise ConfigurationError(
        f"{path}: cannot tell what model this is (no config.json, no .gguf file).",
        hint="use a Hugging Face model folder as written by save_pretrained()",
    )


class MeanPoolingEncoder(Encoder):
    """Sentence embeddings from any transformers encoder: mean of the last hidden states over real tokens."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        torch.set_num_threads(threads)
        self.name = f"hf-encoder-{_fingerprint(path)}"
        self._tokenizer: Any = AutoTokenizer.from_pretrained(path, local_files_only=True)
        model: Any = AutoModel.from_pretrained(path, local_files_only=True)
        self._device = torch_device()
        self._model: Any = model.eval().to(self._device)
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> np.ndarray:
        import torch

        with self._lock, torch.no_grad():
            batch = self._tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
            batch = {k: v.to(self._device) for k, v in batch.items()}
            hidden = self._model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return np.asarray(pooled.float().cpu().numpy())


class ChatModelBackend(GenerativeBackend):
    """A local causal LM prompted through its chat template, greedy decoding, one generation at a time."""

    kind = "hf-chat"

    def __init__(
        self, model: str, path: Path, *, gguf_file: str | None = None, threads: int = 1, max_new_tokens: int = 128
    ) -> None:
        super().__init__(model, max_concurrency=1, max_retries=0, max_tokens=max_new_tokens)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.set_num_threads(threads)
        options: dict[str, Any] = {"local_files_only": True}
        if gguf_file:
            options["gguf_file"] = gguf_file
        self._tokenizer: Any = AutoTokenizer.from_pretrained(path, **options)
        if not getattr(self._tokenizer, "chat_template", None):
            raise ConfigurationError(
                f"{path}: the tokenizer has no chat template, so the model cannot be prompted as a chat model.",
                hint="use an instruction-tuned model folder (its tokenizer_config.json or chat_template.jinja "
                "holds the template)",
            )
        causal_lm: Any = AutoModelForCausalLM.from_pretrained(path, **options)
        self._device = torch_device()
        self._model: Any = causal_lm.eval().to(self._device)
        self._fingerprint = _fingerprint(path)
        self._lock = threading.Lock()

    def request(self, messages: list[Message]) -> dict[str, Any]:
        return {**super().request(messages), "model": f"{self.model}#{self._fingerprint}"}

    def complete(self, messages: list[Message]) -> Completion:
        import torch

        try:
            with self._lock, torch.no_grad():
                inputs = self._tokenizer.apply_chat_template(
                    messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
                ).to(self._device)
                output = self._model.generate(
                    **inputs,
                    max_new_tokens=self.max_tokens,
                    do_sample=False,
                    pad_token_id=self._tokenizer.pad_token_id or self._tokenizer.eos_token_id,
                )
        except Exception as error:  # a local model failing on one input should not stop the batch
            raise BackendCallError(f"{type(error).__name__}: {error}"[:300], code="local", retryable=False) from None
        prompt_length = inputs["input_ids"].shape[1]
        new_tokens = output[0][prompt_length:]
        text = str(self._tokenizer.decode(new_tokens, skip_special_tokens=True))
        return Completion(text=text.strip(), tokens=int(prompt_length + len(new_tokens)))
