"""A steward's row filter and masks, checked when they are written (not when queried).

A row filter is a DuckDB SQL predicate over the dataset's own columns and literals only:
comparisons, AND / OR / NOT, IN (a literal list), BETWEEN, IS [NOT] NULL and typed
literals such as ``DATE '2025-01-01'``. Anything else (functions, subqueries, other
tables, casts of columns, parameters, several statements) is refused with the construct
named. The stored text is regenerated from the checked tree, identifiers quoted.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, get_args

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from catalog.errors import InvalidInput
from policies.masking import DATE_UNITS
from policies.model import MaskKind

MAX_FILTER_CHARS = 2000
MAX_FILTER_NODES = 200
PREDICATES: tuple[type[exp.Expression], ...] = (
    exp.And,
    exp.Or,
    exp.Not,
    exp.Paren,
    exp.EQ,
    exp.NEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.In,
    exp.Between,
    exp.Is,
    exp.Boolean,
)
OPERANDS: tuple[type[exp.Expression], ...] = (
    exp.Column,
    exp.Identifier,
    exp.Literal,
    exp.Null,
    exp.Neg,
    exp.Cast,
    exp.DataType,
)
LITERAL_TYPES = frozenset(
    {
        exp.DataType.Type.DATE,
        exp.DataType.Type.TIMESTAMP,
        exp.DataType.Type.TIMESTAMPNTZ,
        exp.DataType.Type.TIMESTAMPTZ,
        exp.DataType.Type.TIME,
    }
)


def _refuse(message: str, construct: str) -> InvalidInput:
    return InvalidInput(
        f"row filter refused: {message}; a row filter uses only the dataset's columns, "
        "literals, comparisons, AND/OR/NOT, IN (...), BETWEEN and IS [NOT] NULL",
        field="row_filter",
        construct=construct,
    )


def _check_node(node: exp.Expression, columns: Collection[str]) -> None:
    if not isinstance(node, PREDICATES + OPERANDS):
        raise _refuse(f"{node.key.upper()} is not allowed", node.key)
    if isinstance(node, exp.Column):
        if node.table or node.args.get("db") or node.args.get("catalog"):
            raise _refuse(f"qualified column {node.sql('duckdb')}", "qualified_column")
        if node.name.lower() not in columns:
            raise _refuse(f"unknown column {node.name!r}", "unknown_column")
    elif isinstance(node, exp.Cast):
        if not isinstance(node.this, exp.Literal) or node.to.this not in LITERAL_TYPES:
            raise _refuse("only date and time literals may be typed", "cast")
    elif isinstance(node, exp.In):
        if node.args.get("query") is not None or node.args.get("unnest") is not None:
            raise _refuse("IN takes a list of literals", "in_subquery")
    elif isinstance(node, exp.Neg) and not isinstance(node.this, exp.Literal):
        raise _refuse("minus applies to number literals only", "neg")


def check_row_filter(text: str, columns: Collection[str]) -> str:
    """The canonical form of ``text`` if it is an allowed predicate over ``columns``."""
    text = text.strip()
    if not text:
        raise InvalidInput("row filter is empty; leave it out for no filter", field="row_filter")
    if len(text) > MAX_FILTER_CHARS:
        raise _refuse(f"longer than {MAX_FILTER_CHARS} characters", "too_long")
    try:
        statements = sqlglot.parse(text, read="duckdb")
    except SqlglotError as exc:
        raise _refuse(f"it does not parse as DuckDB SQL ({str(exc)[:200]})", "parse") from None
    if len(statements) != 1 or statements[0] is None:
        raise _refuse("it must be one predicate, not several statements", "statements")
    tree = statements[0]
    if not isinstance(tree, PREDICATES):
        raise _refuse(f"{tree.key.upper()} is not a predicate", tree.key)
    known = {c.lower() for c in columns}
    nodes = list(tree.walk())
    if not all(isinstance(n, exp.Expression) for n in nodes):
        raise _refuse("unexpected syntax", "syntax")
    if len(nodes) > MAX_FILTER_NODES:
        raise _refuse(f"more than {MAX_FILTER_NODES} nodes", "too_complex")
    for node in nodes:
        assert isinstance(node, exp.Expression)
        _check_node(node, known)
    for column in tree.find_all(exp.Column):
        column.set("this", exp.to_identifier(column.name.lower(), quoted=True))
    return tree.sql(dialect="duckdb")


MASK_PARAMS: Mapping[str, Mapping[str, type]] = {
    "hmac": {},
    "redact": {"text": str},
    "null": {},
    "partial": {"keep_prefix": int, "keep_suffix": int},
    "generalise": {"to": str, "bucket": float},
}


def check_masks(
    specs: list[dict[str, Any]],
    columns: Collection[str],
    types: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Masks as stored on a grant: known kinds, known columns, allowlisted parameters, and
    (given the contract's column ``types``) a generalisation that fits the column's type."""
    seen: set[str] = set()
    out = []
    for spec in specs:
        column, kind = str(spec.get("column", "")), spec.get("kind")
        if column not in columns:
            raise InvalidInput(f"mask on unknown column {column!r}", field="masks")
        if column in seen:
            raise InvalidInput(f"two masks on column {column!r}", field="masks")
        if kind not in get_args(MaskKind):
            raise InvalidInput(
                f"mask kind {kind!r}; use one of {', '.join(get_args(MaskKind))}", field="masks"
            )
        allowed = MASK_PARAMS[str(kind)]
        params = {k: v for k, v in spec.items() if k not in ("column", "kind")}
        for key, value in params.items():
            wanted = allowed.get(key)
            ok = wanted is not None and (
                isinstance(value, int | float) and not isinstance(value, bool)
                if wanted is float
                else isinstance(value, wanted) and not isinstance(value, bool)
            )
            if not ok:
                raise InvalidInput(
                    f"mask {kind} on {column}: parameter {key}={value!r} is not allowed "
                    f"(allowed: {', '.join(allowed) or 'none'})",
                    field="masks",
                )
        _check_mask_values(str(kind), column, params)
        _check_mask_type(str(kind), column, params, (types or {}).get(column))
        seen.add(column)
        out.append({"column": column, "kind": kind, **params})
    return out


