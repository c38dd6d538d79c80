"""The catalog's generation: a number the database raises with every change to the rows a
query's decision reads, and a cache of those rows that is only ever used at the generation
it was read at.

Triggers (migration 0011) add one to ``catalog_generation.value`` in the same transaction
as any INSERT, UPDATE or DELETE on a ``WATCHED`` table, however the change is made: the
API, the CLI, an ingest worker on another machine, or SQL typed by an operator. A request
reads the generation once (``GenerationCache.snapshot``); rows cached at that generation
are still the rows in the database, and anything missing is read and kept for the next
request. A change ends every cached row at once: the next snapshot sees a new number.

Reading the generation *before* the rows keeps the cache from holding rows older than
their key: a change committed in between gives rows newer than the key, which the next
snapshot (at the new number) does not use.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Engine, select

from catalog.models import CatalogGenerationRow

WATCHED = (
    "organisations",
    "datasets",
    "dataset_versions",
    "dataset_governance",
    "transfer_instruments",
    "grants",
    "dataset_metadata",
)
"""Tables whose changes raise the generation (see migration 0011)."""

_CURRENT = select(CatalogGenerationRow.value).where(CatalogGenerationRow.id == 1)
DEFAULT_MAX_ENTRIES = 5_000
_ABSENT = object()  # not in the cache (a key the database lacks is cached, as None)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class CatalogGeneration:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def current(self) -> int:
        with self._engine.connect() as connection:
            value = connection.execute(_CURRENT).scalar_one()
        return int(value)


class GenerationCache:
    """Rows by (kind, key), valid for one generation; thread-safe. Holds at most
    ``max_entries`` keys (then starts again empty). ``generation=None`` turns it off:
    every snapshot reads through."""

    def __init__(
        self, generation: CatalogGeneration | None, *, max_entries: int = DEFAULT_MAX_ENTRIES
    ) -> None:
        self._generation = generation
        self._max_entries = max_entries
        self._lock = threading.Lock()
        self._at: int | None = None
        self._rows: dict[tuple[str, Hashable], Any] = {}
        self.hits = 0
        self.misses = 0

    def snapshot(self) -> Snapshot:
        """A view at the generation the database reports now (one small read)."""
        if self._generation is None:
            return Snapshot(self, None)
        at = self._generation.current()
        with self._lock:
            if self._at is None or at > self._at:
                self._at, self._rows = at, {}
        return Snapshot(self, at)

    def _lookup(self, at: int | None, kind: str, keys: list[K]) -> tuple[dict[K, Any], list[K]]:
        found: dict[K, Any] = {}
        missing: list[K] = []
        with self._lock:
            usable = at is not None and at == self._at
            for key in keys:
                row = self._rows.get((kind, key), _ABSENT) if usable else _ABSENT
                if row is _ABSENT:
                    missing.append(key)
                else:
                    found[key] = row
            self.hits += len(found)
            self.misses += len(missing)
        return found, missing

    def _store(self, at: int | None, kind: str, rows: Mapping[K, Any]) -> None:
        with self._lock:
            if at is None or at != self._at:
                return  # a newer generation was seen meanwhile: these rows may be stale
            if len(self._rows) + len(rows) > self._max_entries:
                self._rows = {}
            for key, row in rows.items():
                self._rows[(kind, key)] = row


class Snapshot:
    """The cache at one generation, for the reads of one request."""

    def __init__(self, cache: GenerationCache, at: int | None) -> None:
        self._cache, self.at = cache, at

    def get_many(
        self, kind: str, keys: Iterable[K], load: Callable[[list[K]], Mapping[K, V]]
    ) -> dict[K, V]:
        """``load(keys)`` for the keys not cached at this generation, in one call; the
        answer for every key (a key ``load`` left out is absent here too, and cached so)."""
        wanted: list[K] = list(dict.fromkeys(keys))
        found, missing = self._cache._lookup(self.at, kind, wanted)
        if missing:
            loaded = load(missing)
            fresh: dict[K, V | None] = {key: loaded.get(key) for key in missing}
            self._cache._store(self.at, kind, fresh)
            found.update(fresh)
        return {key: value for key in wanted if (value := found.get(key)) is not None}

    def get(self, kind: str, key: K, load: Callable[[list[K]], Mapping[K, V]]) -> V | None:
        return self.get_many(kind, [key], load).get(key)
