"""``GovernCache``: a repeated SQL text skips the rewrite, never the resolver's decisions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from policies.errors import AccessDenied, QueryRefused
from policies.masking import derive_mask_key
from policies.model import GovernedSource, Mask
from policies.rewrite import govern
from policies.rewrite.cache import GovernCache
from tests.policies import TEST_MASK_SECRET, GrantCatalog, standard_sources

SQL = (
    "SELECT e.meter_id, s.district, sum(e.kwh) AS kwh FROM dg_factory.energy_meter AS e "
    "JOIN dg_factory.sites AS s ON e.site = s.site GROUP BY ALL"
)


def catalog(*changed: GovernedSource) -> GrantCatalog:
    sources = {s.sql_name: s for s in standard_sources()}
    sources.update({s.sql_name: s for s in changed})
    return GrantCatalog(sources.values())


def energy() -> GovernedSource:
    return next(s for s in standard_sources() if s.name == "energy_meter")


def test_a_repeated_query_is_answered_from_the_cache_after_asking_the_resolver_again() -> None:
    cache, resolver = GovernCache(), catalog()
    first = cache.govern(SQL, resolver, max_rows=100)
    asked = list(resolver.calls)
    second = cache.govern(SQL, resolver, max_rows=100)
    assert second == first == govern(SQL, catalog(), max_rows=100)
    assert (cache.hits, cache.misses) == (1, 1)
    assert resolver.calls == asked + asked  # every table resolved again, in the same order


def test_a_changed_grant_is_seen_by_the_next_run_of_the_same_sql() -> None:
    cache = GovernCache()
    clear = cache.govern(SQL, catalog(), max_rows=100)
    masked_source = replace(energy(), masks=(Mask("meter_id", "redact"),))
    masked = cache.govern(SQL, catalog(masked_source), max_rows=100)
    assert masked == govern(SQL, catalog(masked_source), max_rows=100)
    assert masked.sql != clear.sql and masked.sources != clear.sources
    narrowed = replace(energy(), columns=("site", "ts", "kwh"))  # meter_id no longer granted
    with pytest.raises(QueryRefused) as refused:
        cache.govern(SQL, catalog(narrowed), max_rows=100)
    assert refused.value.construct == "column"
    assert cache.hits == 0


def test_a_revoked_grant_is_refused_even_though_the_sql_was_cached() -> None:
    cache = GovernCache()
    cache.govern(SQL, catalog(), max_rows=100)
    revoked = GrantCatalog(s for s in standard_sources() if s.name != "energy_meter")
    with pytest.raises(Exception) as raised:
        cache.govern(SQL, revoked, max_rows=100)
    with pytest.raises(type(raised.value)) as uncached:
        govern(SQL, revoked, max_rows=100)
    assert str(raised.value) == str(uncached.value)
    assert cache.hits == 0


def test_refusals_are_not_stored_and_limits_and_mask_keys_are_part_of_the_key() -> None:
    cache, resolver = GovernCache(), catalog()
    for _ in range(2):
        with pytest.raises(QueryRefused):
            cache.govern("SELECT * FROM read_csv('/etc/passwd')", resolver, max_rows=100)
    assert (cache.hits, cache.misses) == (0, 0)
    hmac_source = replace(energy(), masks=(Mask("meter_id", "hmac"),))
    resolver = catalog(hmac_source)
    key_a = derive_mask_key(TEST_MASK_SECRET, "org-a")
    key_b = derive_mask_key(TEST_MASK_SECRET, "org-b")
    a = cache.govern(SQL, resolver, max_rows=100, mask_key=key_a)
    b = cache.govern(SQL, resolver, max_rows=100, mask_key=key_b)
    limited = cache.govern(SQL, resolver, max_rows=5, mask_key=key_a)
    assert a.sql != b.sql  # each consumer's tokens use its own key
    assert limited.max_rows == 5 and a.max_rows == 100
    assert (cache.hits, cache.misses) == (0, 3)
    assert cache.govern(SQL, resolver, max_rows=100, mask_key=key_b) == b
    assert cache.hits == 1


def test_access_denied_from_the_resolver_propagates_from_a_cached_entry() -> None:
    cache = GovernCache()
    cache.govern(SQL, catalog(), max_rows=100)

    def deny(org: str | None, name: str, *, version: int | None = None) -> GovernedSource:
        raise AccessDenied("query", f"dataset {org}.{name}", "the grant expired")

    with pytest.raises(AccessDenied, match="the grant expired"):
        cache.govern(SQL, deny, max_rows=100)


def test_the_cache_keeps_at_most_its_entries_and_zero_turns_it_off() -> None:
    cache, resolver = GovernCache(entries=2), catalog()
    queries = [f"SELECT site FROM dg_factory.sites LIMIT {n}" for n in range(3)]
    for sql in queries:
        cache.govern(sql, resolver, max_rows=100)
    cache.govern(queries[0], resolver, max_rows=100)  # evicted: governed again
    assert (cache.hits, cache.misses) == (0, 4)
    cache.govern(queries[2], resolver, max_rows=100)
    assert cache.hits == 1
    off = GovernCache(entries=0)
    for _ in range(2):
        off.govern(queries[0], resolver, max_rows=100)
    assert (off.hits, off.misses) == (0, 2)


def test_the_text_kept_is_capped_in_total_so_clients_cannot_fill_the_memory() -> None:
    resolver = catalog()
    padded = [f"SELECT site FROM dg_factory.sites WHERE site <> '{n:0>2000}'" for n in range(6)]
    one = len(padded[0]) + len(govern(padded[0], resolver, max_rows=100).sql)
    cache = GovernCache(entries=100, max_chars=3 * one + 10)
    for sql in padded:
        cache.govern(sql, resolver, max_rows=100)
    assert cache.chars <= 3 * one + 10 and cache.chars >= 2 * one
    cache.govern(padded[-1], resolver, max_rows=100)  # the newest are kept
    assert cache.hits == 1
    cache.govern(padded[0], resolver, max_rows=100)  # the oldest went first
    assert cache.hits == 1
    cache.clear()
    assert cache.chars == 0
