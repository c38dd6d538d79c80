"""Rule: replace each dataset reference with a subquery that applies the grant at the source.

``FROM dg_factory.energy_meter AS m`` becomes::

    (SELECT "meter_id", "kwh" FROM READ_PARQUET(['s3://b/k1.parquet', 's3://b/k2.parquet'])
       AS __src) AS "m"

Only granted columns are projected, so everything outside (``*``, ``WHERE``,
``JOIN``, whole-row tricks) sees nothing else. The client's alias and
column-alias list are kept; without an alias the (normalised) dataset name is
the alias, so ``energy_meter.kwh`` still binds. Identifiers are quoted by
``exp.to_identifier(..., quoted=True)`` and paths are string literals built by
sqlglot: nothing here is formatted into SQL text.

Tables are found by their ``meta`` marks (set by ``resolve_datasets``), and a
table with neither mark fails closed: no reference leaves un-rewritten.
The subquery is marked (``context.mark_relation``) so later rules find it:
``apply_row_filters`` adds the row filter to its ``WHERE`` and ``mask_columns``
replaces masked projections. For an aggregate-only source with a minimum group
size it also projects the raw subject column as ``__gw_subject`` (the client
cannot name it: ``check_columns`` already refused unknown columns).
"""

from __future__ import annotations

from sqlglot import exp

from policies.errors import QueryRefused
from policies.model import GovernedSource
from policies.rewrite.context import RewriteContext, is_cte_reference, mark_relation, source_of

SOURCE_ALIAS = "__src"
SUBJECT_COLUMN = "__gw_subject"  # the raw privacy unit, for enforce_min_group_size's HAVING


def replace_with_governed_relations(expression: exp.Query, _context: RewriteContext) -> exp.Query:
    for table in list(expression.find_all(exp.Table)):
        source = source_of(table)
        if source is not None:
            table.replace(governed_relation(source, _client_alias(table)))
        elif not is_cte_reference(table):
            raise QueryRefused(
                f"the table reference {table.sql(dialect='duckdb')} was not resolved; "
                "reference datasets as <org>.<dataset>",
                construct="table reference",
            )
    return expression


def governed_relation(source: GovernedSource, alias: exp.TableAlias) -> exp.Subquery:
    if not source.files or not source.columns:
        raise QueryRefused(
            f"{source.sql_name} version {source.version} has no readable "
            f"{'files' if not source.files else 'granted columns'}; ask the provider or steward",
            construct="dataset",
        )
    scan = exp.Table(
        this=exp.ReadParquet(
            expressions=[exp.Array(expressions=[exp.Literal.string(path) for path in source.files])]
        ),
        alias=exp.TableAlias(this=exp.to_identifier(SOURCE_ALIAS)),
    )
    columns: list[exp.Expr] = [
        exp.column(exp.to_identifier(name, quoted=True)) for name in source.columns
    ]
    if needs_subject_column(source):
        if SUBJECT_COLUMN in source.columns:
            raise QueryRefused(
                f"{source.sql_name} has a column named {SUBJECT_COLUMN}, which the gateway "
                "reserves; ask the provider to rename it",
                construct="dataset",
            )
        subject = raw_column(source.subject_column or "")
        columns.append(exp.alias_(subject, exp.to_identifier(SUBJECT_COLUMN, quoted=True)))
    inner = exp.Select(expressions=columns, from_=exp.From(this=scan))
    relation = exp.Subquery(this=inner, alias=alias)
    mark_relation(relation, source)
    return relation


def needs_subject_column(source: GovernedSource) -> bool:
    return bool(source.aggregate_only and source.min_group_size and source.subject_column)


def raw_column(name: str) -> exp.Column:
    """``__src."name"``: a column of the dataset's files, before any mask."""
    return exp.column(exp.to_identifier(name, quoted=True), table=exp.to_identifier(SOURCE_ALIAS))


def _client_alias(table: exp.Table) -> exp.TableAlias:
    existing = table.args.get("alias")
    name = table.alias or table.name
    columns = existing.columns if isinstance(existing, exp.TableAlias) else []
    renamed = [exp.to_identifier(column.name, quoted=True) for column in columns]
    return exp.TableAlias(this=exp.to_identifier(name, quoted=True), columns=renamed or None)
