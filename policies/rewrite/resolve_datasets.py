"""Rule: every base-table reference goes through the resolver.

Tables are classified through sqlglot scopes, not by name matching, so a CTE
that shadows a dataset name is handled as DuckDB handles it:
``WITH energy_meter AS (SELECT * FROM dg_factory.energy_meter) SELECT * FROM
energy_meter`` resolves the inner reference and leaves the outer one alone.

Names are normalised first (lower-case, quoted or not, never stripped), as
DuckDB resolves them. Each dataset ``exp.Table`` is marked with its
``GovernedSource`` and each CTE reference is marked as such; a table that is
neither (or that no scope accounts for) is refused, so nothing can reach the
generated SQL un-rewritten.

Time travel: ``FROM org.ds AT (VERSION => 3)`` (checked exactly by
``check_allowlist``) is passed to the resolver as ``version=3`` and removed from
the tree; the governed relation then reads that version's files. Without it the
resolver picks the version (the grant's pin, else the current one).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from policies.errors import QueryRefused
from policies.rewrite.context import (
    RewriteContext,
    mark_cte_reference,
    mark_source,
    normalise,
)


def resolve_datasets(expression: exp.Query, context: RewriteContext) -> exp.Query:
    _normalise_names(expression)
    accounted: set[int] = set()
    for scope in traverse_scope(expression):
        for table in scope.tables:
            if id(table) not in accounted:
                accounted.add(id(table))
                _classify(table, scope, context)
    for table in expression.find_all(exp.Table):
        if id(table) not in accounted:
            raise _unaccounted(table)
    return expression


def _normalise_names(expression: exp.Query) -> None:
    for table in expression.find_all(exp.Table):
        for part in (table.args.get("db"), table.this):
            if isinstance(part, exp.Identifier):
                normalise(part)
    for cte in expression.find_all(exp.CTE):
        alias = cte.args.get("alias")
        if isinstance(alias, exp.TableAlias) and isinstance(alias.this, exp.Identifier):
            normalise(alias.this)


def _classify(table: exp.Table, scope: Scope, context: RewriteContext) -> None:
    if any(source is table for source in scope.sources.values()):
        org = table.db or None
        version = _requested_version(table)
        if version is None:  # two-argument resolvers keep working for plain references
            source = context.resolve(org, table.name)
        else:
            source = context.resolve(org, table.name, version=version)
        if version is not None and source.version != version:
            raise QueryRefused(
                f"{table.sql(dialect='duckdb')} asked for version {version} but the resolver "
                f"returned version {source.version}",
                construct="time travel",
            )
        mark_source(table, source)
        context.add_source(source)
    elif table.args.get("when") is not None:
        raise QueryRefused(
            f"AT (VERSION => n) applies to datasets only, not to {table.name!r}",
            construct="time travel",
        )
    elif not table.db and table.name in scope.cte_sources:
        mark_cte_reference(table)
    else:
        raise _unaccounted(table)


def _requested_version(table: exp.Table) -> int | None:
    """The n of ``AT (VERSION => n)`` (already checked by ``check_allowlist``), then dropped."""
    when = table.args.get("when")
    if when is None:
        return None
    table.set("when", None)
    return int(when.expression.name)


def _unaccounted(table: exp.Table) -> QueryRefused:
    return QueryRefused(
        f"the table reference {table.sql(dialect='duckdb')} is not in a FROM or JOIN clause "
        "the gateway can govern; reference datasets as <org>.<dataset> in FROM or JOIN",
        construct="table reference",
    )
