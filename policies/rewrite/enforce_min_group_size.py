"""Rule: aggregate-only sources return only aggregates over groups of enough distinct subjects.

When a query reads a source with ``aggregate_only`` the query must be one flat
``SELECT`` over that dataset alone (no joins, subqueries, CTEs, set operations,
windows, ``QUALIFY``, ``DISTINCT``, ``FILTER``), every projection must be an
aggregate or a grouping key, and the only aggregates are ``count``, ``sum``,
``avg``, ``stddev*`` and ``var*`` (no ``min``/``max``/``arg_max``/``list``/
``string_agg``/``first``/quantiles/``median``/``mode``: they return members'
values). An aggregate's argument is ``*``, a column, ``DISTINCT column`` or a
column combined with one literal (``kwh * 1000``): no ``CASE``, ``IF``,
comparisons or casts that could pick out one subject's rows inside a large
group. ``CAST`` (which fails on bad values: an error oracle) is refused,
``TRY_CAST`` allowed, and only error-free scalar functions may be used.

With ``min_group_size = k`` the gateway adds its own
``HAVING count(DISTINCT <subject>) >= k`` (``AND``-ed with the client's), where
the subject is the dataset's privacy unit (``subject_column``, projected raw as
``__gw_subject`` by the governed relation; rows count as subjects when the
dataset names none). Groups below ``k`` are suppressed, not rounded.
``ROLLUP``/``CUBE``/``GROUPING SETS`` are refused for every query by the
allowlist, so no subtotal row can escape the threshold.

Errors are oracles too (a query that fails only when some row matches tells
that the row exists, before any group is suppressed), so constants in
arithmetic are bounded (|c| <= 1e6, intervals <= 1e4 units) and multiplications
are not chained, keeping overflow errors out of reach of ordinary values.

Known limits: thresholds cannot stop differencing across queries (the total
with and without one subject's rows, e.g. two ``WHERE`` clauses that differ in
one value), and extreme stored values can still overflow arithmetic (a 1-bit
error oracle); the audit log keeps every query per client so such patterns can
be reviewed.
"""

from __future__ import annotations

from typing import NoReturn

from sqlglot import exp

from policies.errors import QueryRefused
from policies.model import GovernedSource
from policies.rewrite.allowed_constructs import function_name
from policies.rewrite.context import RewriteContext, source_of
from policies.rewrite.replace_with_governed_relations import SUBJECT_COLUMN

ALLOWED_AGGREGATES: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Count,
        exp.Sum,
        exp.Avg,
        exp.Stddev,
        exp.StddevPop,
        exp.StddevSamp,
        exp.Variance,
        exp.VariancePop,
    }
)
SAFE_SCALARS: frozenset[type[exp.Expr]] = frozenset(
    {
        exp.Lower,
        exp.Upper,
        exp.Length,
        exp.Trim,
        exp.Abs,
        exp.Round,
        exp.Ceil,
        exp.Floor,
        exp.Sign,
        exp.DateTrunc,
        exp.TimestampTrunc,
        exp.Extract,
        exp.Year,
        exp.Quarter,
        exp.Month,
        exp.Week,
        exp.Day,
        exp.DayOfWeek,
        exp.Hour,
        exp.Minute,
        exp.Dayname,
        exp.Monthname,
        exp.Coalesce,
        exp.TryCast,
        exp.Case,
        exp.If,
    }
)
MAX_ARITHMETIC_CONSTANT = 1_000_000
MAX_INTERVAL_AMOUNT = 10_000
_STRUCTURAL = (exp.And, exp.Or, exp.Not, exp.Exists, exp.Case, exp.If, exp.Coalesce, exp.TryCast)
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div)
_FORBIDDEN: dict[type[exp.Expr], str] = {
    exp.Window: "window function",
    exp.Filter: "FILTER clause",
    exp.Qualify: "QUALIFY",
    exp.Distinct: "DISTINCT",
    exp.Join: "join",
    exp.With: "WITH",
    exp.Subquery: "subquery",
    exp.Cast: "CAST (use TRY_CAST)",
    exp.Star: "SELECT *",
}


