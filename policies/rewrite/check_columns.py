"""Rule: every column the client names must be a granted column.

Runs on a *copy* of the tree with sqlglot's ``qualify`` against a schema made
of the granted columns only, so an ungranted or misspelt column is refused
here with ``construct="column"`` instead of surfacing as a DuckDB binder error
(which would echo the rewritten SQL). The message is the same whether the
column exists ungranted or not at all.

``qualify`` resolves ``SELECT p FROM ds p`` to a whole-row ``exp.TableColumn``
rather than failing; that is refused explicitly. The client tree itself is
returned unchanged: qualification is validation, not the rewrite. The qualified
copy is kept in ``context.qualified`` for later checks that need to know which
relation each column belongs to (``check_join_conditions``).
"""

from __future__ import annotations

from sqlglot import exp
from sqlglot.errors import OptimizeError
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from policies.errors import QueryRefused
from policies.model import GovernedSource
from policies.rewrite.context import DIALECT, RewriteContext, source_of


def check_columns(expression: exp.Query, context: RewriteContext) -> exp.Query:
    _check_alias_lists(expression)
    probe = expression.copy()
    schema = _point_tables_at_sources(probe)
    try:
        qualified = qualify(
            probe,
            dialect=DIALECT,
            schema=MappingSchema(schema, dialect=DIALECT),
            validate_qualify_columns=True,
        )
    except OptimizeError as err:
        raise QueryRefused(
            f"{err}; granted columns: {_granted(context.sources)}", construct="column"
        ) from err
    whole_row = qualified.find(exp.TableColumn)
    if whole_row is not None:
        raise QueryRefused(
            f"{whole_row.name!r} refers to a whole row; select named columns instead "
            f"(granted columns: {_granted(context.sources)})",
            construct="whole-row reference",
        )
    context.qualified = qualified
    return expression


def _check_alias_lists(expression: exp.Query) -> None:
    """``FROM ds AS t(a, b, ...)`` may rename at most the granted columns (qualify accepts more,
    and DuckDB would bind an extra name to whatever the governed relation projects next)."""
    for table in expression.find_all(exp.Table):
        source, alias = source_of(table), table.args.get("alias")
        if source is None or not isinstance(alias, exp.TableAlias):
            continue
        if len(alias.columns) > len(source.columns):
            raise QueryRefused(
                f"{table.alias}({', '.join(c.name for c in alias.columns)}) names "
                f"{len(alias.columns)} columns but {source.sql_name} grants "
                f"{len(source.columns)}: {', '.join(source.columns)}",
                construct="column alias list",
            )


def _point_tables_at_sources(probe: exp.Query) -> dict[str, object]:
    """Name each dataset table ``org.name`` (keeping its alias) and describe its granted columns."""
    schema: dict[str, dict[str, dict[str, str]]] = {}
    for table in probe.find_all(exp.Table):
        source = source_of(table)
        if source is None:
            continue
        if not table.alias:
            table.set("alias", exp.TableAlias(this=exp.to_identifier(table.name, quoted=True)))
        table.set("db", exp.to_identifier(source.org, quoted=True))
        table.set("this", exp.to_identifier(source.name, quoted=True))
        schema.setdefault(source.org, {})[source.name] = dict.fromkeys(source.columns, "UNKNOWN")
    return dict(schema.items())


def _granted(sources: list[GovernedSource]) -> str:
    return "; ".join(f"{source.sql_name}: {', '.join(source.columns)}" for source in sources)
