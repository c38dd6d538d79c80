"""Rule: every relation joined in a SELECT must be connected to the others by a predicate.

``FROM a, b WHERE a.k = b.k`` (the implicit joins every TPC-H query uses) is
allowed; ``FROM a, b`` with no predicate linking them is a cross join and is
refused, as are explicit joins whose ``ON`` only compares a relation with itself.
Each SELECT's relations (its FROM item and joins) are the nodes of a graph; an
edge is a ``USING`` join or an equality between columns of two different
relations found in that SELECT's ``ON`` or ``WHERE`` conditions (not in nested
subqueries). The graph must be connected.

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
    parent = {name: name for name in names}

    def find(name: str) -> str:
        while parent[name] != name:
            parent[name] = parent[parent[name]]
            name = parent[name]
        return name

    def link(left: str, right: str) -> None:
        if left in parent and right in parent and left != right:
            parent[find(left)] = find(right)

    for position, join in enumerate(joins, start=1):
        if join.args.get("using"):
            for earlier in names[:position]:
                link(earlier, names[position])
    conditions = [join.args.get("on") for join in joins] + [select.args.get("where")]
    for condition in conditions:
        if condition is not None:
            for left, right in _column_equalities(condition):
                link(left, right)
    roots = {find(name) for name in names}
    if len(roots) > 1:
        raise QueryRefused(
            f"{', '.join(names)} are joined without a condition linking all of them "
            "(a cross join); add ON/USING or a WHERE equality between each joined relation's "
            "columns",
            construct="cross join",
        )


def _column_equalities(condition: exp.Expr) -> list[tuple[str, str]]:
    pairs = []
    for equality in condition.find_all(exp.EQ, exp.NullSafeEQ):
        if _in_nested_query(equality, condition):
            continue
        left, right = equality.this.unnest(), equality.expression.unnest()
        both_columns = isinstance(left, exp.Column) and isinstance(right, exp.Column)
        if both_columns and left.table and right.table and left.table != right.table:
            pairs.append((left.table, right.table))
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
