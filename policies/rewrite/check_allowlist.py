"""Rule: every node of the client tree must be an allowed construct.

Structural nodes with arguments that matter (tables, joins, stars, CTEs,
columns, keywords, cast types, parenthesised tables) get a dedicated check that
runs *before* the generic membership test, so an ``OR`` or a ``CASE`` (both
``exp.Func`` subclasses) is never mistaken for a function call. Everything
else must be in ``allowed_constructs.ALLOWED`` by exact type; the first refused
node (breadth first, so the outermost) names the refusal.

This rule validates the *client* tree only. Rewritten parts (``READ_PARQUET``
over storage paths) are trusted output added later and never re-checked here.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp

from policies.errors import QueryRefused
from policies.rewrite.allowed_constructs import (
    ALLOWED,
    CAST_TYPES,
    FUNCTION_LIST,
    KEYWORD,
    PLAIN_NAME,
    describe,
    function_name,
    hint_for,
)
from policies.rewrite.context import RewriteContext

_DATASET_HINT = "reference datasets as <org>.<dataset> (letters, digits and _ only)"
_TABLE_ARGS = frozenset({"this", "db", "catalog", "alias", "when"})  # when: AT (VERSION => n)
_TABLE_OPTIONS = {"joins": "parenthesised join", "sample": "sample"}
_TIME_TRAVEL_HINT = "read an older version with FROM <org>.<dataset> AT (VERSION => <n>), n >= 1"
_JOIN_ARGS = frozenset({"this", "on", "using", "side", "kind"})
_STAR_MODIFIERS = {"except_": "EXCLUDE", "replace": "REPLACE", "rename": "RENAME", "ilike": "ILIKE"}
_JOIN_KINDS = frozenset({"", "INNER", "OUTER", "SEMI", "ANTI"})
_JOIN_SIDES = frozenset({"", "LEFT", "RIGHT", "FULL"})


def check_allowlist(expression: exp.Query, _context: RewriteContext) -> exp.Query:
    for node in expression.walk(bfs=True):
        check = _STRUCTURAL_CHECKS.get(type(node))
        if check is not None:
            check(node)
        elif type(node) not in ALLOWED:
            raise _refusal(node)
    return expression


def _refusal(node: exp.Expr) -> QueryRefused:
    construct = describe(node)
    if isinstance(node, exp.Func):
        return QueryRefused(
            f"function {construct} is not allowed; allowed functions: {FUNCTION_LIST}",
            construct=construct,
        )
    return QueryRefused(f"{construct} is not allowed; {hint_for(construct)}", construct=construct)


def _check_table(table: exp.Expr) -> None:
    if not isinstance(table.this, exp.Identifier):
        name = function_name(table.this) if isinstance(table.this, exp.Func) else describe(table)
        raise QueryRefused(
            f"table function {name} is not allowed in FROM; {_DATASET_HINT}", construct=name
        )
    if table.args.get("catalog"):
        raise QueryRefused(
            f"{table.sql(dialect='duckdb')} has three parts; {_DATASET_HINT}",
            construct="three-part name",
        )
    extra = sorted(key for key, value in table.args.items() if value and key not in _TABLE_ARGS)
    if extra:
        construct = _TABLE_OPTIONS.get(extra[0], "table option")
        raise QueryRefused(
            f"{construct} ({', '.join(extra)}) is not allowed; {hint_for(construct)}",
            construct=construct,
        )
    for part in (table.args.get("db"), table.this):
        if isinstance(part, exp.Identifier) and not PLAIN_NAME.fullmatch(part.name):
            raise QueryRefused(
                f"{part.name!r} is not a dataset name; {_DATASET_HINT}", construct="table name"
            )


def _check_join(join: exp.Expr) -> None:
    method = str(join.args.get("method") or "").upper()
    if method:
        raise QueryRefused(
            f"{method} JOIN is not allowed; join with ON or USING", construct=f"{method} JOIN"
        )
    if is_comma_join(join):
        return  # FROM a, b WHERE ...: check_join_conditions needs a join predicate in WHERE
    on, using = join.args.get("on"), join.args.get("using")
    kind = str(join.args.get("kind") or "").upper()
    unconditioned = on is None and not using
    if kind == "CROSS" or unconditioned or (on is not None and on.find(exp.Column) is None):
        raise QueryRefused(
            "joins need an ON condition on columns or USING; cross joins are not allowed",
            construct="cross join",
        )
    side = str(join.args.get("side") or "").upper()
    extra = [key for key, value in join.args.items() if value and key not in _JOIN_ARGS]
    if kind not in _JOIN_KINDS or side not in _JOIN_SIDES or extra:
        raise QueryRefused(
            "only [INNER], LEFT, RIGHT, FULL [OUTER], SEMI and ANTI joins are allowed",
            construct="join option",
        )


def is_comma_join(join: exp.Expr) -> bool:
    """``FROM a, b``: sqlglot keeps it as a ``Join`` with no condition, kind or side."""
    return isinstance(join, exp.Join) and not any(
        join.args.get(key) for key in ("on", "using", "kind", "side", "method")
    )


def _check_time_travel(when: exp.Expr) -> None:
    """Only ``AT (VERSION => <positive integer literal>)``; no timestamps, no expressions."""
    version = when.args.get("expression")
    exact = (
        str(when.args.get("this") or "").upper() == "AT"
        and str(when.args.get("kind") or "").upper() == "VERSION"
        and isinstance(version, exp.Literal)
        and not version.is_string
        and version.is_int
        and 1 <= int(version.name) < 2**31
    )
    if not exact:
        raise QueryRefused(
            f"{when.sql(dialect='duckdb')} is not a supported time travel clause; "
            f"{_TIME_TRAVEL_HINT}",
            construct="time travel",
        )


def _check_star(star: exp.Expr) -> None:
    modifiers = sorted(
        _STAR_MODIFIERS.get(key, key.upper()) for key, value in star.args.items() if value
    )
    if modifiers:
        raise QueryRefused(
            f"SELECT * {'/'.join(modifiers)} is not supported; list the columns you want",
            construct="star modifier",
        )


def _check_with(with_: exp.Expr) -> None:
    if with_.args.get("recursive"):
        raise QueryRefused(
            "recursive CTEs are not allowed; use non-recursive WITH clauses",
            construct="recursive CTE",
        )


def _check_cte(cte: exp.Expr) -> None:
    if not PLAIN_NAME.fullmatch(cte.alias):
        raise QueryRefused(
            f"{cte.alias!r} is not a valid CTE name; use letters, digits and _ only",
            construct="CTE name",
        )


def _check_column(column: exp.Expr) -> None:
    if column.args.get("db") or column.args.get("catalog"):
        raise QueryRefused(
            f"{column.sql(dialect='duckdb')} has too many parts; refer to columns as "
            "<column> or <table alias>.<column>",
            construct="column",
        )


def _check_var(var: exp.Expr) -> None:
    if not KEYWORD.fullmatch(var.name):
        raise QueryRefused(
            f"{var.name!r} is not a valid keyword here; use plain keywords such as DAY or YEAR",
            construct="keyword",
        )


def _check_data_type(data_type: exp.Expr) -> None:
    params = data_type.expressions
    plain_params = all(
        isinstance(param, exp.DataTypeParam)
        and isinstance(param.this, exp.Literal)
        and param.this.is_int
        for param in params
    )
    odd = any(data_type.args.get(key) for key in ("kind", "nested", "values", "prefix"))
    if data_type.this not in CAST_TYPES or odd or not plain_params:
        raise QueryRefused(
            f"{data_type.sql(dialect='duckdb')!r} is not allowed; {hint_for('type')}",
            construct="type",
        )


def _check_subquery(subquery: exp.Expr) -> None:
    if isinstance(subquery.this, exp.Table):
        raise QueryRefused(
            "a table in parentheses is not allowed; write FROM <org>.<dataset> AS <alias>",
            construct="parenthesised table",
        )


_STRUCTURAL_CHECKS: dict[type[exp.Expr], Callable[[exp.Expr], None]] = {
    exp.Table: _check_table,
    exp.Join: _check_join,
    exp.Star: _check_star,
    exp.With: _check_with,
    exp.CTE: _check_cte,
    exp.Column: _check_column,
    exp.Var: _check_var,
    exp.DataType: _check_data_type,
    exp.Subquery: _check_subquery,
    exp.HistoricalData: _check_time_travel,
}
