from __future__ import annotations

import pytest

from openautoglm.core.errors import ConfigurationError, ResolveError
from openautoglm.core.registry import Registry, normalize_name


class Base:
    pass


class Child(Base):
    pass


def test_register_and_resolve_by_normalised_name() -> None:
    reg: Registry[type[Base]] = Registry("widget", base=Base)
    reg.register("Fancy-Widget", "fw")(Child)
    assert reg.resolve("fancy_widget") is Child
    assert reg.resolve("FANCY WIDGET") is Child
    assert reg.resolve("fw") is Child
    assert "fancy-widget" in reg and "other" not in reg
    assert reg.choices() == ["fancy_widget"]


def test_resolve_returns_values_of_the_base_type_unchanged() -> None:
    reg: Registry[type[Base]] = Registry("widget", base=Base)
    reg.add("child", Child)
    assert reg.resolve(Child) is Child


def test_duplicate_names_and_aliases_are_rejected() -> None:
    reg: Registry[int] = Registry("number")
    reg.add("one", 1, "uno")
    with pytest.raises(ConfigurationError, match="already registered"):
        reg.add("One", 11)
    with pytest.raises(ConfigurationError, match="already registered"):
        reg.add("two", 2, "UNO")


def test_wrong_base_class_is_rejected() -> None:
    reg: Registry[type] = Registry("widget", base=Base)
    with pytest.raises(ConfigurationError, match="not a Base"):
        reg.add("str", str)


def test_miss_lists_choices_and_suggests() -> None:
    reg: Registry[int] = Registry("number")
    reg.add("seven", 7)
    reg.add("eight", 8)
    with pytest.raises(ResolveError) as info:
        reg.resolve("sevn")
    message = str(info.value)
    assert "Could not resolve 'sevn' among choices ['eight', 'seven']" in message
    assert "did you mean 'seven'" in message


def test_normalize_name() -> None:
    assert normalize_name("  Text-Classification ") == "text_classification"
    assert normalize_name("a__b--c") == "a_b_c"
