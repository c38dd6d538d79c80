"""State shared by the rewrite rules of one ``govern()`` call.

Every rule has the same signature, ``rule(expression, context) -> expression``
(STYLE L4), so rules can be reordered, tested one sub-list at a time and
extended (masks, row filters) without touching the others. ``RewriteContext``
carries what rules need besides the tree: the resolver, the row cap and the
sources resolved so far.

Rules hand facts to later rules through node ``meta`` rather than through
stored node references: sqlglot builders copy trees by default, so a stored
reference can silently point into a stale copy, while ``meta`` travels with the
node through copies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from policies.model import GovernedSource

Resolver = Callable[[str | None, str], GovernedSource]
"""``(org_slug or None, dataset_name) -> source``; raises ``UnknownDataset`` / ``AccessDenied``."""

DIALECT = "duckdb"

_SOURCE_KEY = "governed_source"
_CTE_KEY = "cte_reference"


@dataclass
class RewriteContext:
    resolve: Resolver
    max_rows: int
    sources: list[GovernedSource] = field(default_factory=list)

    def add_source(self, source: GovernedSource) -> None:
        if source not in self.sources:
            self.sources.append(source)


Rule = Callable[[exp.Query, RewriteContext], exp.Query]


def normalise(identifier: exp.Identifier) -> exp.Identifier:
    """Lower-case in place as DuckDB resolves names: quoted or not, never stripped."""
    return Dialect.get_or_raise(DIALECT).normalize_identifier(identifier)


def mark_source(table: exp.Table, source: GovernedSource) -> None:
    table.meta[_SOURCE_KEY] = source


def source_of(table: exp.Table) -> GovernedSource | None:
    source = table.meta.get(_SOURCE_KEY)
    return source if isinstance(source, GovernedSource) else None


def mark_cte_reference(table: exp.Table) -> None:
    table.meta[_CTE_KEY] = True


def is_cte_reference(table: exp.Table) -> bool:
    return table.meta.get(_CTE_KEY) is True