def enforce_min_group_size(expression: exp.Query, _context: RewriteContext) -> exp.Query:
    restricted = [
        (table, source)
        for table in expression.find_all(exp.Table)
        if (source := source_of(table)) is not None and source.aggregate_only
    ]
    if not restricted:
        return expression
    table, source = restricted[0]
    select = _flat_select(expression, table, source)
    _check_constructs(select, source)
    _check_projections(select, source)
    if source.min_group_size:
        _add_threshold(select, table, source)
    return select


def _flat_select(expression: exp.Query, table: exp.Table, source: GovernedSource) -> exp.Select:
    tables = list(expression.find_all(exp.Table))
    from_ = expression.args.get("from_") if isinstance(expression, exp.Select) else None
    flat = (
        isinstance(expression, exp.Select)
        and len(tables) == 1
        and isinstance(from_, exp.From)
        and from_.this is table
        and sum(1 for _ in expression.find_all(exp.Query)) == 1
    )
    if not flat:
        _refuse(
            source,
            "a query shape other than one flat SELECT over the dataset",
            "query shape",
        )
    assert isinstance(expression, exp.Select)
    return expression


def _check_constructs(select: exp.Select, source: GovernedSource) -> None:
    for node in select.walk():
        if isinstance(node, (exp.Distinct, exp.Star)) and isinstance(node.parent, exp.Count):
            continue  # count(*) and count(DISTINCT x): checked by _check_argument on the count
        name = _FORBIDDEN.get(type(node))
        if name is not None:
            _refuse(source, name, name.split(" ")[0] if name != "window function" else name)
        if isinstance(node, exp.AggFunc):
            if type(node) not in ALLOWED_AGGREGATES:
                function = function_name(node)
                _refuse(source, f"{function}()", function)
            _check_argument(node, source)
        elif isinstance(node, exp.Func) and _is_unsafe_scalar(node):
            function = function_name(node)
            _refuse(source, f"{function}() (it can fail on one row's value)", function)
        elif isinstance(node, (*_ARITHMETIC, exp.Mod, exp.IntDiv, exp.Interval)):
            _check_overflow_guard(node, source)


def _check_overflow_guard(node: exp.Expr, source: GovernedSource) -> None:
    """Keep arithmetic far from integer/date overflow, whose error would be a 1-bit oracle.

    An overflow raised only for some rows (``WHERE subject = 'x' AND v * 1e17 > 0``) would
    tell whether those rows exist before any group is suppressed. Constants in arithmetic
    and intervals are bounded and multiplications are not chained; extreme stored values
    can still overflow (a documented limit).
    """
    if isinstance(node, exp.Interval):
        amount = node.this.unnest() if node.this is not None else None
        if isinstance(amount, exp.Literal) and not _small(amount, MAX_INTERVAL_AMOUNT):
            interval = node.sql(dialect="duckdb")
            _refuse(
                source,
                f"the large interval {interval} (at most {MAX_INTERVAL_AMOUNT:,} units)",
                "large constant",
            )
        return
    for operand in (node.this.unnest(), node.expression.unnest()):
        if isinstance(operand, exp.Neg):
            operand = operand.this.unnest()
        if isinstance(operand, exp.Literal) and not _small(operand, MAX_ARITHMETIC_CONSTANT):
            constant = operand.sql(dialect="duckdb")
            limit = f"{MAX_ARITHMETIC_CONSTANT:,}"
            _refuse(source, f"the large constant {constant} (at most {limit})", "large constant")
        if isinstance(node, exp.Mul) and isinstance(operand, exp.Mul):
            _refuse(source, "a chained multiplication", "chained multiplication")


