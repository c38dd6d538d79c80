"""``govern`` memoised for repeated SQL: the checks are skipped, the decisions never are.

Dashboards, notebooks and BI tools send the same SQL again and again, and parsing,
qualifying, rewriting and rendering it is most of the gateway's work for a query: 7-35 ms
of CPU for each TPC-H query on this machine. ``govern`` is a pure function of its
arguments and of what the resolver returns for the tables it names, so ``GovernCache``
records the resolver calls of a successful run (arguments and returned sources, in
order). When the same SQL comes again with the same limits and mask key it *replays*
those calls against the caller's live resolver - every grant, expiry, mask, row filter,
version pin and cross-boundary decision is taken again, with its side effects on the
caller's ``QueryDecisions`` - and returns the stored result only when every source equals
the recorded one. Anything else (another source, an exception, a different caller whose
decisions differ) runs ``govern`` in full, so a refusal and its message are exactly those
of an uncached run. Only successes are stored; nothing of the client's text is trusted
that an uncached run would not have trusted.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from policies.masking import MaskKey
from policies.model import GovernedQuery, GovernedSource
from policies.rewrite import DEFAULT_MAX_SQL_BYTES, Resolver, govern

DEFAULT_CACHE_ENTRIES = 512
# A governed query holds its sources' file lists, and clients choose the SQL: the texts
# kept are capped in total (least recently used out first), and per entry.
DEFAULT_CACHE_CHARS = 16 << 20
MAX_CACHED_SQL_CHARS = 1 << 20

_Call = tuple[str | None, str, int | None]
_Key = tuple[str, int, int, MaskKey | None]


@dataclass(frozen=True)
class _Entry:
    calls: tuple[tuple[_Call, GovernedSource], ...]
    query: GovernedQuery


class _Recording:
    """A resolver that remembers what it was asked and what it answered."""

    def __init__(self, resolve: Resolver) -> None:
        self.resolve = resolve
        self.calls: list[tuple[_Call, GovernedSource]] = []

    def __call__(self, org: str | None, name: str, *, version: int | None = None) -> GovernedSource:
        source = self.resolve(org, name, version=version)
        self.calls.append(((org, name, version), source))
        return source


class GovernCache:
    """An LRU of governed queries keyed by the SQL text, limits and mask key; thread-safe."""

    def __init__(
        self, entries: int = DEFAULT_CACHE_ENTRIES, *, max_chars: int = DEFAULT_CACHE_CHARS
    ) -> None:
        if entries < 0:
            raise ValueError(f"entries must be >= 0, got {entries}")
        self.entries = entries
        self.max_chars = max_chars
        self._lock = threading.Lock()
        self._cache: OrderedDict[_Key, _Entry] = OrderedDict()
        self._chars = 0  # SQL text held: the client's and the governed, of every entry
        self.hits = 0
        self.misses = 0

    def govern(
        self,
        sql: str,
        resolve: Resolver,
        *,
        max_rows: int,
        max_sql_bytes: int = DEFAULT_MAX_SQL_BYTES,
        mask_key: MaskKey | None = None,
    ) -> GovernedQuery:
        """``policies.rewrite.govern``, with the same result and the same errors."""
        key: _Key = (sql, max_rows, max_sql_bytes, mask_key)
        with self._lock:
            entry = self._cache.get(key)
        if entry is not None and _replays(entry, resolve):
            with self._lock:
                self.hits += 1
                if key in self._cache:
                    self._cache.move_to_end(key)
            return entry.query
        recording = _Recording(resolve)
        query = govern(
            sql, recording, max_rows=max_rows, max_sql_bytes=max_sql_bytes, mask_key=mask_key
        )
        size = _size(sql, query)
        with self._lock:
            self.misses += 1
            if self.entries and size <= min(MAX_CACHED_SQL_CHARS, self.max_chars):
                old = self._cache.pop(key, None)
                if old is not None:
                    self._chars -= _size(key[0], old.query)
                self._cache[key] = _Entry(tuple(recording.calls), query)
                self._chars += size
                while len(self._cache) > self.entries or self._chars > self.max_chars:
                    evicted_key, evicted = self._cache.popitem(last=False)
                    self._chars -= _size(evicted_key[0], evicted.query)
        return query

    @property
    def chars(self) -> int:
        """SQL text held now (the client's and the governed, of every entry)."""
        return self._chars

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self._chars = 0


def _size(sql: str, query: GovernedQuery) -> int:
    return (
        len(sql)
        + len(query.sql)
        + (0 if query.redacted_sql is query.sql else len(query.redacted_sql))
    )


def _replays(entry: _Entry, resolve: Resolver) -> bool:
    """Ask ``resolve`` everything the recorded run asked; True when every answer is the same.

    An exception (access revoked, dataset gone) means "not the same": the caller then runs
    ``govern`` in full, which raises it again in its own words. A resolver that can
    (``policies.evaluate``) first reads what all the calls need at once."""
    try:
        prefetch = getattr(resolve, "prefetch", None)
        if prefetch is not None:
            prefetch([ref for ref, _ in entry.calls])
        for (org, name, version), recorded in entry.calls:
            if resolve(org, name, version=version) != recorded:
                return False
    except Exception:
        return False
    return True
