"""Descriptive dataset metadata: trilingual texts, tags, contact, column documentation.

Texts come in any subset of ``en``, ``zh-Hans`` and ``zh-Hant``. Every edit is validated
here (the gateway only shapes JSON) and bumps ``revision``; an edit naming a
``base_revision`` that is no longer current is refused, so two editors cannot silently
overwrite each other.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from catalog.errors import Conflict, InvalidInput, NotFound
from catalog.metadata_models import DatasetMetadata
from catalog.models import Dataset, utcnow
from catalog.registry import CLASSIFICATIONS

LANGS = ("en", "zh-Hans", "zh-Hant")
UPDATE_FREQUENCIES = (
    "continuous",
    "hourly",
    "daily",
    "weekly",
    "monthly",
    "quarterly",
    "annual",
    "irregular",
    "never",
)
TAG = re.compile(r"^[\w][\w .+/&-]{0,39}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,190}\.[^@\s]{2,}$")
URL = re.compile(r"^https://[^\s]{3,300}$")
PHONE = re.compile(r"^\+?[0-9 ()-]{6,24}$")
LIMITS = {"title": 300, "description": 8000, "publisher": 200, "keyword": 60, "column_doc": 2000}
MAX_KEYWORDS, MAX_TAGS = 30, 20
CONTACT_FIELDS = ("name", "email", "phone", "url")
DATASET_FIELDS = ("licence", "classification")
"""Edited on the dataset row itself (the search index and DCAT pick the change up)."""
EDITABLE = (
    "licence",
    "classification",
    "title",
    "description",
    "keywords",
    "publisher",
    "tags",
    "update_frequency",
    "contact",
    "columns",
    "discoverable",
)


class MetadataStore:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def get(self, dataset_id: str) -> DatasetMetadata | None:
        with self.sessions() as session:
            return session.get(DatasetMetadata, dataset_id)

    def all(self) -> dict[str, DatasetMetadata]:
        with self.sessions() as session:
            return {m.dataset_id: m for m in session.query(DatasetMetadata)}

    def update(
        self,
        dataset_id: str,
        changes: Mapping[str, Any],
        *,
        actor: str,
        base_revision: int | None = None,
    ) -> DatasetMetadata:
        """Apply a partial edit: each given field replaces the stored one, except ``columns``,
        which merges per column (a column mapped to null loses its documentation)."""
        with self.sessions.begin() as session:
            dataset = session.get(Dataset, dataset_id)
            if dataset is None:
                raise NotFound("dataset", dataset_id, "GET /v1/datasets lists datasets")
            row = session.get(DatasetMetadata, dataset_id, with_for_update=True)
            current = row.revision if row is not None else 0
            if base_revision is not None and base_revision != current:
                raise Conflict(
                    f"the metadata of dataset {dataset_id} is at revision {current}, not "
                    f"{base_revision}; GET it again and re-apply your edit",
                    dataset=dataset_id,
                    revision=current,
                )
            clean = validate(changes, contract_columns(dataset.contract))
            if row is None:
                row = DatasetMetadata(
                    dataset_id=dataset_id,
                    title={},
                    description={},
                    keywords={},
                    publisher={},
                    tags=[],
                    contact={},
                    columns={},
                    discoverable=True,
                    revision=0,
                )
                session.add(row)
            for key, value in clean.items():
                if key in DATASET_FIELDS:
                    setattr(dataset, key, value)
                elif key == "columns":
                    merged = {**row.columns, **value}
                    row.columns = {k: v for k, v in merged.items() if v}
                else:
                    setattr(row, key, value)
            row.revision = current + 1
            row.updated_by = actor
            row.updated_at = utcnow()
            session.flush()
            return row


def contract_columns(contract: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [dict(c) for c in contract.get("columns") or [] if isinstance(c, Mapping)]


def validate(changes: Mapping[str, Any], columns: list[dict[str, Any]]) -> dict[str, Any]:
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise InvalidInput(
            f"unknown metadata field(s) {', '.join(unknown)}; editable: {', '.join(EDITABLE)}",
            field=unknown[0],
        )
    checks = {
        "title": lambda v: _texts(v, "title", LIMITS["title"]),
        "description": lambda v: _texts(v, "description", LIMITS["description"]),
        "publisher": lambda v: _texts(v, "publisher", LIMITS["publisher"]),
        "keywords": _keywords,
        "tags": _tags,
        "update_frequency": _frequency,
        "contact": _contact,
        "columns": lambda v: _column_docs(v, columns),
        "discoverable": _flag,
        "licence": lambda v: _text(v, "licence", 100),
        "classification": _classification,
    }
    return {key: checks[key](value) for key, value in changes.items()}


def _language(lang: object, field: str) -> str:
    if lang not in LANGS:
        raise InvalidInput(
            f"{field}: language {lang!r} is not supported; use {', '.join(LANGS)}", field=field
        )
    return str(lang)


def _text(value: object, field: str, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text", field=field)
    text = value.strip()
    if len(text) > limit:
        raise InvalidInput(f"{field} is {len(text)} characters; at most {limit}", field=field)
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in text) or "\u202e" in text:
        raise InvalidInput(f"{field} holds control characters; remove them", field=field)
    return text


def _texts(value: object, field: str, limit: int) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidInput(
            f'{field} must map languages to text, e.g. {{"en": "…", "zh-Hans": "…"}}', field=field
        )
    out = {
        _language(lang, field): _text(text, f"{field}.{lang}", limit)
        for lang, text in value.items()
    }
    return {lang: text for lang, text in out.items() if text}


def _keywords(value: object) -> dict[str, list[str]]:
    if not isinstance(value, Mapping):
        raise InvalidInput('keywords must map languages to lists, e.g. {"en": ["energy"]}')
    out: dict[str, list[str]] = {}
    for lang, words in value.items():
        lang = _language(lang, "keywords")
        if not isinstance(words, list) or len(words) > MAX_KEYWORDS:
            raise InvalidInput(
                f"keywords.{lang} must be a list of at most {MAX_KEYWORDS} keywords",
                field="keywords",
            )
        cleaned = [_text(w, f"keywords.{lang}", LIMITS["keyword"]) for w in words]
        out[lang] = list(dict.fromkeys(w for w in cleaned if w))
    return {lang: words for lang, words in out.items() if words}


def _tags(value: object) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_TAGS:
        raise InvalidInput(f"tags must be a list of at most {MAX_TAGS} tags", field="tags")
    tags = []
    for tag in value:
        if not isinstance(tag, str) or not TAG.match(tag.strip().lower()):
            raise InvalidInput(
                f"tag {tag!r}: 1–40 letters, digits, spaces or . + / & - (lower-cased)",
                field="tags",
            )
        tags.append(tag.strip().lower())
    return list(dict.fromkeys(tags))


def _frequency(value: object) -> str | None:
    if value is None:
        return None
    if value not in UPDATE_FREQUENCIES:
        raise InvalidInput(
            f"update_frequency {value!r}; use one of {', '.join(UPDATE_FREQUENCIES)}",
            field="update_frequency",
        )
    return str(value)


def _contact(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise InvalidInput("contact must be an object with name, email, phone, url")
    unknown = sorted(set(value) - set(CONTACT_FIELDS))
    if unknown:
        raise InvalidInput(
            f"contact: unknown field(s) {', '.join(unknown)}; use {', '.join(CONTACT_FIELDS)}",
            field="contact",
        )
    out = {k: _text(v, f"contact.{k}", 200) for k, v in value.items() if v}
    for key, pattern, example in (
        ("email", EMAIL, "data-desk@example.com"),
        ("url", URL, "https://example.com/data"),
        ("phone", PHONE, "+852 2123 4567"),
    ):
        if key in out and not pattern.match(out[key]):
            raise InvalidInput(
                f"contact.{key} {out[key]!r} is not valid; e.g. {example}", field=f"contact.{key}"
            )
    return out


def _column_docs(value: object, columns: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    if not isinstance(value, Mapping):
        raise InvalidInput('columns must map column names to texts, e.g. {"kwh": {"en": "…"}}')
    known = [str(c.get("name")) for c in columns]
    out: dict[str, dict[str, str]] = {}
    for name, docs in value.items():
        if name not in known:
            raise InvalidInput(
                f"column {name!r} is not in the dataset's contract; its columns: "
                f"{', '.join(known) or 'none'}",
                field=f"columns.{name}",
            )
        out[str(name)] = {} if docs is None else _texts(docs, f"columns.{name}", 2000)
    return out


def _classification(value: object) -> str:
    if value not in CLASSIFICATIONS:
        raise InvalidInput(
            f"classification {value!r}; use one of {', '.join(CLASSIFICATIONS)}",
            field="classification",
        )
    return str(value)


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput("discoverable must be true or false", field="discoverable")
    return value


def card(dataset: Dataset, meta: DatasetMetadata | None) -> dict[str, Any]:
    """The metadata fields of a dataset as the API shows them (defaults when never edited)."""
    columns = contract_columns(dataset.contract)
    docs = meta.columns if meta is not None else {}
    return {
        "title": dict(meta.title) if meta is not None else {},
        "description": dict(meta.description) if meta is not None else {},
        "keywords": dict(meta.keywords) if meta is not None else {},
        "publisher": dict(meta.publisher) if meta is not None else {},
        "tags": list(meta.tags) if meta is not None else [],
        "update_frequency": meta.update_frequency if meta is not None else None,
        "contact": dict(meta.contact) if meta is not None else {},
        "discoverable": meta.discoverable if meta is not None else True,
        "revision": meta.revision if meta is not None else 0,
        "updated_by": meta.updated_by if meta is not None else None,
        "updated_at": meta.updated_at if meta is not None else None,
        "columns": [
            {
                "name": str(c.get("name")),
                "type": c.get("type", "string"),
                "source": c.get("source"),
                "unit": c.get("unit"),
                "pi": c.get("pi"),
                "description": c.get("description"),
                "doc": dict(docs.get(str(c.get("name"))) or {}),
            }
            for c in columns
        ],
    }
