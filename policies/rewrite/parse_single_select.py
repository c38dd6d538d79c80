"""Turn client SQL text into exactly one query tree, or refuse.

This step runs before the rules (it takes text, not a tree). It enforces a
byte limit before parsing, parses with the DuckDB dialect, fails closed on any
parser exception (``RecursionError`` included: sqlglot 30.30 raises it at about
50 nested parentheses) and accepts exactly one statement whose root is a
``SELECT`` or a set operation. Everything else is named in ``construct``:
sqlglot falls back to ``exp.Command`` for ``LOAD``, ``CALL``, ``EXPLAIN``,
``PREPARE`` and the like, and parses ``CHECKPOINT`` as a bare column.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError

from policies.errors import QueryRefused
from policies.rewrite.context import DIALECT

STATEMENT_KEYWORDS = frozenset(
    {
        "ALTER",
        "ANALYZE",
        "ATTACH",
        "CALL",
        "CHECKPOINT",
        "COMMENT",
        "COPY",
        "CREATE",
        "DEALLOCATE",
        "DELETE",
        "DESCRIBE",
        "DETACH",
        "DROP",
        "EXECUTE",
        "EXPLAIN",
        "EXPORT",
        "IMPORT",
        "INSERT",
        "INSTALL",
        "LOAD",
        "MERGE",
        "PRAGMA",
        "PREPARE",
        "RESET",
        "SET",
        "SHOW",
        "SUMMARIZE",
        "TRUNCATE",
        "UNPIVOT",
        "PIVOT",
        "UPDATE",
        "USE",
        "VACUUM",
        "BEGIN",
        "COMMIT",
        "ROLLBACK",
        "ABORT",
        "FORCE",
        "UPDATE_EXTENSIONS",
    }
)
QUERY_ROOTS: tuple[type[exp.Query], ...] = (exp.Select, exp.Union, exp.Except, exp.Intersect)
_ALLOWED_SHAPE = "send one SELECT query (WITH, UNION, EXCEPT and INTERSECT are allowed)"


def parse_single_select(sql: str, *, max_sql_bytes: int) -> exp.Query:
    size = len(sql.encode("utf-8"))
    if size > max_sql_bytes:
        raise QueryRefused(
            f"the query is {size} bytes; the limit is {max_sql_bytes} bytes",
            construct="size",
        )
    statements = [statement for statement in _parse(sql) if statement is not None]
    if not statements:
        raise QueryRefused(f"the query is empty; {_ALLOWED_SHAPE}", construct="empty")
    if len(statements) > 1:
        raise QueryRefused(
            f"{len(statements)} statements were sent; {_ALLOWED_SHAPE}",
            construct="multiple statements",
        )
    root = statements[0]
    if not isinstance(root, QUERY_ROOTS):
        name = statement_name(root)
        raise QueryRefused(f"{name} statements are not allowed; {_ALLOWED_SHAPE}", construct=name)
    return root


def _parse(sql: str) -> list[exp.Expr | None]:
    try:
        return list(sqlglot.parse(sql, dialect=DIALECT))
    except RecursionError as err:
        raise QueryRefused(
            "the query is nested too deeply to check; flatten it with WITH clauses",
            construct="parse",
        ) from err
    except ParseError as err:
        keyword = _statement_keyword(sql)
        if keyword is not None:
            raise QueryRefused(
                f"{keyword} statements are not allowed; {_ALLOWED_SHAPE}", construct=keyword
            ) from err
        raise QueryRefused(
            f"the query could not be parsed ({_describe_parse_error(err)}); {_ALLOWED_SHAPE}",
            construct="parse",
        ) from err
    except Exception as err:  # fail closed: any parser failure is a refusal
        raise QueryRefused(
            f"the query could not be parsed; {_ALLOWED_SHAPE}", construct="parse"
        ) from err


def _statement_keyword(sql: str) -> str | None:
    """``EXPORT``/``CREATE``/... when unparsable text starts with a statement keyword.

    sqlglot 30.30 raises ``ParseError`` for some DuckDB statements (``EXPORT DATABASE``,
    ``CREATE SECRET``); naming the keyword says what was refused instead of "syntax error".
    """
    try:
        tokens = Dialect.get_or_raise(DIALECT).tokenize(sql)
    except Exception:  # an untokenisable text is simply a parse error
        return None
    if not tokens:
        return None
    word = tokens[0].text.upper()
    return word if word in STATEMENT_KEYWORDS else None


def _describe_parse_error(err: ParseError) -> str:
    if not err.errors:
        return "syntax error"
    first = err.errors[0]
    return f"{first.get('description')} at line {first.get('line')}, column {first.get('col')}"


def statement_name(root: exp.Expr) -> str:
    """The keyword a refused statement starts with, e.g. ``COPY``, ``LOAD``, ``CHECKPOINT``."""
    if isinstance(root, exp.Command):
        return str(root.this).upper()
    if isinstance(root, (exp.Column, exp.Identifier, exp.Var)):
        return root.name.upper()  # a bare word such as CHECKPOINT
    return root.key.upper()
