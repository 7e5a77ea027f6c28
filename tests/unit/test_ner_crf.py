"""NER that learns: character features, BIO <-> entities, labelled-input checks, and ``TaskPipeline("ner").fit``
with a CRF on tiny synthetic sentences, saved and loaded back as a ``local:`` folder. LAC is replaced by a small
fake tagger (its words and tags), so no model is loaded."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

from openautoglm import TaskPipeline
from openautoglm.adapters.cache import CallCache
from openautoglm.adapters.models import crf as crf_module
from openautoglm.adapters.models.base import BatchStats
from openautoglm.adapters.models.crf import CrfNer
from openautoglm.adapters.models.folders import MANIFEST
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.metrics import bio_to_spans, spans_to_bio
from openautoglm.core.nlp.tagging import (
    align_words,
    char_features,
    char_type,
    entities_from_tags,
    labelled_sentence,
    labelled_sentences,
    word_tags,
)
from openautoglm.core.nlp.types import Entity

PEOPLE = ["张伟", "李娜", "王芳", "刘洋", "陈静", "赵磊"]
PLACES = ["北京", "上海", "广州", "深圳", "杭州", "南京"]
ORGS = ["新华社", "联合国", "人民银行", "清华大学"]
TEMPLATES = [
    ("{PER}在{LOC}工作。", ("PER", "LOC")),
    ("{PER}昨天访问了{ORG}。", ("PER", "ORG")),
    ("{ORG}总部设在{LOC}。", ("ORG", "LOC")),
    ("记者{PER}从{LOC}报道：{ORG}今天开会。", ("PER", "LOC", "ORG")),
]
POOLS = {"PER": PEOPLE, "LOC": PLACES, "ORG": ORGS}
LEXICON = {**{p: "PER" for p in PEOPLE}, **{p: "LOC" for p in PLACES}, **{o: "ORG" for o in ORGS}}


def sentence(rng: random.Random) -> tuple[str, list[dict[str, object]]]:
    template, kinds = rng.choice(TEMPLATES)
    fill = {kind: rng.choice(POOLS[kind]) for kind in kinds}
    text = template.format(**fill)
    return text, [{"text": fill[k], "type": k} for k in kinds]


def fake_lac(texts: Sequence[str], cache: CallCache, stats: BatchStats) -> list[list[tuple[str, str]]]:
    """Known names as one word with their tag; every other character a word tagged ``n``."""
    out = []
    for text in texts:
        pairs, i = [], 0
        while i < len(text):
            word = next((w for w in sorted(LEXICON, key=len, reverse=True) if text.startswith(w, i)), text[i])
            pairs.append((word, LEXICON.get(word, "n")))
            i += len(word)
        out.append(pairs)
    return out


@pytest.fixture
def fake_tagger(monkeypatch: pytest.MonkeyPatch, home: Path) -> None:
    monkeypatch.setattr(crf_module, "lac_pairs", fake_lac)


def test_char_types_and_features_for_a_sentence() -> None:
    assert [char_type(c) for c in "北Ａ１7a，。 十"] == [
        "cjk",
        "latin",
        "digit",
        "digit",
        "latin",
        "punct",
        "punct",
        "space",
        "cjk_num",
    ]
    text = "张伟在北京"
    pairs = [("张伟", "PER"), ("在", "p"), ("北京", "LOC")]
    features = char_features(text, pairs)
    assert len(features) == len(text)
    first, fourth = set(features[0]), set(features[3])
    assert {"b", "c0=张", "c-1=<s>", "c-2=<s>", "c1=伟", "cc0=张伟", "t0=cjk", "t-1=BOS"} <= first
    assert {"w0=B-PER", "wt0=PER", "wd0=张伟", "w+1=E-PER"} <= first
    assert {"c0=北", "cc-1=在北", "c2=</s>", "w0=B-LOC", "w-1=S-p", "w+1=E-LOC"} <= fourth
    assert not any(f.startswith("w") for f in char_features(text)[0])  # characters only without a tagger
    assert len(char_features(text, window=1)[2]) < len(char_features(text, window=2)[2])


def test_word_alignment_survives_a_normalised_word() -> None:
    text = "１９９７年，北京"
    assert align_words(text, ["１９９７年", "，", "北京"]) == [(0, 5), (5, 6), (6, 8)]
    assert align_words(text, ["1997年", "，", "北京"]) == [(0, 5), (5, 6), (6, 8)]  # the tagger folded the digits
    assert [p for p, _, _ in word_tags(text, [("1997年", "TIME"), ("，", "w"), ("北京", "LOC")])] == list("BIIIESBE")


def test_bio_entities_round_trip() -> None:
    text = "记者张伟从北京报道新华社"
    entities = (Entity("张伟", "PER", 2, 4), Entity("北京", "LOC", 5, 7), Entity("新华社", "ORG", 9, 12))
    tags = spans_to_bio(len(text), entities)
    assert tags[:5] == ["O", "O", "B-PER", "I-PER", "O"]
    assert entities_from_tags(text, tags) == entities
    assert bio_to_spans(list(text), tags) == entities
    labelled = labelled_sentence(text, json.dumps([e.as_dict() for e in entities], ensure_ascii=False))
    assert labelled.entities == entities and labelled.bio == tags
    with pytest.raises(ValueError, match="tags for"):
        entities_from_tags(text, tags[:-1])


def test_labelled_input_is_checked_with_a_hint() -> None:
    with pytest.raises(ConfigurationError, match="sentence 1: entity '上海' is not in the text") as error:
        labelled_sentences(
            [("张伟在北京", [{"text": "张伟", "type": "PER"}]), ("李娜在广州", [{"text": "上海", "type": "LOC"}])]
        )
    assert "hint:" in str(error.value) and len(error.value.message.splitlines()) == 1
    with pytest.raises(ConfigurationError, match="does not match the text there"):
        labelled_sentence("张伟在北京", [{"text": "北京", "type": "LOC", "start": 0, "end": 2}])
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        labelled_sentence("张伟在北京", "PER")
    with pytest.raises(ConfigurationError, match="'text' and 'type'"):
        labelled_sentence("张伟在北京", [{"text": "张伟"}])
    with pytest.raises(ConfigurationError, match="nothing to learn"):
        labelled_sentences([("张伟在北京", [])])
    # repeated mentions take successive occurrences when no offsets are given
    twice = labelled_sentence("北京到北京", [{"text": "北京", "type": "LOC"}, {"text": "北京", "type": "LOC"}])
    assert [(e.start, e.end) for e in twice.entities] == [(0, 2), (3, 5)]


def test_fit_predicts_seen_patterns_and_saves_a_folder_that_loads_the_same(fake_tagger: None, tmp_path: Path) -> None:
    rng = random.Random(0)
    train = [sentence(rng) for _ in range(30)]
    test = [sentence(random.Random(1)) for _ in range(1)] + [sentence(rng) for _ in range(11)]
    pipeline = TaskPipeline("ner", "local-lac").fit(train, crf=CrfNer(c1=0.0, c2=0.01, max_iterations=50))
    assert pipeline.config.entity_types == ("LOC", "ORG", "PER")  # configured from the sentences
    frame = pd.DataFrame({"text": [t for t, _ in test], "entities": [json.dumps(e) for _, e in test]})
    results = pipeline.evaluate(frame, label_column="entities", progress=False)
    assert results.metrics["f1"] >= 0.95, results.metrics
    found = results.results[0].prediction
    assert isinstance(found, tuple) and {(e.text, e.type) for e in found} == {
        (e["text"], e["type"]) for e in test[0][1]
    }

    folder = pipeline.save(tmp_path / "ner-model")
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["kind"] == "crf-ner" and manifest["entity_types"] == ["LOC", "ORG", "PER"]
    assert manifest["training"]["sentences"] == 30 and "B-PER" in manifest["labels"]
    loaded = TaskPipeline("ner", model=f"local:{folder}").configure(entity_types=["PER", "LOC", "ORG"])
    again = loaded.run(frame, progress=False)
    assert again.predictions == results.predictions
    assert list(again.frame["prediction"]) == list(results.frame["prediction"])


def test_fit_takes_a_frame_and_reports_bad_input(fake_tagger: None) -> None:
    rng = random.Random(2)
    rows = [sentence(rng) for _ in range(12)]
    frame = pd.DataFrame({"sentence": [t for t, _ in rows], "gold": [json.dumps(e) for _, e in rows]})
    fitted = TaskPipeline("ner").fit(frame, text_column="sentence", label_column="gold", crf=CrfNer(max_iterations=20))
    assert fitted.run(["张伟在上海工作。"], progress=False).predictions[0]
    with pytest.raises(ConfigurationError, match="No column 'entities'"):
        TaskPipeline("ner").fit(frame, text_column="sentence", label_column="entities")
    with pytest.raises(ConfigurationError, match="expected a \\(text, entities\\) pair"):
        TaskPipeline("ner").fit(["张伟在北京"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="labelled sentences only"):
        TaskPipeline("ner").fit(rows, unlabelled=["北京"])
    with pytest.raises(ConfigurationError, match="not been fitted"):
        TaskPipeline("ner").save("/nonexistent")


def test_a_saved_folder_from_another_feature_version_is_refused(fake_tagger: None, tmp_path: Path) -> None:
    rows = [sentence(random.Random(3)) for _ in range(6)]
    folder = TaskPipeline("ner").fit(rows, crf=CrfNer(max_iterations=5)).save(tmp_path / "m")
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    (folder / MANIFEST).write_text(json.dumps({**manifest, "feature_version": 0}), encoding="utf-8")
    with pytest.raises(ConfigurationError, match="feature version 0"):
        TaskPipeline("ner", model=f"local:{folder}").run(["张伟在北京"], progress=False)


def test_a_folder_kind_nobody_registered_names_the_kinds_there_are(tmp_path: Path) -> None:
    from openautoglm.adapters.models import ModelSpec
    from openautoglm.adapters.models.folders import FOLDER_KINDS, load_folder
    from openautoglm.core.errors import ResolveError

    (tmp_path / MANIFEST).write_text(json.dumps({"kind": "crf-nerr"}), encoding="utf-8")
    assert "crf_ner" in FOLDER_KINDS.choices()
    with pytest.raises(ResolveError, match="crf_ner"):
        load_folder(ModelSpec(model=f"local:{tmp_path}"))
    (tmp_path / MANIFEST).write_text("[]", encoding="utf-8")
    with pytest.raises(ConfigurationError, match="must be a JSON object with a 'kind'"):
        load_folder(ModelSpec(model=f"local:{tmp_path}"))


def test_a_folder_saved_again_is_loaded_again_in_the_same_process(fake_tagger: None, tmp_path: Path) -> None:
    rng = random.Random(2)
    train = [sentence(rng) for _ in range(30)]
    folder = TaskPipeline("ner").fit(train, crf=CrfNer(max_iterations=30)).save(tmp_path / "m")
    text = "记者张伟从北京报道：新华社今天开会。"
    first = TaskPipeline("ner", model=f"local:{folder}").configure(entity_types=["PER", "LOC", "ORG"]).run([text])
    assert first.results[0].prediction  # finds entities
    # the same folder, trained again on sentences without any ORG: the next load must be the new model
    no_org = [(t, [e for e in ents if e["type"] != "ORG"]) for t, ents in train]
    TaskPipeline("ner").fit(no_org, crf=CrfNer(max_iterations=30)).save(folder)
    second = TaskPipeline("ner", model=f"local:{folder}").configure(entity_types=["PER", "LOC", "ORG"]).run([text])
    assert "ORG" in {e.type for e in first.results[0].prediction}
    assert "ORG" not in {e.type for e in second.results[0].prediction}
    again = TaskPipeline("ner", model=f"local:{folder}").configure(entity_types=["PER", "LOC", "ORG"]).run([text])
    assert again.results[0].prediction == second.results[0].prediction  # the first model's file copy is its own
