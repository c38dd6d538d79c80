"""Rule: cap the result at ``max_rows + 1`` rows with an outer ``LIMIT``.

The whole query is wrapped (``SELECT * FROM (<query>) AS __governed LIMIT n``)
rather than edited, so a client ``LIMIT``, ``OFFSET``, ``ORDER BY`` or set
operation keeps its meaning and cannot lift the cap. The extra row lets the
executor report truncation. DuckDB keeps the inner order through the outer
``LIMIT`` (it plans a TOP_N).
"""

from __future__ import annotations

from sqlglot import exp

from policies.rewrite.context import RewriteContext

RESULT_ALIAS = "__governed"


def limit_rows(expression: exp.Query, context: RewriteContext) -> exp.Query:
    wrapped = exp.Subquery(
        this=expression, alias=exp.TableAlias(this=exp.to_identifier(RESULT_ALIAS))
    )
    return exp.Select(
        expressions=[exp.Star()],
        from_=exp.From(this=wrapped),
        limit=exp.Limit(expression=exp.Literal.number(context.max_rows + 1)),
    )
