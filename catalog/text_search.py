"""Text analysis for catalog search: one analyser for documents and queries alike.

Search must work the same on SQLite and PostgreSQL, so nothing here leans on a database's
full-text engine. Text is normalised in Python and the database only stores and looks up
plain terms:

* NFKC (full-width letters and digits become ASCII), case folding, and Traditional →
  Simplified Chinese through OpenCC (``t2s``, the project's one OpenCC adapter), so 用電量
  and 用电量 are the same text;
* Chinese is written without spaces, so a run of Han characters is indexed as its single
  characters and every two-character window (bigram): a query's bigrams find a document
  however the document was segmented;
* other text splits into words of letters and digits; a light English stemmer folds plural
  and verb endings (meters → meter, metering → meter) and a query word of three or more
  letters also matches as a prefix (``ener`` → energy).

OpenCC is imported here only (style rule L7); the converter is built once per process.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Literal

HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
TOKEN = re.compile(rf"([{HAN}]+)|([0-9a-z]+)")
MAX_TERM = 64
PREFIX_MIN = 3


@cache
def _converter() -> object:
    import opencc

    return opencc.OpenCC("t2s.json")


def to_simplified(text: str) -> str:
    converter = _converter()
    converted: str = converter.convert(text)  # type: ignore[attr-defined]
    return converted


def normalise(text: str) -> str:
    """NFKC, case-folded, Simplified Chinese: the form every document and query is read in."""
    return to_simplified(unicodedata.normalize("NFKC", text).casefold())


def stem(word: str) -> str:
    """A deliberately small English stemmer: plural, -ing and -ed endings only."""
    if not word.isascii() or not word.isalpha() or len(word) <= 3:
        return word
    for suffix, replacement, shortest in (
        ("ies", "y", 5),
        ("sses", "ss", 5),
        ("ing", "", 6),
        ("ed", "", 5),
        ("s", "", 4),
    ):
        if word.endswith(suffix) and len(word) >= shortest:
            if suffix == "s" and word.endswith(("ss", "us", "is")):
                return word
            return word[: len(word) - len(suffix)] + replacement
    return word


@dataclass(frozen=True)
class Token:
    kind: Literal["han", "word"]
    text: str


def tokens(text: str) -> list[Token]:
    """The tokens of already-normalised text: Han runs and stemmed words, in order."""
    found: list[Token] = []
    for match in TOKEN.finditer(text):
        han, word = match.groups()
        if han:
            found.append(Token("han", han))
        else:
            found.append(Token("word", stem(word)))
    return found


@lru_cache(maxsize=4096)
def bigrams(run: str) -> tuple[str, ...]:
    return tuple(run[i : i + 2] for i in range(len(run) - 1)) or (run,)


def index_terms(text: str) -> set[str]:
    """The terms a document is found by: each Han character and bigram, each stemmed word."""
    terms: set[str] = set()
    for token in tokens(normalise(text)):
        if token.kind == "han":
            terms.update(token.text)
            terms.update(bigrams(token.text))
        else:
            terms.add(token.text[:MAX_TERM])
    return terms


def lookup_terms(phrase: list[Token]) -> tuple[set[str], set[str]]:
    """What to look up for a query phrase: exact terms, and word prefixes."""
    exact: set[str] = set()
    prefixes: set[str] = set()
    for token in phrase:
        if token.kind == "han":
            exact.update(bigrams(token.text))
        else:
            exact.add(token.text[:MAX_TERM])
            if len(token.text) >= PREFIX_MIN:
                prefixes.add(token.text[:MAX_TERM])
    return exact, prefixes


@dataclass(frozen=True)
class FieldText:
    """One document field as search reads it: its Han text and its set of words."""

    han: str
    words: frozenset[str]

    @classmethod
    def of(cls, normalised: str) -> FieldText:
        found = tokens(normalised)
        return cls(
            han="".join(t.text for t in found if t.kind == "han"),
            words=frozenset(t.text for t in found if t.kind == "word"),
        )


def match_token(token: Token, field: FieldText) -> float:
    """How well one query token matches a field, from 0 to 1.

    Han: 1 when the field contains the run; otherwise the share of its bigrams the field
    contains, halved, when at least a third of them are there. Words: 1 for the same stem, 0.6
    when the query word (3+ letters) is a prefix of a field word.
    """
    if token.kind == "han":
        if token.text in field.han:
            return 1.0
        grams = bigrams(token.text)
        if len(grams) < 2:
            return 0.0
        share = sum(1 for g in grams if g in field.han) / len(grams)
        return round(0.5 * share, 4) if share * 3 >= 1 else 0.0
    if token.text in field.words:
        return 1.0
    if len(token.text) >= PREFIX_MIN and any(w.startswith(token.text) for w in field.words):
        return 0.6
    return 0.0


def match_phrase(phrase: Sequence[Token], field: FieldText) -> float:
    """Every token of the phrase must match; the phrase scores as its weakest token."""
    if not phrase:
        return 0.0
    return min(match_token(token, field) for token in phrase)
