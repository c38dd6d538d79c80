"""The search analyser: one normal form for documents and queries in every script."""

from __future__ import annotations

import pytest

from catalog.glossary import Concept
from catalog.search import QueryConcept, parse_query, score_fields
from catalog.text_search import FieldText, Token, index_terms, match_token, normalise, stem, tokens


def test_normalise_folds_width_case_and_script() -> None:
    assert normalise("ＳＭＴ 用電量 東莞 Meters") == "smt 用电量 东莞 meters"


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("meters", "meter"),
        ("metering", "meter"),
        ("batteries", "battery"),
        ("glass", "glass"),
        ("status", "status"),
        ("used", "used"),
        ("metered", "meter"),
        ("kwh", "kwh"),
        ("gas", "gas"),
    ],
)
def test_stem_folds_plural_and_verb_endings(word: str, expected: str) -> None:
    assert stem(word) == expected


def test_index_terms_are_han_characters_bigrams_and_words() -> None:
    assert index_terms("用電量 Meters") == {"用", "电", "量", "用电", "电量", "meter"}
    assert tokens("东莞energy") == [Token("han", "东莞"), Token("word", "energy")]


def test_han_tokens_match_inside_longer_runs_and_partly() -> None:
    field = FieldText.of(normalise("东莞工厂用电量（15分钟）"))
    assert match_token(Token("han", "工厂用电"), field) == 1.0
    assert match_token(Token("han", "东莞用电"), field) == pytest.approx(0.3333, abs=1e-3)
    assert match_token(Token("han", "冷链仓库"), field) == 0.0
    words = FieldText.of("energy meters")
    assert match_token(Token("word", "ener"), words) == 0.6
    assert match_token(Token("word", "en"), words) == 0.0  # prefixes need three letters


def test_glossary_expands_words_runs_and_whole_phrases() -> None:
    glossary = [Concept("energy", (("能耗", "zh-Hans"), ("energy", "en"), ("power use", "en")))]
    [concept] = parse_query("東莞能耗", glossary)
    phrases = {a.phrase: a.factor for a in concept.alternatives}
    assert phrases[(Token("han", "东莞能耗"),)] == 1.0
    assert (Token("han", "东莞"), Token("word", "energy")) not in phrases  # runs stay Han
    [whole] = parse_query("power use", glossary)
    assert {a.via for a in whole.alternatives} == {None, "energy"}


def test_pruned_scoring_equals_the_exhaustive_maximum() -> None:
    concepts: list[QueryConcept] = parse_query("用电量 meter", [])
    fields = {
        "title": FieldText.of(normalise("Energy meters")),
        "description": FieldText.of(normalise("用电量")),
    }
    score, matched = score_fields(concepts, fields)
    assert score == 10.0 + 2.0 and matched == ("title", "description")
