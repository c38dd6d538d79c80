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
from typing import Protocol

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect

from policies.masking import MaskKey
from policies.model import GovernedSource


class Resolver(Protocol):
    """``(org_slug or None, dataset_name, version=None) -> source``.

    ``version`` is the number a client asked for with ``AT (VERSION => n)``; ``None`` means
    the version the grant pins, else the current one. Raises ``UnknownDataset`` /
    ``AccessDenied``.
    """

    def __call__(
        self, org: str | None, name: str, *, version: int | None = None
    ) -> GovernedSource: ...


DIALECT = "duckdb"

_SOURCE_KEY = "governed_source"
_CTE_KEY = "cte_reference"
_RELATION_KEY = "governed_relation"


@dataclass
class RewriteContext:
    resolve: Resolver
    max_rows: int
    mask_key: MaskKey | None = None  # the consumer organisation's HMAC key (hmac masks)
    sources: list[GovernedSource] = field(default_factory=list)
    qualified: exp.Query | None = None  # check_columns' fully qualified copy, for later checks

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


def mark_relation(subquery: exp.Subquery, source: GovernedSource) -> None:
    """Tag a governed relation (set by ``replace_with_governed_relations``) for later rules."""
    subquery.meta[_RELATION_KEY] = source


def relation_source(subquery: exp.Expr) -> GovernedSource | None:
    source = subquery.meta.get(_RELATION_KEY)
    return source if isinstance(source, GovernedSource) else None


def governed_relations(expression: exp.Expr) -> list[tuple[exp.Subquery, GovernedSource]]:
    """Every governed relation in ``expression`` with its source (re-collected on each call)."""
    found = []
    for subquery in expression.find_all(exp.Subquery):
        source = relation_source(subquery)
        if source is not None:
            found.append((subquery, source))
    return found
