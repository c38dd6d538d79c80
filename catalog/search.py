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
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, insert, or_, select
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

ANALYSER = "2"  # bump when the analyser or the entry layout changes: every entry is rebuilt
WEIGHTS: dict[str, float] = {
    "title": 10.0,
    "keywords": 6.0,
    "tags": 5.0,
    "columns": 3.0,
    "publisher": 2.0,
    "description": 2.0,
}
SYNONYM = 0.8
REBUILD_BATCH = 200
IN_BATCH = 500  # ids per IN (...) list
PARSED_CACHE = 50_000
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


Listing = tuple[Dataset, Organisation, DatasetMetadata | None]


@dataclass(frozen=True)
class Parsed:
    """A search entry ready for scoring."""

    dataset_id: str
    fields: dict[str, FieldText]
    facets: dict[str, Any]
    sort_key: str

    @classmethod
    def of(cls, entry: SearchEntry) -> Parsed:
        fields = {
            name: FieldText(str(f["han"]), frozenset(f["words"]))
            for name, f in entry.fields.items()
        }
        return cls(entry.dataset_id, fields, dict(entry.facets), entry.sort_key)


_PARSED: OrderedDict[tuple[str, str], Parsed] = OrderedDict()
_PARSED_LOCK = threading.Lock()  # requests search from several threads
"""Parsed entries by (dataset id, stamp): an entry with the same stamp is the same entry, so
the cache never serves stale text; bounded by ``PARSED_CACHE`` (least recently used out)."""


class CatalogSearch:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions
        self.glossary = Glossary(sessions)

    # index -------------------------------------------------------------------------------
    def refresh(self) -> int:
        """Rebuild stale entries (in batches); returns how many were rebuilt."""
        with self.sessions() as session:
            rows = session.execute(
                select(
                    Dataset.id,
                    Dataset.contract_version,
                    Dataset.current_version,
                    Dataset.title,
                    Dataset.description,
                    Dataset.classification,
                    Dataset.region,
                    Organisation.name,
                    DatasetMetadata.revision,
                    SearchEntry.stamp,
                )
                .join(Organisation, Organisation.id == Dataset.org_id)
                .outerjoin(DatasetMetadata, DatasetMetadata.dataset_id == Dataset.id)
                .outerjoin(SearchEntry, SearchEntry.dataset_id == Dataset.id)
            ).all()
            stale_ids = [row[0] for row in rows if row[-1] != _stamp_of(*row[1:-1])]
            stale = []
            for start in range(0, len(stale_ids), REBUILD_BATCH):
                chunk = stale_ids[start : start + REBUILD_BATCH]
                stale += [
                    (row[0], row[1], row[2])
                    for row in session.execute(
                        select(Dataset, Organisation, DatasetMetadata)
                        .join(Organisation, Organisation.id == Dataset.org_id)
                        .outerjoin(DatasetMetadata, DatasetMetadata.dataset_id == Dataset.id)
                        .where(Dataset.id.in_(chunk))
                    ).all()
                ]
        for start in range(0, len(stale), REBUILD_BATCH):
            self._rebuild(stale[start : start + REBUILD_BATCH])
        return len(stale)

    def _rebuild(
        self, batch: Sequence[tuple[Dataset, Organisation, DatasetMetadata | None]]
    ) -> None:
        scores = self._quality_scores([d for d, _o, _m in batch])
        entries, terms = [], []
        for dataset, org, meta in batch:
            entry, found = build_entry(dataset, org, meta, scores.get(dataset.id))
            entries.append(entry)
            terms += [{"dataset_id": dataset.id, "term": t} for t in sorted(found)]
        ids = [d.id for d, _o, _m in batch]
        try:
            with self.sessions.begin() as session:
                session.execute(delete(SearchTerm).where(SearchTerm.dataset_id.in_(ids)))
                session.execute(delete(SearchEntry).where(SearchEntry.dataset_id.in_(ids)))
                session.add_all(entries)
                session.flush()
                if terms:
                    session.execute(insert(SearchTerm), terms)
        except IntegrityError:
            if len(batch) > 1:  # another process rebuilt some of them meanwhile: one by one
                for one in batch:
                    self._rebuild([one])
            # a single entry rebuilt concurrently by another process: theirs stands

    def _quality_scores(self, datasets: Sequence[Dataset]) -> dict[str, float | None]:
        """The current version's quality score of each dataset that has one."""
        ids = sorted(d.id for d in datasets if d.current_version is not None)
        if not ids:
            return {}
        with self.sessions() as session:
            rows = session.execute(
                select(
                    DatasetVersion.dataset_id,
                    DatasetVersion.gx_result,
                    DatasetVersion.rows_read,
                    DatasetVersion.rejected_count,
                )
                .join(
                    Dataset,
                    and_(
                        Dataset.id == DatasetVersion.dataset_id,
                        Dataset.current_version == DatasetVersion.version,
                    ),
                )
                .where(Dataset.id.in_(ids))
            ).all()
        return {
            row[0]: summarise(row[1], rows_read=row[2], rows_rejected=row[3])["score"]
            for row in rows
        }

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
            score, matched = score_fields(concepts, entry.fields)
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

    def _entries(self, ids: set[str]) -> list[Parsed]:
        """The entries of ``ids``, parsed; unchanged entries come from the process cache."""
        if not ids:
            return []
        found: list[Parsed] = []
        missing: list[str] = []
        with self.sessions() as session:
            wanted = sorted(ids)
            for start in range(0, len(wanted), IN_BATCH):
                chunk = wanted[start : start + IN_BATCH]
                for dataset_id, stamp in session.execute(
                    select(SearchEntry.dataset_id, SearchEntry.stamp).where(
                        SearchEntry.dataset_id.in_(chunk)
                    )
                ).all():
                    with _PARSED_LOCK:
                        cached = _PARSED.get((dataset_id, stamp))
                        if cached is not None:
                            _PARSED.move_to_end((dataset_id, stamp))
                    if cached is None:
                        missing.append(dataset_id)
                    else:
                        found.append(cached)
            for start in range(0, len(missing), IN_BATCH):
                chunk = missing[start : start + IN_BATCH]
                for entry in session.scalars(
                    select(SearchEntry).where(SearchEntry.dataset_id.in_(chunk))
                ):
                    parsed = Parsed.of(entry)
                    found.append(parsed)
                    with _PARSED_LOCK:
                        _PARSED[(entry.dataset_id, entry.stamp)] = parsed
        with _PARSED_LOCK:
            while len(_PARSED) > PARSED_CACHE:
                _PARSED.popitem(last=False)
        return found

    def entry(self, dataset_id: str) -> SearchEntry | None:
        self.refresh()
        with self.sessions() as session:
            return session.get(SearchEntry, dataset_id)


