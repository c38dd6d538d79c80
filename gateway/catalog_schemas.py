"""Request and response models of the catalog API (metadata, search, glossary, quality,
lineage). Kept apart from ``gateway.schemas`` so the catalog's shapes read in one place."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Lang = Literal["en", "zh-Hans", "zh-Hant"]
Texts = dict[Lang, str]


class UpdateFrequency(StrEnum):
    CONTINUOUS = "continuous"
    HOURLY = "hourly"
    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    ANNUAL = "annual"
    IRREGULAR = "irregular"
    NEVER = "never"


class Contact(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    url: str | None = Field(default=None, max_length=300, description="https:// only.")


class MetadataUpdate(BaseModel):
    """``PATCH /v1/datasets/{id}/metadata``: every field given replaces the stored one;
    ``columns`` merges per column (null removes a column's documentation)."""

    model_config = ConfigDict(extra="forbid")

    title: Texts | None = Field(default=None, description='{"en": …, "zh-Hans": …, "zh-Hant": …}')
    description: Texts | None = None
    keywords: dict[Lang, list[str]] | None = None
    publisher: Texts | None = Field(
        default=None, description="The owner organisation's name per language."
    )
    tags: list[str] | None = Field(default=None, max_length=20)
    update_frequency: UpdateFrequency | None = None
    contact: Contact | None = None
    columns: dict[str, Texts | None] | None = Field(
        default=None, description="Column name → documentation per language."
    )
    discoverable: bool | None = Field(
        default=None,
        description="false: only the owner, grant holders, the region's stewards and admins "
        "see the dataset in listings, search and DCAT.",
    )
    licence: str | None = Field(default=None, max_length=100, description="e.g. CC-BY-4.0")
    classification: Literal["public", "internal", "restricted", "personal", "important"] | None = (
        Field(default=None, description="Stewards of the dataset's region and admins only.")
    )
    base_revision: int | None = Field(
        default=None, ge=0, description="The revision this edit starts from; 409 if stale."
    )


class ColumnDoc(BaseModel):
    name: str
    type: str
    source: str | None
    unit: str | None
    pi: str | None
    description: str | None = Field(description="From the data contract.")
    doc: dict[str, str] = Field(description="Documentation per language (metadata).")


class MetadataOut(BaseModel):
    dataset_id: str
    sql_name: str
    org: str
    region: str
    classification: str
    licence: str
    title: dict[str, str]
    description: dict[str, str]
    keywords: dict[str, list[str]]
    publisher: dict[str, str]
    tags: list[str]
    update_frequency: str | None
    contact: dict[str, str]
    discoverable: bool
    columns: list[ColumnDoc]
    revision: int
    updated_by: str | None
    updated_at: datetime | None


class Access(StrEnum):
    OWNER = "owner"  # the caller's organisation provides it
    GRANTED = "granted"  # the caller's organisation holds a live grant
    NONE = "none"  # metadata only: request access with POST /v1/access-requests


class QualityBrief(BaseModel):
    score: float | None = Field(description="Share of the version's rows that passed, 0–100.")
    bucket: Literal["high", "medium", "low", "unknown"]


class SearchHit(BaseModel):
    dataset_id: str
    sql_name: str
    org: str
    name: str
    title: str = Field(description="The dataset's registered title.")
    titles: dict[str, str] = Field(description="Title per language (metadata).")
    description: dict[str, str]
    region: str
    classification: str
    tags: list[str]
    pi: bool = Field(description="Some column holds personal information (or is unclassified).")
    quality: QualityBrief
    current_version: int | None
    access: Access
    score: float
    matched: list[str] = Field(description="Fields the query matched, best first.")


class FacetValue(BaseModel):
    value: Any
    count: int


class SearchPage(BaseModel):
    query: str
    total: int
    offset: int
    limit: int
    hits: list[SearchHit]
    facets: dict[str, list[FacetValue]]
    expanded: list[dict[str, Any]] = Field(
        description="Query words the glossary expanded, with the concepts used."
    )


class GlossaryTermIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    term: str = Field(min_length=1, max_length=100)
    lang: Lang


class GlossaryUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    terms: list[GlossaryTermIn] = Field(min_length=2, max_length=50)


class GlossaryConcept(BaseModel):
    concept: str
    terms: list[GlossaryTermIn]


class VersionDiff(BaseModel):
    dataset_id: str
    from_version: int
    to_version: int
    schema_: dict[str, Any] = Field(alias="schema")
    row_count: dict[str, Any]
    quality: dict[str, Any]
    columns: dict[str, Any] = Field(
        description="Per common column: count, nulls, distinct_estimate (and min, max, mean "
        "for columns whose values the caller may read) as {from, to, delta}."
    )

    model_config = ConfigDict(populate_by_name=True)


class QualityTrend(BaseModel):
    dataset_id: str
    points: list[dict[str, Any]]
    latest: float | None
    best: float | None
    worst: float | None
    direction: Literal["improving", "declining", "flat"]
    current: dict[str, Any] | None = Field(description="The current version's full summary.")


class LineageGraph(BaseModel):
    root: str
    nodes: list[dict[str, Any]]
    edges: list[dict[str, str]]
