"""Rule: add each source's row filter to the ``WHERE`` of its governed relation.

The filter is the policy engine's DuckDB predicate over the dataset's columns
(``GovernedSource.row_filter``). It is text from a steward, so it is parsed
with sqlglot and checked against its own small allowlist *again* here, never
spliced: comparisons, ``AND``/``OR``/``NOT``, ``IN`` lists, ``BETWEEN``,
``IS [NOT] NULL``, ``LIKE``/``ILIKE`` over plain column names and literals
(``CAST`` of a literal to a built-in type included). Columns are re-pointed at
the raw file columns (``__src."col"``), so the filter sees raw values (masks
apply after it) and may use columns the caller was not granted. It sits inside
the governed relation: no client predicate (``... OR 1=1``) can combine with it.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from policies.errors import PolicyError
from policies.rewrite.allowed_constructs import CAST_TYPES
from policies.rewrite.context import DIALECT, RewriteContext, governed_relations
from policies.rewrite.replace_with_governed_relations import raw_column

FILTER_NODES: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Column,
        exp.Identifier,
        exp.Literal,
        exp.Boolean,
        exp.Null,
        exp.Paren,
        exp.Tuple,
        exp.Neg,
        exp.And,
        exp.Or,
        exp.Not,
        exp.EQ,
        exp.NEQ,
        exp.GT,
        exp.GTE,
        exp.LT,
        exp.LTE,
        exp.Is,
        exp.In,
        exp.Between,
        exp.Like,
        exp.ILike,
        exp.Cast,
        exp.DataType,
    }
)
MAX_FILTER_BYTES = 4096


class InvalidRowFilter(PolicyError):
    code = "invalid_row_filter"

    def __init__(self, dataset: str, reason: str) -> None:
        super().__init__(
            f"the row filter on {dataset} cannot be applied ({reason}); no rows are served "
            "until the dataset's steward corrects the grant's row filter",
            dataset=dataset,
        )


def apply_row_filters(expression: exp.Query, _context: RewriteContext) -> exp.Query:
    for relation, source in governed_relations(expression):
        if source.row_filter is None:
            continue
        predicate = parse_row_filter(source.row_filter, dataset=source.sql_name)
        inner = relation.this
        inner.set("where", exp.Where(this=predicate))
    return expression


def parse_row_filter(text: str, *, dataset: str) -> exp.Expr:
    if not text.strip() or len(text.encode("utf-8")) > MAX_FILTER_BYTES:
        raise InvalidRowFilter(dataset, f"it must be 1..{MAX_FILTER_BYTES} bytes")
    try:
        statements = [statement for statement in sqlglot.parse(text, dialect=DIALECT) if statement]
    except Exception as err:  # any parser failure (RecursionError too) refuses the filter
        raise InvalidRowFilter(dataset, "it is not a valid predicate") from err
    if len(statements) != 1:
        raise InvalidRowFilter(dataset, "it must be exactly one predicate")
    predicate = statements[0]
    for node in predicate.walk():
        if type(node) not in FILTER_NODES:
            raise InvalidRowFilter(dataset, f"{type(node).__name__} is not allowed in a filter")
        if isinstance(node, exp.Column) and (
            node.table or not isinstance(node.this, exp.Identifier)
        ):
            raise InvalidRowFilter(
                dataset, f"column {node.sql(dialect=DIALECT)} must be unqualified"
            )
        if isinstance(node, exp.Cast) and not isinstance(node.this, exp.Literal):
            raise InvalidRowFilter(dataset, "CAST is allowed on literals only")
        if isinstance(node, exp.DataType) and (node.this not in CAST_TYPES or node.expressions):
            raise InvalidRowFilter(dataset, f"type {node.sql(dialect=DIALECT)} is not allowed")
    for column in list(predicate.find_all(exp.Column)):
        column.replace(raw_column(column.name.lower()))
    return exp.Paren(this=predicate)
