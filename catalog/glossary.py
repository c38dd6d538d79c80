"""The glossary: editable groups of domain synonyms (能耗 / 能源 / energy / 用电量 …).

A group is a ``concept`` (a slug such as ``energy``) and its terms, each tagged with its
language. Search expands a query that names one term of a group with the others. The
seed groups come from ``catalog/glossary_seed.json`` (migration 0008); stewards and
admins edit them through the API.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import Conflict, InvalidInput, NotFound
from catalog.metadata import LANGS
from catalog.metadata_models import GlossaryTerm
from catalog.text_search import normalise, tokens

CONCEPT = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
MAX_TERMS = 50


@dataclass(frozen=True)
class Concept:
    concept: str
    terms: tuple[tuple[str, str], ...]  # (term, lang)


class Glossary:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def concepts(self) -> list[Concept]:
        with self.sessions() as session:
            rows = session.scalars(
                select(GlossaryTerm).order_by(GlossaryTerm.concept, GlossaryTerm.term)
            ).all()
        grouped: dict[str, list[tuple[str, str]]] = {}
        for row in rows:
            grouped.setdefault(row.concept, []).append((row.term, row.lang))
        return [Concept(name, tuple(terms)) for name, terms in grouped.items()]

    def get(self, concept: str) -> Concept:
        found = [c for c in self.concepts() if c.concept == concept]
        if not found:
            raise NotFound("glossary concept", concept, "GET /v1/catalog/glossary lists them")
        return found[0]

    def replace(self, concept: str, terms: Sequence[tuple[str, str]], *, actor: str) -> Concept:
        """Make ``terms`` the whole group ``concept`` (created when new)."""
        if not CONCEPT.match(concept):
            raise InvalidInput(
                f"concept {concept!r} must match [a-z][a-z0-9_]{{1,63}}", field="concept"
            )
        if not 2 <= len(terms) <= MAX_TERMS:
            raise InvalidInput(
                f"a synonym group needs 2 to {MAX_TERMS} terms; got {len(terms)}", field="terms"
            )
        rows: dict[str, GlossaryTerm] = {}
        for term, lang in terms:
            text = term.strip()
            if lang not in LANGS:
                raise InvalidInput(
                    f"term {term!r}: language {lang!r}; use {', '.join(LANGS)}", field="terms"
                )
            if not text or len(text) > 100 or not tokens(normalise(text)):
                raise InvalidInput(
                    f"term {term!r} must hold 1–100 characters with letters, digits or Han",
                    field="terms",
                )
            key = normalise(text)
            rows.setdefault(
                key,
                GlossaryTerm(
                    concept=concept, term=text, lang=lang, normalised=key, created_by=actor
                ),
            )
        with self.sessions.begin() as session:
            session.execute(delete(GlossaryTerm).where(GlossaryTerm.concept == concept))
            session.add_all(rows.values())
            try:
                session.flush()
            except IntegrityError:
                raise Conflict(
                    f"glossary concept {concept} was edited concurrently; try again",
                    concept=concept,
                ) from None
        return Concept(concept, tuple((r.term, r.lang) for r in rows.values()))

    def delete(self, concept: str) -> None:
        with self.sessions.begin() as session:
            gone = session.execute(delete(GlossaryTerm).where(GlossaryTerm.concept == concept))
        if not getattr(gone, "rowcount", 0):
            raise NotFound("glossary concept", concept, "GET /v1/catalog/glossary lists them")