def _small(literal: exp.Literal, limit: float) -> bool:
    """Numeric literals (and the number leading a string such as an interval's '3 days')."""
    words = literal.name.split()
    if literal.is_string and not words:
        return True
    try:
        return abs(float(words[0])) <= limit
    except (ValueError, IndexError):
        return literal.is_string and len(literal.name) <= 32


def _is_unsafe_scalar(node: exp.Expr) -> bool:
    structural = isinstance(node, _STRUCTURAL)
    return isinstance(node, exp.Func) and not structural and type(node) not in SAFE_SCALARS


def _check_argument(aggregate: exp.Expr, source: GovernedSource) -> None:
    argument = aggregate.this
    if isinstance(argument, exp.Distinct):
        values = argument.expressions
        argument = values[0] if len(values) == 1 else None
    if isinstance(argument, (exp.Star, exp.Column, exp.Literal)):
        return
    if isinstance(argument, _ARITHMETIC):
        operands = (argument.this.unnest(), argument.expression.unnest())
        kinds = sorted(type(operand).__name__ for operand in operands)
        if kinds == ["Column", "Literal"]:
            return
    _refuse(
        source,
        f"an aggregate over {aggregate.this.sql(dialect='duckdb') if aggregate.this else '?'}",
        "aggregate argument",
    )


def _check_projections(select: exp.Select, source: GovernedSource) -> None:
    group = select.args.get("group")
    group_all = bool(group and group.args.get("all"))
    keys = _group_keys(select, group)
    aggregated = False
    for projection in select.expressions:
        value = projection.unalias()
        if value.find(exp.AggFunc) is not None:
            aggregated = True
            outside = [
                column
                for column in value.find_all(exp.Column)
                if column.find_ancestor(exp.AggFunc) is None
            ]
            if not group_all and not all(_is_key(column, keys) for column in outside):
                _refuse(source, "a column outside any aggregate or GROUP BY key", "raw row")
        elif (
            not group_all
            and value.find(exp.Column) is not None
            and not _is_key(value, keys)
            and projection.alias not in keys
        ):
            _refuse(source, f"the raw value {value.sql(dialect='duckdb')}", "raw row")
    if not aggregated:
        _refuse(source, "a query without count/sum/avg", "raw row")


def _group_keys(select: exp.Select, group: exp.Expr | None) -> set[str]:
    keys: set[str] = set()
    for key in group.expressions if group else []:
        if (
            isinstance(key, exp.Literal)
            and key.is_int
            and 0 < int(key.name) <= len(select.expressions)
        ):
            key = select.expressions[int(key.name) - 1].unalias()
        keys.add(key.sql(dialect="duckdb"))
        if isinstance(key, exp.Column):
            keys.add(key.name)
    return keys


def _is_key(value: exp.Expr, keys: set[str]) -> bool:
    if isinstance(value, exp.Column) and value.name in keys:
        return True
    return value.sql(dialect="duckdb") in keys


def _add_threshold(select: exp.Select, table: exp.Table, source: GovernedSource) -> None:
    alias = exp.to_identifier(table.alias or table.name, quoted=True)
    if source.subject_column:
        subject = exp.column(exp.to_identifier(SUBJECT_COLUMN, quoted=True), table=alias)
        counted: exp.Expr = exp.Count(this=exp.Distinct(expressions=[subject]))
    else:
        counted = exp.Count(this=exp.Star())
    threshold: exp.Expr = exp.GTE(
        this=counted, expression=exp.Literal.number(source.min_group_size)
    )
    having = select.args.get("having")
    if isinstance(having, exp.Having):
        threshold = exp.And(this=exp.Paren(this=having.this), expression=threshold)
    select.set("having", exp.Having(this=threshold))


def _refuse(source: GovernedSource, what: str, construct: str) -> NoReturn:
    raise QueryRefused(
        f"{source.sql_name} is aggregate-only: {what} is not allowed; send one SELECT over it "
        "with GROUP BY and count/sum/avg/stddev/variance of columns (groups with too few "
        "distinct subjects are suppressed)",
        construct=f"aggregate-only {construct}",
    )
