"""Rule: refuse queries too large for the gateway to check in reasonable time.

The byte limit alone does not bound the cost of checking. sqlglot's ``qualify``
grows with depth (a 54 KB chain of ``kwh + kwh + ...``, 9,000 terms parsed
iteratively so no ``RecursionError``, took about 29 s of gateway CPU) and costs
roughly 0.3 ms per column reference (10,000 references: about 4 s); a 64 KB
IN-list of 10,000 literals costs about 1 s. Nodes, depth, column references,
query blocks and table references are therefore capped before any expensive
rule runs, so the cost stays bounded even if the byte limit is raised. The caps
are far above hand-written analytics.
"""

from __future__ import annotations

from typing import NoReturn

from sqlglot import exp

from policies.errors import QueryRefused
from policies.rewrite.context import RewriteContext

MAX_NODES = 20_000
MAX_DEPTH = 128
MAX_QUERY_BLOCKS = 128
MAX_TABLE_REFERENCES = 64
MAX_COLUMN_REFERENCES = 1000


def check_complexity(expression: exp.Query, _context: RewriteContext) -> exp.Query:
    nodes = sum(1 for _ in expression.walk())
    if nodes > MAX_NODES:
        _refuse(f"{nodes} syntax nodes; the limit is {MAX_NODES}")
    depth = _depth(expression, limit=MAX_DEPTH)
    if depth > MAX_DEPTH:
        _refuse(f"expressions nest more than {MAX_DEPTH} levels deep")
    blocks = sum(1 for _ in expression.find_all(exp.Select, exp.SetOperation))
    if blocks > MAX_QUERY_BLOCKS:
        _refuse(f"{blocks} SELECT blocks; the limit is {MAX_QUERY_BLOCKS}")
    tables = sum(1 for _ in expression.find_all(exp.Table))
    if tables > MAX_TABLE_REFERENCES:
        _refuse(f"{tables} table references; the limit is {MAX_TABLE_REFERENCES}")
    columns = sum(1 for _ in expression.find_all(exp.Column))
    if columns > MAX_COLUMN_REFERENCES:
        _refuse(f"{columns} column references; the limit is {MAX_COLUMN_REFERENCES}")
    return expression


def _depth(expression: exp.Expr, *, limit: int) -> int:
    """Deepest nesting level, computed iteratively; stops counting just past ``limit``."""
    deepest = 0
    stack: list[tuple[exp.Expr, int]] = [(expression, 1)]
    while stack and deepest <= limit:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in node.iter_expressions())
    return deepest


def _refuse(reason: str) -> NoReturn:
    raise QueryRefused(
        f"the query is too complex to check ({reason}); split it or simplify it",
        construct="complexity",
    )
