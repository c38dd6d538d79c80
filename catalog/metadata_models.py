"""Tables of the discovery catalog: dataset metadata, the search index and the glossary.

Migration ``0008`` creates them; ``catalog.models`` imports this module so that
``Base.metadata`` (and the migration check) knows them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from catalog.models import Base, new_id, utcnow


class DatasetMetadata(Base):
    """Descriptive metadata a provider edits; ``revision`` counts edits (optimistic locking)."""

    __tablename__ = "dataset_metadata"

    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    title: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {lang: text}
    description: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {lang: text}
    keywords: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {lang: [text]}
    publisher: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {lang: owner org name}
    tags: Mapped[list[Any]] = mapped_column(default=list)
    update_frequency: Mapped[str | None] = mapped_column(String(16), default=None)
    contact: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {name, email, phone, url}
    columns: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {column: {lang: text}}
    discoverable: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_by: Mapped[str] = mapped_column(String(64), default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SearchEntry(Base):
    """One dataset's search document: analysed field texts and facet values.

    ``stamp`` records what the entry was built from (contract version, metadata revision,
    current version, title, organisation name); a search rebuilds entries whose stamp no
    longer matches, so the index follows edits made anywhere.
    """

    __tablename__ = "search_entries"

    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    stamp: Mapped[str] = mapped_column(String(512))
    fields: Mapped[dict[str, Any]] = mapped_column()  # {field: {"han", "words"}} analysed
    facets: Mapped[dict[str, Any]] = mapped_column()
    sort_key: Mapped[str] = mapped_column(String(300))
    quality_score: Mapped[float | None] = mapped_column(Float, default=None)
    built_at: Mapped[datetime] = mapped_column(default=utcnow)


class SearchTerm(Base):
    """The inverted index: which datasets contain a term (Han character/bigram or word)."""

    __tablename__ = "search_terms"
    __table_args__ = (Index("ix_search_terms_term", "term"),)

    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id"), primary_key=True)
    term: Mapped[str] = mapped_column(String(64), primary_key=True)


class GlossaryTerm(Base):
    """One term of a synonym group (``concept``); a query naming one finds all of them."""

    __tablename__ = "glossary_terms"
    __table_args__ = (UniqueConstraint("concept", "normalised", name="uq_glossary_concept_term"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    concept: Mapped[str] = mapped_column(String(64), index=True)
    term: Mapped[str] = mapped_column(String(100))
    lang: Mapped[str] = mapped_column(String(8))
    normalised: Mapped[str] = mapped_column(String(200))
    created_by: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
