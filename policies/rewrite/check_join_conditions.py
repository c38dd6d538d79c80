"""Rule: every relation joined in a SELECT must be connected to the others by a predicate.

``FROM a, b WHERE a.k = b.k`` (the implicit joins every TPC-H query uses) is
allowed; ``FROM a, b`` with no predicate linking them is a cross join and is
refused, as are explicit joins whose ``ON`` only mentions one relation.
Each SELECT's relations (its FROM item and joins) are the nodes of a graph; an
edge is a ``USING`` join, an explicit ``ON`` that mentions columns of the joined
relation and another one (range joins such as ``ON m.ts BETWEEN s.a AND s.b``
included), or, in that SELECT's ``WHERE`` (not in nested subqueries), an
equality or ``BETWEEN`` between columns of two relations. The graph must be
connected.

This is a guard against accidental and casual row explosions, not a resource
limit: a predicate such as ``a.k = b.k OR TRUE`` still connects the graph. The
sandboxed worker's time, memory and row limits are what bound a query's cost.
It reads ``context.qualified`` (from ``check_columns``), where every column
names its relation.
"""

from __future__ import annotations

from sqlglot import exp

from policies.errors import QueryRefused
from policies.rewrite.context import RewriteContext


def check_join_conditions(expression: exp.Query, context: RewriteContext) -> exp.Query:
    qualified = context.qualified
    if qualified is None:
        raise QueryRefused(
            "join conditions could not be checked (columns were not qualified)",
            construct="cross join",
        )
    for select in qualified.find_all(exp.Select):
        joins = select.args.get("joins") or []
        if joins:
            _check_connected(select, joins)
    return expression


def _check_connected(select: exp.Select, joins: list[exp.Join]) -> None:
    from_ = select.args.get("from_")
    items = [from_.this] if isinstance(from_, exp.From) else []
    items += [join.this for join in joins]
    names = [item.alias_or_name for item in items]
    graph = _Components(names)
    for position, join in enumerate(joins, start=1):
        joined = names[position]
        if join.args.get("using"):
            for earlier in names[:position]:
                graph.link(earlier, joined)
        mentioned = _relations_in(join.args.get("on"))
        if joined in mentioned:  # explicit ON over the joined relation and another one
            for other in mentioned - {joined}:
                graph.link(joined, other)
    for left, right in _column_links(select.args.get("where")):
        graph.link(left, right)
    if graph.count() > 1:
        raise QueryRefused(
            f"{', '.join(names)} are joined without a condition linking all of them "
            "(a cross join); add ON/USING or a WHERE equality between each joined relation's "
            "columns",
            construct="cross join",
        )


class _Components:
    """Union-find over relation names."""

    def __init__(self, names: list[str]) -> None:
        self.parent = {name: name for name in names}

    def find(self, name: str) -> str:
        while self.parent[name] != name:
            self.parent[name] = self.parent[self.parent[name]]
            name = self.parent[name]
        return name

    def link(self, left: str, right: str) -> None:
        if left in self.parent and right in self.parent and left != right:
            self.parent[self.find(left)] = self.find(right)

    def count(self) -> int:
        return len({self.find(name) for name in self.parent})


def _relations_in(condition: exp.Expr | None) -> set[str]:
    if condition is None:
        return set()
    return {
        column.table
        for column in condition.find_all(exp.Column)
        if column.table and not _in_nested_query(column, condition)
    }


def _column_links(condition: exp.Expr | None) -> list[tuple[str, str]]:
    """Relations linked by ``a.x = b.y`` or ``a.x BETWEEN b.lo AND b.hi`` in a WHERE."""
    pairs: list[tuple[str, str]] = []
    if condition is None:
        return pairs
    for predicate in condition.find_all(exp.EQ, exp.NullSafeEQ, exp.Between):
        if _in_nested_query(predicate, condition):
            continue
        sides = [predicate.this.unnest()]
        if isinstance(predicate, exp.Between):
            sides += [predicate.args["low"].unnest(), predicate.args["high"].unnest()]
        else:
            sides.append(predicate.expression.unnest())
        tables = {side.table for side in sides if isinstance(side, exp.Column) and side.table}
        first, *others = sorted(tables) or [""]
        pairs += [(first, other) for other in others]
    return pairs


def _in_nested_query(node: exp.Expr, root: exp.Expr) -> bool:
    if node is root:
        return False
    parent = node.parent
    while parent is not None and parent is not root:
        if isinstance(parent, exp.Query):
            return True
        parent = parent.parent
    return False
