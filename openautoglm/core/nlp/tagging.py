"""Sequence labelling for NER that learns: character features, word-tag alignment, and labelled sentences.

A linear-chain CRF (Lafferty, McCallum & Pereira, 2001) tags each character with BIO labels; its features here,
per character ``i`` of a sentence (all strings, each with weight 1, as crfsuite takes them):

- characters in a window ``i-w .. i+w`` (default ``w = 2``) and the bigrams inside it (``c[-1]c[0]`` ...);
- the character type (digit, latin, punct, CJK, space, other) of ``i-1, i, i+1`` and their triple;
- an external tagger's view (Baidu LAC): the position of ``i`` in its word (B/I/E/S), the word's tag, the same for
  the neighbours, and the word itself when short. The tagger is run by the caller; this module only aligns its
  ``(word, tag)`` pairs to characters.

BIO <-> entity conversion is :func:`openautoglm.core.nlp.metrics.spans_to_bio` / ``bio_to_spans``; the labelled
input format is the one ``evaluate`` takes for NER: ``[{"text", "type", "start"?, "end"?}]`` per sentence.
Pure functions; no model is loaded here.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from openautoglm.core.errors import ConfigurationError
from openautoglm.core.nlp.metrics import bio_to_spans, spans_to_bio
from openautoglm.core.nlp.types import Entity

#: Bumped whenever :func:`char_features` changes, so a saved model is never fed features it was not trained on.
FEATURE_VERSION = 1

Tokens = list[list[str]]


def char_type(char: str) -> str:
    """``digit``, ``cjk_num`` (一, 十, 万...), ``latin``, ``punct``, ``cjk``, ``space`` or ``other`` (full-width
    forms count as their ASCII kind: ``１`` is a digit, ``Ａ`` latin)."""
    if not char:
        return "other"
    folded = unicodedata.normalize("NFKC", char)[:1] or char
    if folded.isspace():
        return "space"
    if folded.isdigit() or char in "〇零一二三四五六七八九十百千万亿":
        return "digit" if folded.isdigit() else "cjk_num"
    if folded.isascii() and folded.isalpha():
        return "latin"
    code = ord(char)
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x2FFFF:
        return "cjk"
    if unicodedata.category(folded).startswith(("P", "S")):
        return "punct"
    return "other"


def align_words(text: str, words: Sequence[str]) -> list[tuple[int, int]]:
    """Character spans of a tagger's words in ``text`` (words in order; a word the tagger normalised, and so not
    found from the running offset, takes the characters at the offset)."""
    spans, offset = [], 0
    for word in words:
        start = text.find(word, offset)
        if start < 0 or start - offset > len(word):
            start = offset
        end = min(len(text), start + len(word))
        spans.append((start, end))
        offset = end
    return spans


def word_tags(text: str, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Per character of ``text``: (position in its word ``B``/``I``/``E``/``S``, the word's tag, the word).

    Characters no word covers get ``("S", "-", char)``.
    """
    out = [("S", "-", c) for c in text]
    for (start, end), (word, tag) in zip(align_words(text, [w for w, _ in pairs]), pairs, strict=True):
        for i in range(start, end):
            position = "S" if end - start == 1 else "B" if i == start else "E" if i == end - 1 else "I"
            out[i] = (position, tag, word)
    return out


def char_features(
    text: str, pairs: Sequence[tuple[str, str]] | None = None, *, window: int = 2, max_word: int = 4
) -> Tokens:
    """crfsuite features (a list of strings) for each character of ``text``.

    Args:
        text: The sentence.
        pairs: An external tagger's ``(word, tag)`` pairs for ``text`` (e.g. LAC's), or ``None`` for characters only.
        window: Characters either side that become features.
        max_word: Words up to this length are a feature themselves (longer ones only by their tag).

    Returns:
        ``len(text)`` lists of feature strings.
    """
    n = len(text)
    chars = ["<s>" if i < 0 else "</s>" if i >= n else text[i] for i in range(-window, n + window)]
    types = ["BOS" if i < 0 else "EOS" if i >= n else char_type(text[i]) for i in range(-1, n + 1)]
    words = word_tags(text, pairs) if pairs is not None else None
    out: Tokens = []
    for i in range(n):
        c = i + window  # index into the padded characters
        feats = ["b"]
        for d in range(-window, window + 1):
            feats.append(f"c{d}={chars[c + d]}")
        for d in range(-window, window):
            feats.append(f"cc{d}={chars[c + d]}{chars[c + d + 1]}")
        feats.append(f"c-1+1={chars[c - 1]}{chars[c + 1]}")
        t = i + 1
        feats.extend((f"t0={types[t]}", f"t-1={types[t - 1]}", f"t+1={types[t + 1]}"))
        feats.append(f"ttt={types[t - 1]}|{types[t]}|{types[t + 1]}")
        if words is not None:
            position, tag, word = words[i]
            feats.extend((f"w0={position}-{tag}", f"wt0={tag}", f"wc0={tag}|{text[i]}"))
            if len(word) <= max_word:
                feats.append(f"wd0={word}")
            for d in (-1, 1):
                j = i + d
                if 0 <= j < n:
                    feats.append(f"w{d:+d}={words[j][0]}-{words[j][1]}")
            feats.append(f"wlen={min(len(word), 8)}")
        out.append(feats)
    return out