# documents -------------------------------------------------------------------------------
def _stamp(dataset: Dataset, org: Organisation, meta: DatasetMetadata | None) -> str:
    return _stamp_of(
        dataset.contract_version,
        dataset.current_version,
        dataset.title,
        dataset.description,
        dataset.classification,
        dataset.region,
        org.name,
        meta.revision if meta is not None else None,
    )


def _stamp_of(*parts: Any) -> str:
    """What an entry was built from (contract version, current version, title, description,
    classification, region, organisation name, metadata revision), hashed."""
    values = [ANALYSER, *parts[:-1], parts[-1] or 0]
    return hashlib.sha256(json.dumps(values, ensure_ascii=False).encode()).hexdigest()


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


def build_entry(
    dataset: Dataset, org: Organisation, meta: DatasetMetadata | None, score: float | None
) -> tuple[SearchEntry, set[str]]:
    """A dataset's search entry (fields stored analysed: Han text and stemmed words) and
    its index terms."""
    fields = document_fields(dataset, org, meta)
    terms = set().union(*(index_terms(text) for text in fields.values()))
    analysed = {}
    for name, text in fields.items():
        field_text = FieldText.of(normalise(text))
        analysed[name] = {"han": field_text.han, "words": sorted(field_text.words)}
    facets = document_facets(dataset, org, meta, score)
    title = (meta.title.get("en") if meta else None) or dataset.title or dataset.name
    entry = SearchEntry(
        dataset_id=dataset.id,
        stamp=_stamp(dataset, org, meta),
        fields=analysed,
        facets=facets,
        sort_key=normalise(title)[:300],
        quality_score=score,
    )
    return entry, terms


def document_facets(
    dataset: Dataset, org: Organisation, meta: DatasetMetadata | None, score: float | None
) -> dict[str, Any]:
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
    return tuple(sorted(best.values(), key=lambda a: -a.factor))


def score_entry(
    concepts: Sequence[QueryConcept], fields: Mapping[str, Any]
) -> tuple[float, tuple[str, ...]]:
    """Score stored (analysed) fields: ``{"han": …, "words": [...]}`` per field."""
    return score_fields(concepts, field_texts(fields))


def field_texts(fields: Mapping[str, Any]) -> dict[str, FieldText]:
    return {name: FieldText(str(f["han"]), frozenset(f["words"])) for name, f in fields.items()}


def score_fields(
    concepts: Sequence[QueryConcept], texts: Mapping[str, FieldText]
) -> tuple[float, tuple[str, ...]]:
    """Sum over concepts of the best ``weight × factor × match`` over fields and alternatives.

    Fields are tried by falling weight and alternatives by falling factor, and the search
    stops once nothing left can beat the best found: the result equals the full maximum."""
    total = 0.0
    matched: set[str] = set()
    for concept in concepts:
        best, where = 0.0, None
        for name, weight in WEIGHTS.items():
            if best >= weight:  # no later field (lower weight) can do better
                break
            text = texts.get(name)
            if text is None:
                continue
            for alternative in concept.alternatives:
                ceiling = weight * alternative.factor
                if ceiling <= best:
                    break
                value = ceiling * match_phrase(alternative.phrase, text)
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