def _check_mask_type(
    kind: str, column: str, params: Mapping[str, Any], kind_of: str | None
) -> None:
    if kind != "generalise" or kind_of is None:
        return
    if "to" in params and kind_of not in ("date", "timestamp"):
        raise InvalidInput(
            f"mask generalise on {column}: 'to' truncates dates, but {column} is {kind_of}",
            field="masks",
        )
    if "bucket" in params and kind_of not in ("integer", "double"):
        raise InvalidInput(
            f"mask generalise on {column}: 'bucket' rounds numbers, but {column} is {kind_of}",
            field="masks",
        )


def _check_mask_values(kind: str, column: str, params: Mapping[str, Any]) -> None:
    if kind == "redact" and len(str(params.get("text", ""))) > 64:
        raise InvalidInput(f"mask redact on {column}: text of at most 64 characters", field="masks")
    if kind == "partial":
        keep = [int(params.get("keep_prefix", 0)), int(params.get("keep_suffix", 0))]
        if min(keep) < 0 or max(keep) > 32 or sum(keep) == 0:
            raise InvalidInput(
                f"mask partial on {column}: keep_prefix/keep_suffix between 0 and 32, "
                "at least one of them above 0",
                field="masks",
            )
    if kind == "generalise":
        if "to" in params and params["to"] not in DATE_UNITS:
            raise InvalidInput(
                f"mask generalise on {column}: to is one of {', '.join(sorted(DATE_UNITS))}",
                field="masks",
            )
        if "bucket" in params and not float(params["bucket"]) > 0:
            raise InvalidInput(f"mask generalise on {column}: bucket > 0", field="masks")
        if ("to" in params) == ("bucket" in params):
            raise InvalidInput(
                f"mask generalise on {column}: give either to (dates) or bucket (numbers)",
                field="masks",
            )
