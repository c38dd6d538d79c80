"""Ranked catalog search with facets, identical on SQLite and PostgreSQL.

The database holds an inverted index of plain terms (``search_terms``) and one normalised
document per dataset (``search_entries``); it only looks terms up. Scoring happens here,
in Python, over the candidates the index returned, so both databases give the same
scores and the same order.

Scoring: the query becomes *concepts* (one per word or Han run), each with alternatives —
itself, and the terms of any glossary group it names (weighted 0.8). A concept scores the
best of ``field weight × match`` over the dataset's fields (see ``WEIGHTS``; title
outweighs everything, so a title match ranks before a description match) and a dataset's
score is the sum over concepts. Ties order by title, then id.

Entries are rebuilt lazily: each search first rebuilds the entries whose ``stamp`` (what
they were built from) is out of date, so edits made by any process — metadata, contract,
a new version — are searchable at the next search.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from catalog.glossary import Concept, Glossary
from catalog.metadata import contract_columns
from catalog.metadata_models import DatasetMetadata, SearchEntry, SearchTerm
from catalog.models import Dataset, DatasetVersion, Organisation
from catalog.quality import bucket, summarise
from catalog.text_search import (
    FieldText,
    Token,
    index_terms,
    lookup_terms,
    match_phrase,
    normalise,
    tokens,
)

ANALYSER = "1"  # bump when the analyser or the entry layout changes: every entry is rebuilt
WEIGHTS: dict[str, float] = {
    "title": 10.0,
    "keywords": 6.0,
    "tags": 5.0,
    "columns": 3.0,
    "publisher": 2.0,
    "description": 2.0,
}
SYNONYM = 0.8
MAX_QUERY = 200
NON_PI = (None, "non_pi")


@dataclass(frozen=True)
class Filters:
    region: tuple[str, ...] = ()
    tag: tuple[str, ...] = ()
    classification: tuple[str, ...] = ()
    org: tuple[str, ...] = ()
    pi: bool | None = None
    quality: tuple[str, ...] = ()

    def accept(self, facets: Mapping[str, Any]) -> bool:
        return (
            (not self.region or facets["region"] in self.region)
            and (not self.tag or bool(set(self.tag) & set(facets["tags"])))
            and (not self.classification or facets["classification"] in self.classification)
            and (not self.org or facets["org"] in self.org)
            and (self.pi is None or facets["pi"] is self.pi)
            and (not self.quality or facets["quality"] in self.quality)
        )


@dataclass(frozen=True)
class Hit:
    dataset_id: str
    score: float
    matched: tuple[str, ...]
    facets: Mapping[str, Any]


@dataclass
class SearchResult:
    hits: list[Hit]
    total: int
    facets: dict[str, list[dict[str, Any]]]
    expanded: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Alternative:
    phrase: tuple[Token, ...]
    factor: float
    via: str | None = None  # glossary concept that supplied it


@dataclass(frozen=True)
class QueryConcept:
    text: str
    alternatives: tuple[Alternative, ...]


class CatalogSearch:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.glossary = Glossary(sessions)

    # index -------------------------------------------------------------------------------
    def refresh(self) -> int:
        """Rebuild stale entries; returns how many were rebuilt."""
        with self.sessions() as session:
            rows = session.execute(
                select(Dataset, Organisation, DatasetMetadata, SearchEntry.stamp)
                .join(Organisation, Organisation.id == Dataset.org_id)
                .outerjoin(DatasetMetadata, DatasetMetadata.dataset_id == Dataset.id)
                .outerjoin(SearchEntry, SearchEntry.dataset_id == Dataset.id)
            ).all()
        stale = [(d, o, m) for d, o, m, stamp in rows if stamp != _stamp(d, o, m)]
        for dataset, org, meta in stale:
            self._rebuild(dataset, org, meta)
        return len(stale)

    def _rebuild(self, dataset: Dataset, org: Organisation, meta: DatasetMetadata | None) -> None:
        version = None
        with self.sessions() as session:
            if dataset.current_version is not None:
                version = session.scalar(
                    select(DatasetVersion).where(
                        DatasetVersion.dataset_id == dataset.id,
                        DatasetVersion.version == dataset.current_version,
                    )
                )
        fields = document_fields(dataset, org, meta)
        facets = document_facets(dataset, org, meta, version)
        terms = set().union(*(index_terms(text) for text in fields.values()))
        normalised = {name: normalise(text) for name, text in fields.items()}
        title = (meta.title.get("en") if meta else None) or dataset.title or dataset.name
        entry = SearchEntry(
            dataset_id=dataset.id,
            stamp=_stamp(dataset, org, meta),
            fields=normalised,
            facets=facets,
            sort_key=normalise(title)[:300],
            quality_score=facets["quality_score"],
        )
        try:
            with self.sessions.begin() as session:
                session.execute(delete(SearchTerm).where(SearchTerm.dataset_id == dataset.id))
                session.execute(delete(SearchEntry).where(SearchEntry.dataset_id == dataset.id))
                session.add(entry)
                session.add_all(SearchTerm(dataset_id=dataset.id, term=t) for t in sorted(terms))
        except IntegrityError:
            pass  # another process rebuilt the same entry at the same moment: theirs stands

    # search ------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        *,
        visible: set[str],
        filters: Filters | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> SearchResult:
        """Datasets among ``visible`` that match ``query`` (all of them when it is empty)."""
        self.refresh()
        filters = filters or Filters()
        concepts = parse_query(query[:MAX_QUERY], self.glossary.concepts())
        candidates = self._candidates(concepts) if concepts else None
        ids = visible if candidates is None else visible & candidates
        entries = self._entries(ids)
        hits: list[tuple[Hit, str]] = []
        for entry in entries:
            if not filters.accept(entry.facets):
                continue
            score, matched = score_entry(concepts, entry.fields)
            if concepts and score <= 0:
                continue
            hits.append((Hit(entry.dataset_id, score, matched, entry.facets), entry.sort_key))
        hits.sort(key=lambda pair: (-pair[0].score, pair[1], pair[0].dataset_id))
        ranked = [hit for hit, _ in hits]
        return SearchResult(
            hits=ranked[offset : offset + limit],
            total=len(ranked),
            facets=count_facets(hit.facets for hit in ranked),
            expanded=[
                {"query": c.text, "synonyms": sorted({a.via or "" for a in c.alternatives} - {""})}
                for c in concepts
                if any(a.via for a in c.alternatives)
            ],
        )

    def _candidates(self, concepts: Sequence[QueryConcept]) -> set[str]:
        exact: set[str] = set()
        prefixes: set[str] = set()
        for concept in concepts:
            for alternative in concept.alternatives:
                e, p = lookup_terms(list(alternative.phrase))
                exact |= e
                prefixes |= p
        conditions = [SearchTerm.term.in_(sorted(exact))] if exact else []
        conditions += [SearchTerm.term.like(p + "%") for p in sorted(prefixes)]
        if not conditions:
            return set()
        with self.sessions() as session:
            return set(
                session.scalars(select(SearchTerm.dataset_id).where(or_(*conditions)).distinct())
            )

    def _entries(self, ids: set[str]) -> list[SearchEntry]:
        if not ids:
            return []
        with self.sessions() as session:
            return list(
                session.scalars(select(SearchEntry).where(SearchEntry.dataset_id.in_(sorted(ids))))
            )

    def entry(self, dataset_id: str) -> SearchEntry | None:
        self.refresh()
        with self.sessions() as session:
            return session.get(SearchEntry, dataset_id)


# documents -------------------------------------------------------------------------------
def _stamp(dataset: Dataset, org: Organisation, meta: DatasetMetadata | None) -> str:
    parts = [
        ANALYSER,
        dataset.contract_version,
        dataset.current_version,
        dataset.title,
        dataset.description,
        dataset.classification,
        dataset.region,
        org.name,
        meta.revision if meta is not None else 0,
    ]
    return hashlib.sha256(json.dumps(parts, ensure_ascii=False).encode()).hexdigest()


def document_fields(
    dataset: Dataset, org: Organisation, meta: DatasetMetadata | None
) -> dict[str, str]:
    """The raw text of each searchable field."""
    docs = meta.columns if meta is not None else {}
    column_text = []
    for column in contract_columns(dataset.contract):
        name = str(column.get("name"))
        column_text += [name, name.replace("_", " ")]
        column_text += [str(column[k]) for k in ("source", "description", "unit") if column.get(k)]
        column_text += list((docs.get(name) or {}).values())
    keywords = [w for words in (meta.keywords.values() if meta else []) for w in words]
    return {
        "title": " | ".join(
            [dataset.title, dataset.name.replace("_", " "), *(meta.title.values() if meta else [])]
        ),
        "keywords": " | ".join(keywords),
        "tags": " | ".join(meta.tags if meta else []),
        "columns": " | ".join(column_text),
        "publisher": " | ".join(
            [org.name, org.slug.replace("_", " "), *(meta.publisher.values() if meta else [])]
        ),
        "description": " | ".join(
            [dataset.description, *(meta.description.values() if meta else [])]
        ),
    }


def document_facets(
    dataset: Dataset,
    org: Organisation,
    meta: DatasetMetadata | None,
    version: DatasetVersion | None,
) -> dict[str, Any]:
    score = None
    if version is not None:
        score = summarise(
            version.gx_result, rows_read=version.rows_read, rows_rejected=version.rejected_count
        )["score"]
    return {
        "region": dataset.region,
        "classification": dataset.classification,
        "org": org.slug,
        "tags": list(meta.tags) if meta is not None else [],
        "pi": any(c.get("pi") not in NON_PI for c in contract_columns(dataset.contract)),
        "quality": bucket(score),
        "quality_score": score,
    }


# queries ---------------------------------------------------------------------------------
def parse_query(query: str, glossary: Iterable[Concept]) -> list[QueryConcept]:
    """The concepts of a query, each with its glossary alternatives."""
    query_tokens = tokens(normalise(query))
    groups = [
        (c.concept, [tuple(tokens(normalise(term))) for term, _lang in c.terms]) for c in glossary
    ]
    whole = tuple(query_tokens)
    if len(whole) > 1:
        for name, terms in groups:
            if whole in terms:
                alternatives = [Alternative(whole, 1.0)]
                alternatives += [Alternative(t, SYNONYM, name) for t in terms if t != whole]
                return [QueryConcept(query.strip(), _dedupe(alternatives))]
    return [
        QueryConcept(token.text, _dedupe([Alternative((token,), 1.0), *_synonyms(token, groups)]))
        for token in query_tokens
    ]


def _synonyms(
    token: Token, groups: Sequence[tuple[str, list[tuple[Token, ...]]]]
) -> list[Alternative]:
    found: list[Alternative] = []
    for name, terms in groups:
        for term in terms:
            if len(term) != 1 or term[0].kind != token.kind:
                continue
            if token.kind == "word" and term[0].text == token.text:
                found += [Alternative(other, SYNONYM, name) for other in terms if other != term]
            elif token.kind == "han" and term[0].text in token.text:
                for other in terms:
                    if other == term:
                        continue
                    if token.text == term[0].text:
                        found.append(Alternative(other, SYNONYM, name))
                    elif len(other) == 1 and other[0].kind == "han":
                        replaced = token.text.replace(term[0].text, other[0].text)
                        found.append(Alternative((Token("han", replaced),), SYNONYM, name))
    return found


def _dedupe(alternatives: Iterable[Alternative]) -> tuple[Alternative, ...]:
    best: dict[tuple[Token, ...], Alternative] = {}
    for alternative in alternatives:
        seen = best.get(alternative.phrase)
        if seen is None or alternative.factor > seen.factor:
            best[alternative.phrase] = alternative
    return tuple(best.values())


def score_entry(
    concepts: Sequence[QueryConcept], fields: Mapping[str, str]
) -> tuple[float, tuple[str, ...]]:
    texts = {name: FieldText.of(text) for name, text in fields.items()}
    total = 0.0
    matched: set[str] = set()
    for concept in concepts:
        best, where = 0.0, None
        for name, weight in WEIGHTS.items():
            text = texts.get(name)
            if text is None:
                continue
            for alternative in concept.alternatives:
                value = weight * alternative.factor * match_phrase(list(alternative.phrase), text)
                if value > best:
                    best, where = value, name
        total += best
        if where is not None:
            matched.add(where)
    return round(total, 4), tuple(name for name in WEIGHTS if name in matched)


def count_facets(facets: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    counters: dict[str, Counter[Any]] = {
        k: Counter() for k in ("region", "tag", "classification", "org", "pi", "quality")
    }
    for facet in facets:
        counters["region"][facet["region"]] += 1
        counters["classification"][facet["classification"]] += 1
        counters["org"][facet["org"]] += 1
        counters["pi"][facet["pi"]] += 1
        counters["quality"][facet["quality"]] += 1
        for tag in facet["tags"]:
            counters["tag"][tag] += 1
    return {
        name: [
            {"value": value, "count": count}
            for value, count in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))
        ]
        for name, counter in counters.items()
    }