@dataclass(frozen=True)
class LabelledSentence:
    """A sentence and its gold entities (``text[e.start:e.end] == e.text`` for each)."""

    text: str
    entities: tuple[Entity, ...]

    @property
    def bio(self) -> list[str]:
        """Character-level BIO tags."""
        return spans_to_bio(len(self.text), self.entities)


def _entity(item: Any, text: str, where: str, cursor: dict[str, int]) -> Entity:
    if isinstance(item, Entity):
        item = item.as_dict()
    if not isinstance(item, Mapping) or not isinstance(item.get("text"), str) or not isinstance(item.get("type"), str):
        raise ConfigurationError(
            f"{where}: an entity must be a dict with 'text' and 'type', got {item!r}.",
            hint='write each sentence as (text, [{"text": "北京", "type": "LOC", "start": 0, "end": 2}, ...])',
        )
    surface, kind = item["text"], item["type"].strip().upper()
    start, end = item.get("start"), item.get("end")
    if start is None:
        start = text.find(surface, cursor.get(surface, 0))
        if start < 0 or not surface:
            raise ConfigurationError(
                f"{where}: entity {surface!r} is not in the text {text[:60]!r}.",
                hint="each entity's text must occur in its sentence (give start/end for repeated mentions)",
            )
        end = start + len(surface)
    if end is None:
        end = int(start) + len(surface)
    start, end = int(start), int(end)
    if not 0 <= start < end <= len(text) or text[start:end] != surface:
        raise ConfigurationError(
            f"{where}: entity {surface!r} at [{start}, {end}) does not match the text there "
            f"({text[max(0, start) : max(0, end)]!r}).",
            hint="start/end are character offsets with text == sentence[start:end]; leave them out to have the "
            "first occurrence found",
        )
    cursor[surface] = end
    return Entity(text=surface, type=kind, start=start, end=end)


def labelled_sentence(text: Any, entities: Any, where: str = "sentence") -> LabelledSentence:
    """Check one ``(text, entities)`` item; ``entities`` is a list of dicts or :class:`Entity`, or that as JSON.

    Raises:
        ConfigurationError: The text is not a string, the entities are not a list, or an entity does not match
            the text.
    """
    if not isinstance(text, str):
        raise ConfigurationError(f"{where}: the text must be a string, got {type(text).__name__}.")
    if entities is None or (isinstance(entities, float) and entities != entities):
        entities = []
    if isinstance(entities, str):
        try:
            entities = json.loads(entities) if entities.strip() else []
        except json.JSONDecodeError as error:
            raise ConfigurationError(
                f"{where}: the entities are not valid JSON ({error.msg}).",
                hint='write them as [{"text": "北京", "type": "LOC"}, ...]',
            ) from None
    if not isinstance(entities, list | tuple):
        raise ConfigurationError(
            f"{where}: the entities must be a list, got {type(entities).__name__}.",
            hint='write them as [{"text": "北京", "type": "LOC"}, ...]',
        )
    cursor: dict[str, int] = {}
    found = [_entity(item, text, where, cursor) for item in entities]
    return LabelledSentence(text, tuple(sorted(found, key=lambda e: (e.start, e.end))))


def labelled_sentences(items: Sequence[tuple[Any, Any]]) -> list[LabelledSentence]:
    """Check ``(text, entities)`` items (see :func:`labelled_sentence`); at least one entity overall."""
    sentences = [labelled_sentence(text, ents, f"sentence {i}") for i, (text, ents) in enumerate(items)]
    if not sentences:
        raise ConfigurationError("No labelled sentences to learn from.")
    if not any(s.entities for s in sentences):
        raise ConfigurationError(
            "None of the labelled sentences holds an entity, so there is nothing to learn.",
            hint="give (text, entities) pairs with entities as [{'text', 'type'}] dicts",
        )
    return sentences


def entities_from_tags(text: str, tags: Sequence[str]) -> tuple[Entity, ...]:
    """Entities of ``text`` from per-character BIO tags."""
    if len(tags) != len(text):
        raise ValueError(f"{len(tags)} tags for {len(text)} characters")
    return bio_to_spans(list(text), tags)


def entity_types(sentences: Sequence[LabelledSentence]) -> tuple[str, ...]:
    """The entity types seen, sorted."""
    return tuple(sorted({e.type for s in sentences for e in s.entities}))
