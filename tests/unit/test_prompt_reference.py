"""References to the prompt registry (``prompts:/name/version``, ``prompts:/name@alias``), the names and aliases an
optimisation may register under, and the cheap input-dataset digest; no MLflow store is touched."""

from __future__ import annotations

import pandas as pd
import pytest

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.prompt.reference import (
    PromptRef,
    check_alias,
    check_prompt_name,
    default_prompt_name,
    is_prompt_ref,
    parse_prompt_ref,
)


def test_both_forms_parse() -> None:
    assert parse_prompt_ref("prompts:/reviews.sentiment/3") == PromptRef("reviews.sentiment", 3)
    assert parse_prompt_ref("prompts:/reviews-v2@production") == PromptRef("reviews-v2", alias="production")
    assert parse_prompt_ref("prompts:/p@latest").alias == "latest"  # MLflow's own: the newest version
    assert PromptRef("p", 2).uri == "prompts:/p/2" and str(PromptRef("p", alias="candidate")) == "prompts:/p@candidate"
    assert is_prompt_ref("prompts:/x") and is_prompt_ref("PROMPTS:/x") and not is_prompt_ref("runs:/abc")


@pytest.mark.parametrize(
    "bad",
    [
        "prompts:/",
        "prompts:/name",  # neither version nor alias
        "prompts:/name/0",
        "prompts:/name/latest",
        "prompts:/name@",
        "prompts:/name@1x",
        "prompts:/../etc/passwd@production",
        "prompts:/name/3/extra",
        "prompts://host/name/3",
        "prompts:/na me@production",
        "prompts:/name@prod\nuction",
        "prompts:/name@production\n",
        "prompts:/" + "x" * 129 + "/1",
    ],
)
def test_bad_forms_say_the_forms_in_one_line(bad: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_prompt_ref(bad)
    assert "\n" not in caught.value.message and "not a registered prompt reference" in caught.value.message
    assert caught.value.hint and "prompts:/<name>/<version>" in caught.value.hint and "@<alias>" in caught.value.hint


def test_names_and_aliases() -> None:
    assert check_prompt_name("optimize_prompt.text_classification") == "optimize_prompt.text_classification"
    for bad in ("", "-x", "a/b", "名字", "x" * 129):
        with pytest.raises(ConfigurationError, match="cannot be a registered prompt name"):
            check_prompt_name(bad)
    assert check_alias("production") == "production"
    for bad in ("latest", "Latest", "v1", "V12", "1st", "a b", "a.b", ""):
        with pytest.raises(ConfigurationError, match="cannot be a prompt alias"):
            check_alias(bad)


def test_default_name_comes_from_the_experiment_and_task() -> None:
    assert default_prompt_name("optimize_prompt", "text_classification") == "optimize_prompt.text_classification"
    chinese = default_prompt_name("外卖 评价", "ner")
    assert chinese.startswith("prompt-") and chinese.endswith(".ner") and check_prompt_name(chinese) == chinese
    assert chinese != default_prompt_name("外卖评价", "ner")
    assert default_prompt_name("my team/prompts", "ner").startswith("my-team-prompts-")
    assert len(default_prompt_name("x" * 300, "semantic_matching")) <= 128


def test_every_face_refuses_a_bad_reference_before_any_store_is_opened() -> None:
    from openautoglm.flows.optimize_prompt import OptimizePromptParams
    from openautoglm.optimize import OptimisedPrompt, PromptOptimizer
    from openautoglm.pipeline import TaskPipeline

    with pytest.raises(ConfigurationError, match="not a registered prompt reference"):
        OptimisedPrompt.load("prompts:/name")
    with pytest.raises(ConfigurationError, match="not a registered prompt reference"):
        TaskPipeline("text_classification", "local-use").configure(prompt="prompts:/a/b/c")
    with pytest.raises(ConfigurationError, match="cannot be a prompt alias"):
        PromptOptimizer(alias="latest")
    with pytest.raises(ConfigurationError, match="cannot be a registered prompt name"):
        PromptOptimizer(prompt_name="a/b")
    base = {"source": {"kind": "csv", "path": "x.csv"}, "task": {"labels": ["a", "b"]}}
    with pytest.raises(ValueError, match="cannot be a prompt alias"):
        OptimizePromptParams.model_validate({**base, "alias": "v2"})
    with pytest.raises(ValueError, match="cannot be a registered prompt name"):
        OptimizePromptParams.model_validate({**base, "prompt_name": "../x"})
    params = OptimizePromptParams.model_validate({**base, "prompt_name": "reviews", "alias": "production"})
    assert params.register_prompt and params.alias == "production"


def test_the_dataset_digest_follows_the_rows_not_their_copies() -> None:
    from openautoglm.adapters.tracking import frame_digest

    frame = pd.DataFrame({"text": pd.array(["好", "差", "一般"], dtype="string"), "label": ["正面", "负面", "中性"]})
    digest = frame_digest(frame)
    assert len(digest) == 16 and digest == frame_digest(frame.copy())
    assert digest != frame_digest(frame.iloc[::-1]) and digest != frame_digest(frame.head(2))
    changed = frame.copy()
    changed.loc[2, "text"] = "还行"
    assert digest != frame_digest(changed)
    assert frame_digest(frame.head(0)) != frame_digest(frame.head(0).rename(columns={"text": "t"}))
    # The same rows however they were sliced or put together; where a missing text sits counts.
    longer = pd.DataFrame(
        {"text": pd.array(["x", "好", "差", "一般", "y"], dtype="string"), "label": ["a", "正面", "负面", "中性", "b"]}
    )
    assert frame_digest(longer.iloc[1:4]) == digest == frame_digest(pd.concat([longer.iloc[1:2], longer.iloc[2:4]]))
    gaps = [pd.array(v, dtype="string") for v in (["好", None, "差"], [None, "好", "差"], ["好", "", "差"])]
    assert len({frame_digest(pd.DataFrame({"text": g})) for g in gaps}) == 3
